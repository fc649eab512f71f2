package ca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
)

// A CA directory holds CertFile (give it to every agent and coordinator)
// and KeyFile (keep it offline), both written 0600, in a directory made
// 0700.
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// Init makes a new CA for cluster in dir and returns its certificate's
// path. Existing files are never overwritten.
func Init(dir, cluster string, validity time.Duration) (string, error) {
	c, err := NewCA(cluster, validity)
	if err != nil {
		return "", err
	}
	certPEM, keyPEM, err := c.PEM()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := fsutil.WriteSecretFile(filepath.Join(dir, KeyFile), keyPEM); err != nil {
		return "", err
	}
	cert := filepath.Join(dir, CertFile)
	return cert, fsutil.WriteSecretFile(cert, certPEM)
}

// Open reads the CA of dir; its key is refused when others may read it.
func Open(dir string) (*CA, error) {
	keyPEM, err := fsutil.ReadSecretFile(filepath.Join(dir, KeyFile), "CA key")
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, err
	}
	return ParseCA(certPEM, keyPEM)
}

// IssueFiles issues a certificate for id (and hosts, for an agent) and
// writes it to prefix.pem and its key to prefix-key.pem, both new files.
func (ca *CA) IssueFiles(id Identity, hosts []string, validity time.Duration, prefix string) error {
	cp, kp, err := ca.Issue(id, hosts, validity)
	if err != nil {
		return err
	}
	if err := fsutil.WriteSecretFile(prefix+"-key.pem", kp); err != nil {
		return err
	}
	return fsutil.WriteSecretFile(prefix+".pem", cp)
}

// LoadKeyPair reads a certificate and its key; the key file is refused
// when others may read it.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	keyPEM, err := fsutil.ReadSecretFile(keyFile, "TLS key file")
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// Pair reads a certificate and its key given as two flags, both or
// neither: nil when neither.
func Pair(certFile, keyFile, certFlag, keyFlag string) (*tls.Certificate, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: --%s and --%s go together", errs.ErrInvalid, certFlag, keyFlag)
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %v", errs.ErrInvalid, certFlag, err)
	}
	return &cert, nil
}

// PoolFile reads a PEM bundle of CA certificates from file (given as
// flag); nil for no file.
func PoolFile(file, flag string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %v", errs.ErrInvalid, flag, err)
	}
	return LoadCertPool(b, file)
}
