// Package ca is a hotsnap cluster's certificate authority: the CA itself,
// the identities its certificates name (an agent's node id, a
// coordinator's role), the files ca init and ca issue write, and the
// checks of a peer's chain. It is not the agent or the coordinator
// (package cluster), which use it to prove and check who is talking.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/errs"
)

// A cluster's identities: every agent and every coordinator credential is
// a certificate of the cluster's CA naming who it is in one URI SAN,
//
//	hotsnap://CLUSTER/node/ID        an agent (server auth)
//	hotsnap://CLUSTER/operator/NAME  a coordinator that may change things (client auth)
//	hotsnap://CLUSTER/reader/NAME    a coordinator that may only read (client auth)
//
// A coordinator checks each agent's certificate against the CA and the
// node id the agent registered under in etcd (not the URL's host name): a
// forged registration gets no TLS session, so no request and no data.

// Roles of a client identity.
const (
	RoleOperator = "operator"
	RoleReader   = "reader"
	KindNode     = "node"
)

// nameRE is the form of cluster names, node ids, role names (and, in
// package cluster, lock and job ids).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidName reports whether s is a valid cluster name, node id or name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Identity is who a certificate names.
type Identity struct {
	Cluster string
	Kind    string // "node", RoleOperator or RoleReader
	Name    string // node id or client name
}

func (id Identity) String() string { return id.URI().String() }

// URI is the identity as its certificate's URI SAN.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "hotsnap", Host: id.Cluster, Path: "/" + id.Kind + "/" + id.Name}
}

// NodeIdentity is agent id's identity in cluster.
func NodeIdentity(cluster, id string) Identity {
	return Identity{Cluster: cluster, Kind: KindNode, Name: id}
}

func (id Identity) Check() error {
	switch {
	case !nameRE.MatchString(id.Cluster):
		return fmt.Errorf("%w: cluster name %q", errs.ErrInvalid, id.Cluster)
	case id.Kind != KindNode && id.Kind != RoleOperator && id.Kind != RoleReader:
		return fmt.Errorf("%w: identity kind %q: want node, operator or reader", errs.ErrInvalid, id.Kind)
	case !nameRE.MatchString(id.Name):
		return fmt.Errorf("%w: identity name %q: want 1 to 64 of letters, digits, '.', '_', '-'", errs.ErrInvalid, id.Name)
	}
	return nil
}

// IdentityOf reads the one hotsnap identity of a certificate.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var out []Identity
	for _, u := range cert.URIs {
		if u.Scheme != "hotsnap" {
			continue
		}
		kind, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		id := Identity{Cluster: u.Host, Kind: kind, Name: name}
		if !ok || id.Check() != nil {
			return Identity{}, fmt.Errorf("certificate %q: bad hotsnap identity %s", cert.Subject.CommonName, u)
		}
		out = append(out, id)
	}
	if len(out) != 1 {
		return Identity{}, fmt.Errorf("certificate %q names %d hotsnap identities, want 1", cert.Subject.CommonName, len(out))
	}
	return out[0], nil
}

// CA is a cluster's certificate authority: it issues the agents' and the
// coordinators' certificates.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA for cluster, valid for validity.
func NewCA(cluster string, validity time.Duration) (*CA, error) {
	if !nameRE.MatchString(cluster) {
		return nil, fmt.Errorf("%w: cluster name %q", errs.ErrInvalid, cluster)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "hotsnap cluster " + cluster + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// ParseCA reads a CA from its PEM certificate and key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%w: CA certificate or key is not PEM", errs.ErrInvalid)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: CA certificate: %v", errs.ErrInvalid, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: CA key: %v", errs.ErrInvalid, err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: not a CA certificate with its key", errs.ErrInvalid)
	}
	return &CA{Cert: cert, key: key}, nil
}

// PEM returns the CA's certificate and key in PEM.
func (ca *CA) PEM() (certPEM, keyPEM []byte, err error) {
	kb, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// Issue makes a certificate and key for id, valid for validity: server
// auth for a node (hosts are its DNS names and IP addresses, for other
// TLS clients; hotsnap checks the identity), client auth for a role.
func (ca *CA) Issue(id Identity, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if err := id.Check(); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id.Name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		URIs:         []*url.URL{id.URI()},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	if id.Kind == KindNode {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// VerifyChain checks a peer's certificate chain against roots for usage
// and returns the leaf.
func VerifyChain(raw [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil, err
	}
	return certs[0], nil
}

// LoadCertPool reads a PEM bundle of CA certificates.
func LoadCertPool(pemBytes []byte, what string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", errs.ErrInvalid, what)
	}
	return pool, nil
}
