package cluster

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/errs"
)

// Errors of authentication and authorisation.
var (
	// ErrUnauthorized is an agent's answer to a request that proves no
	// identity (no client certificate, no or a wrong token); an agent's
	// answer of kind unauthorized unwraps to it.
	ErrUnauthorized = errs.ErrUnauthorized
	// ErrForbidden is an agent's answer to a reader asking to change
	// something.
	ErrForbidden = errs.ErrForbidden
	// ErrAgentIdentity is returned when an agent does not prove the
	// identity it registered under: nothing is sent to it.
	ErrAgentIdentity = errs.New(errs.VerifyFailed, "the agent does not prove the identity it registered under")
)

// ClientAuth is how a coordinator proves itself to agents and checks them.
// With CA set, every agent must present a certificate of that CA naming the
// node id it registered under in etcd, before any request is sent; with
// Cert set too, the coordinator proves itself with that certificate (its
// role is in it). Token is the lab fallback: one bearer token for every
// agent, sent to whatever URL a member registered (set CA, or secure etcd,
// so that a forged registration cannot collect it).
type ClientAuth struct {
	Cluster string
	Token   string
	CA      *x509.CertPool
	Cert    *tls.Certificate
}

// Client returns a client for the agent of member m.
func (a ClientAuth) Client(m Member) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	tr.TLSHandshakeTimeout = 10 * time.Second
	if a.CA != nil {
		if !strings.HasPrefix(m.URL, "https://") {
			return nil, fmt.Errorf("%w: node %s registered %s, not an https URL: nothing is sent to it", ErrAgentIdentity, m.NodeID, m.URL)
		}
		want := ca.NodeIdentity(a.Cluster, m.NodeID)
		cfg := &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The name checked is the node's identity in its certificate,
			// not the URL's host: VerifyPeerCertificate does the whole check.
			InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				leaf, err := ca.VerifyChain(raw, a.CA, x509.ExtKeyUsageServerAuth)
				if err != nil {
					return fmt.Errorf("%w: node %s at %s: %v", ErrAgentIdentity, m.NodeID, m.URL, err)
				}
				got, err := ca.IdentityOf(leaf)
				if err != nil || got != want {
					return fmt.Errorf("%w: node %s at %s presents %v (%v), want %s", ErrAgentIdentity, m.NodeID, m.URL, got, err, want)
				}
				return nil
			},
		}
		if a.Cert != nil {
			cfg.Certificates = []tls.Certificate{*a.Cert}
		}
		tr.TLSClientConfig = cfg
	}
	return &Client{Node: m.NodeID, URL: m.URL, token: a.Token, http: &http.Client{Transport: tr}}, nil
}

// Agent side.

// need is what a route requires of its caller.
type need int

const (
	toRead    need = iota // readers and operators: list, status, metrics
	toOperate             // operators only: lock, create, delete, restore, upload, download
)

// caller is who sent a request.
type caller struct {
	name string // the identity's URI, or "token:operator" / "token:reader"
	role string
}

// TLSConfig is the agent's server TLS configuration: its certificate, and
// with AgentConfig.ClientCA set, client certificates of that CA required
// (mutual TLS: no request is read from a peer without one).
func (a *Agent) TLSConfig(cert tls.Certificate) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.cfg.ClientCA != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = a.cfg.ClientCA
	}
	return cfg
}

// identify says who sent r: by client certificate (verified by the TLS
// handshake against ClientCA, then its identity checked here), else by
// bearer token, compared as SHA-256 digests in constant time.
func (a *Agent) identify(r *http.Request) (caller, error) {
	if a.cfg.ClientCA != nil {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			return caller{}, fmt.Errorf("%w: no verified client certificate", ErrUnauthorized)
		}
		id, err := ca.IdentityOf(r.TLS.VerifiedChains[0][0])
		if err != nil {
			return caller{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
		}
		if id.Cluster != a.cfg.Cluster || (id.Kind != ca.RoleOperator && id.Kind != ca.RoleReader) {
			return caller{}, fmt.Errorf("%w: %s is not a client of cluster %s", ErrUnauthorized, id, a.cfg.Cluster)
		}
		return caller{name: id.String(), role: id.Kind}, nil
	}
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	if subtle.ConstantTimeCompare(got[:], a.opDigest[:]) == 1 {
		return caller{name: "token:operator", role: ca.RoleOperator}, nil
	}
	if a.cfg.ReadToken != "" && subtle.ConstantTimeCompare(got[:], a.readDigest[:]) == 1 {
		return caller{name: "token:reader", role: ca.RoleReader}, nil
	}
	return caller{}, fmt.Errorf("%w: missing or wrong bearer token", ErrUnauthorized)
}

// auth lets a request through to h when its caller may do what the route
// needs.
func (a *Agent) auth(n need, h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := a.identify(r)
		if err != nil {
			a.m.unauthorized.Inc()
			if a.cfg.ClientCA == nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hotsnap"`)
			}
			a.failErr(w, err)
			return
		}
		if n == toOperate && c.role != ca.RoleOperator {
			a.m.unauthorized.Inc()
			a.failErr(w, fmt.Errorf("%w: %s may only read (list, status, metrics)", ErrForbidden, c.name))
			return
		}
		h(w, r, c)
	}
}

// plain adapts a handler that does not need to know its caller.
func plain(h http.HandlerFunc) func(http.ResponseWriter, *http.Request, caller) {
	return func(w http.ResponseWriter, r *http.Request, _ caller) { h(w, r) }
}
