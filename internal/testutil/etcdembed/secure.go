package etcdembed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Files are the credentials of a secured etcd: a CA, etcd's server
// certificate (for 127.0.0.1), a client certificate whose common name is
// the etcd user root, and root's password.
type Files struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey, PasswordFile string
	Password                                                       string
}

// WriteFiles makes the credentials in dir (0700; keys and password 0600).
func WriteFiles(dir string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hotsnap test etcd CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		t := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if usage == x509.ExtKeyUsageServerAuth {
			t.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			t.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, t, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
	}
	f := &Files{CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"), PasswordFile: filepath.Join(dir, "root.password")}
	sc, sk, err := issue(2, "etcd", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	cc, ck, err := issue(3, "root", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	f.Password = hex.EncodeToString(pw)
	for _, w := range []struct {
		path string
		data []byte
	}{{f.CA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}, {f.ServerCert, sc}, {f.ServerKey, sk},
		{f.ClientCert, cc}, {f.ClientKey, ck}, {f.PasswordFile, []byte(f.Password + "\n")}} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Secure makes cfg serve clients over TLS only, with client certificates
// of the CA required.
func Secure(cfg *embed.Config, f *Files) {
	for i := range cfg.ListenClientUrls {
		cfg.ListenClientUrls[i].Scheme = "https"
	}
	for i := range cfg.AdvertiseClientUrls {
		cfg.AdvertiseClientUrls[i].Scheme = "https"
	}
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: f.CA, ClientCertAuth: true}
}

// ClientTLS is the TLS configuration of the root client.
func (f *Files) ClientTLS() (*tls.Config, error) {
	return (transport.TLSInfo{CertFile: f.ClientCert, KeyFile: f.ClientKey, TrustedCAFile: f.CA}).ClientConfig()
}

// EnableAuth turns etcd's authentication on, with user root (role root)
// and the password of f.
func EnableAuth(ctx context.Context, endpoint url.URL, f *Files) error {
	tc, err := f.ClientTLS()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint.String()}, TLS: tc, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	cli.RoleAdd(ctx, "root") // it may exist already; a real failure shows in the grant
	if _, err := cli.UserAdd(ctx, "root", f.Password); err != nil {
		return fmt.Errorf("etcd user add root: %w", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		return fmt.Errorf("etcd grant root: %w", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcd auth enable: %w", err)
	}
	return nil
}
