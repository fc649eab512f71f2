package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/fsutil"
)

// clusterFlags are the flags of the agent and of every cluster command:
// where etcd is and how to log in to it, and how agents and coordinators
// prove who they are (README, Cluster security).
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "etcd", EnvVars: []string{"HOTSNAP_ETCD"}, Usage: "etcd endpoints (https://127.0.0.1:2379; comma-separated or repeated)"},
		&cli.StringFlag{Name: "cluster", EnvVars: []string{"HOTSNAP_CLUSTER"}, Usage: "cluster name (letters, digits, '.', '_', '-')"},
		&cli.StringFlag{Name: "etcd-cacert", EnvVars: []string{"HOTSNAP_ETCD_CACERT"}, Usage: "CA of etcd's certificate: talk to etcd over TLS only (https:// endpoints)"},
		&cli.StringFlag{Name: "etcd-cert", EnvVars: []string{"HOTSNAP_ETCD_CERT"}, Usage: "client certificate for etcd (its --client-cert-auth; with etcd's auth on and no --etcd-user, its common name is the etcd user)"},
		&cli.StringFlag{Name: "etcd-key", EnvVars: []string{"HOTSNAP_ETCD_KEY"}, Usage: "the key of --etcd-cert"},
		&cli.StringFlag{Name: "etcd-user", EnvVars: []string{"HOTSNAP_ETCD_USER"}, Usage: "etcd user (etcd's auth; needs --etcd-cacert)"},
		&cli.StringFlag{Name: "etcd-password-file", EnvVars: []string{"HOTSNAP_ETCD_PASSWORD_FILE"}, Usage: "file holding --etcd-user's password"},
		&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"HOTSNAP_TLS_CA"}, Usage: "the cluster's CA (hotsnap cluster ca init): every agent proves its node id, every client its role, with a certificate of it"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"HOTSNAP_TLS_CERT"}, Usage: "this process's certificate of the cluster CA (an agent's node certificate; a coordinator's operator or reader certificate)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"HOTSNAP_TLS_KEY"}, Usage: "the key of --tls-cert"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"HOTSNAP_TOKEN_FILE"}, Usage: "file holding a bearer token (token mode, for labs: agents without --tls-ca)"},
	}
}

// readToken reads a token file: at least 16 characters, readable by its
// owner only.
func readToken(f, flag string) (string, error) {
	b, err := fsutil.ReadSecretFile(f, flag)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", usageError{fmt.Errorf("%s %s: the token must be at least 16 characters", flag, f)}
	}
	return tok, nil
}

// loadKeyPair reads a certificate and its key (refused when others may
// read the key).
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
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

// pair reads the optional certificate flags certFlag/keyFlag: both or neither.
func pair(c *cli.Context, certFlag, keyFlag string) (*tls.Certificate, error) {
	cf, kf := c.String(certFlag), c.String(keyFlag)
	if (cf == "") != (kf == "") {
		return nil, usageError{fmt.Errorf("--%s and --%s go together", certFlag, keyFlag)}
	}
	if cf == "" {
		return nil, nil
	}
	cert, err := loadKeyPair(cf, kf)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s: %w", certFlag, err)}
	}
	return &cert, nil
}

func caPool(file, flag string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	pool, err := cluster.LoadCertPool(b, file)
	if err != nil {
		return nil, usageError{err}
	}
	return pool, nil
}

func dialAgency(c *cli.Context) (*cluster.Agency, error) {
	if c.String("cluster") == "" {
		return nil, usageError{errors.New("--cluster (or HOTSNAP_CLUSTER) is required")}
	}
	if len(c.StringSlice("etcd")) == 0 {
		return nil, usageError{errors.New("--etcd (or HOTSNAP_ETCD) is required")}
	}
	o := cluster.DialOptions{Endpoints: c.StringSlice("etcd"), Cluster: c.String("cluster"), Username: c.String("etcd-user")}
	roots, err := caPool(c.String("etcd-cacert"), "etcd-cacert")
	if err != nil {
		return nil, err
	}
	cert, err := pair(c, "etcd-cert", "etcd-key")
	if err != nil {
		return nil, err
	}
	switch {
	case roots != nil:
		o.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			o.TLS.Certificates = []tls.Certificate{*cert}
		}
	case cert != nil:
		return nil, usageError{errors.New("--etcd-cert needs --etcd-cacert")}
	}
	if (o.Username == "") != (c.String("etcd-password-file") == "") {
		return nil, usageError{errors.New("--etcd-user and --etcd-password-file go together")}
	}
	if o.Username != "" {
		b, err := fsutil.ReadSecretFile(c.String("etcd-password-file"), "etcd password file")
		if err != nil {
			return nil, err
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	ag, err := cluster.Dial(c.Context, o)
	if err != nil && o.TLS == nil && strings.Contains(err.Error(), "does not answer") {
		err = fmt.Errorf("%w (an etcd with TLS needs --etcd-cacert and https:// endpoints)", err)
	}
	return ag, err
}

// clientAuth is how a coordinator proves itself to the agents and checks
// them: with --tls-ca, agents must prove their node ids; with --tls-cert,
// it proves its role by certificate, else by --token-file.
func clientAuth(c *cli.Context) (cluster.ClientAuth, error) {
	var a cluster.ClientAuth
	var err error
	if a.CA, err = caPool(c.String("tls-ca"), "tls-ca"); err != nil {
		return a, err
	}
	if a.Cert, err = pair(c, "tls-cert", "tls-key"); err != nil {
		return a, err
	}
	if a.Cert != nil && a.CA == nil {
		return a, usageError{errors.New("--tls-cert needs --tls-ca: agents are checked against the cluster CA")}
	}
	if a.Cert == nil {
		if c.String("token-file") == "" {
			return a, usageError{errors.New("give --tls-ca with --tls-cert/--tls-key (a certificate of the cluster CA), or --token-file (token mode)")}
		}
		if a.Token, err = readToken(c.String("token-file"), "--token-file"); err != nil {
			return a, err
		}
	}
	return a, nil
}
