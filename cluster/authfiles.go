package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
)

// What the agent and the coordinators read from files to prove who they
// are and to check their peers (docs/cluster.md, Cluster security): the cluster CA
// with this process's certificate, or bearer tokens (labs); and how to
// reach and log in to etcd.

// AuthFiles name the files of a process's credentials. With CA, peers
// prove themselves by certificates of the cluster CA, and this process by
// Cert and Key; else by the token in TokenFile (ReadTokenFile: an agent's
// second token that may only read).
type AuthFiles struct {
	CA, Cert, Key            string
	TokenFile, ReadTokenFile string
}

// invalid is a usage error (exit 2) saying what was wrong.
func invalid(format string, args ...any) error {
	return errs.New(errs.Usage, fmt.Sprintf(format, args...))
}

// ReadToken reads a token file: at least 16 characters, readable by its
// owner only.
func ReadToken(file, flag string) (string, error) {
	b, err := fsutil.ReadSecretFile(file, flag)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", invalid("%s %s: the token must be at least 16 characters", flag, file)
	}
	return tok, nil
}

// Server reads an agent's credentials into cfg (ClientCA or the tokens)
// and returns the certificate to serve with (nil: plain HTTP, token
// mode). With a CA the certificate must name node of cluster.
func (f AuthFiles) Server(cfg *AgentConfig) (*tls.Certificate, error) {
	cert, err := ca.Pair(f.Cert, f.Key, "tls-cert", "tls-key")
	if err != nil {
		return nil, err
	}
	if cfg.ClientCA, err = ca.PoolFile(f.CA, "tls-ca"); err != nil {
		return nil, err
	}
	if cfg.ClientCA != nil {
		if cert == nil {
			return nil, invalid("--tls-ca needs the node's certificate: --tls-cert and --tls-key (hotsnap cluster ca issue --node ID)")
		}
		if f.TokenFile != "" || f.ReadTokenFile != "" {
			return nil, invalid("with --tls-ca, clients prove themselves by certificate: drop --token-file and --read-token-file")
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, invalid("%v", err)
		}
		if id, err := ca.IdentityOf(leaf); err != nil || id != ca.NodeIdentity(cfg.Cluster, cfg.NodeID) {
			return nil, invalid("--tls-cert names %v (%v), not node %s of cluster %s", id, err, cfg.NodeID, cfg.Cluster)
		}
		return cert, nil
	}
	if f.TokenFile == "" {
		return nil, invalid("give --tls-ca with the node's --tls-cert/--tls-key, or --token-file (token mode, for labs)")
	}
	if cfg.Token, err = ReadToken(f.TokenFile, "--token-file"); err != nil {
		return nil, err
	}
	if f.ReadTokenFile != "" {
		if cfg.ReadToken, err = ReadToken(f.ReadTokenFile, "--read-token-file"); err != nil {
			return nil, err
		}
	}
	return cert, nil
}

// Client reads a coordinator's credentials: with a CA, agents must prove
// their node ids; with a certificate, it proves its role, else by token.
func (f AuthFiles) Client(cluster string) (ClientAuth, error) {
	a := ClientAuth{Cluster: cluster}
	var err error
	if a.CA, err = ca.PoolFile(f.CA, "tls-ca"); err != nil {
		return a, err
	}
	if a.Cert, err = ca.Pair(f.Cert, f.Key, "tls-cert", "tls-key"); err != nil {
		return a, err
	}
	if a.Cert != nil && a.CA == nil {
		return a, invalid("--tls-cert needs --tls-ca: agents are checked against the cluster CA")
	}
	if a.Cert == nil {
		if f.TokenFile == "" {
			return a, invalid("give --tls-ca with --tls-cert/--tls-key (a certificate of the cluster CA), or --token-file (token mode)")
		}
		if a.Token, err = ReadToken(f.TokenFile, "--token-file"); err != nil {
			return a, err
		}
	}
	return a, nil
}

// EtcdFiles say how to reach etcd and log in: its CA (TLS only), a client
// certificate, a user with its password file.
type EtcdFiles struct {
	Endpoints          []string
	Cluster            string
	CACert, Cert, Key  string
	User, PasswordFile string
}

// Dial reads the files and dials etcd (Dial).
func (f EtcdFiles) Dial(ctx context.Context) (*Agency, error) {
	if f.Cluster == "" {
		return nil, invalid("--cluster (or HOTSNAP_CLUSTER) is required")
	}
	if len(f.Endpoints) == 0 {
		return nil, invalid("--etcd (or HOTSNAP_ETCD) is required")
	}
	o := DialOptions{Endpoints: f.Endpoints, Cluster: f.Cluster, Username: f.User}
	roots, err := ca.PoolFile(f.CACert, "etcd-cacert")
	if err != nil {
		return nil, err
	}
	cert, err := ca.Pair(f.Cert, f.Key, "etcd-cert", "etcd-key")
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
		return nil, invalid("--etcd-cert needs --etcd-cacert")
	}
	if (o.Username == "") != (f.PasswordFile == "") {
		return nil, invalid("--etcd-user and --etcd-password-file go together")
	}
	if o.Username != "" {
		b, err := fsutil.ReadSecretFile(f.PasswordFile, "etcd password file")
		if err != nil {
			return nil, err
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	return Dial(ctx, o)
}
