package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/policy"
	"github.com/hotsnap/hotsnap/snapshot"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "serve this node's snapshots to cluster coordinators (HTTP API), registered in etcd",
		Flags: withOutput(append(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(),
			&cli.StringFlag{Name: "node-id", EnvVars: []string{"HOTSNAP_NODE_ID"}, Usage: "this node's id in the cluster"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7701", EnvVars: []string{"HOTSNAP_LISTEN"}, Usage: "address to serve the API on (port 0: any free port)"},
			&cli.StringFlag{Name: "advertise-url", EnvVars: []string{"HOTSNAP_ADVERTISE_URL"}, Usage: "URL coordinators reach this agent at (default from --listen)"},
			&cli.StringFlag{Name: "read-token-file", EnvVars: []string{"HOTSNAP_READ_TOKEN_FILE"}, Usage: "token mode: a second token that may only read (list, status, metrics)"},
			&cli.IntFlag{Name: "max-conns", Value: defaults.AgentMaxConns, Usage: "connections served at once"},
			&cli.IntFlag{Name: "max-jobs-per-client", Value: defaults.AgentMaxJobsPerClient, Usage: "jobs one client may have running at once"},
			&cli.DurationFlag{Name: "member-ttl", Value: defaults.MemberTTL, Usage: "lease of the agent's registration in etcd: a dead agent drops out after it"},
			&cli.DurationFlag{Name: "max-lock-lease", Value: defaults.MaxLockLease, Usage: "longest lock lease a coordinator may ask for"},
			&cli.StringFlag{Name: "policy", EnvVars: []string{"HOTSNAP_POLICY"}, Usage: "this node's own backup policy (as for hotsnap run; its remote in the file), run every --policy-every"},
			&cli.DurationFlag{Name: "policy-every", Value: time.Hour, Usage: "with --policy: the interval between runs (the first one interval after the start)"},
			&cli.StringSliceFlag{Name: "copy", Usage: "as for create: glob of files captured as copies (repeatable)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "as for create: glob of entries left out (repeatable)"},
			&cli.StringFlag{Name: "link-mode", Value: "link", Usage: "as for create: link, reflink or auto"},
			&cli.StringFlag{Name: "app-version", EnvVars: []string{"HOTSNAP_APP_VERSION"}, Usage: "the application's major.minor.patch version, recorded at create and checked at restore"},
			&cli.StringFlag{Name: "app-engine", EnvVars: []string{"HOTSNAP_APP_ENGINE"}, Usage: "the storage engine that writes the data: recorded at create and checked at restore"},
			&cli.StringFlag{Name: "stop-cmd", EnvVars: []string{"HOTSNAP_STOP_CMD"}, Usage: "command (sh -c) that stops this node's application before a cluster restore swaps its data"},
			&cli.StringFlag{Name: "start-cmd", EnvVars: []string{"HOTSNAP_START_CMD"}, Usage: "command (sh -c) that starts this node's application after a cluster restore"},
			&cli.DurationFlag{Name: "hook-timeout", Value: 5 * time.Minute, Usage: "bound on each stop or start command"},
			&cli.StringFlag{Name: "encryption-key-id", EnvVars: []string{"HOTSNAP_ENCRYPTION_KEY_ID"}, Usage: "the application's key id, recorded and checked"},
		}, clusterFlags()...), append(quiesceFlags(), remoteFlags()...)...)...),
		Action: runAgent,
	}
}

// agentAuth reads how callers prove themselves: by certificates of the
// cluster CA (--tls-ca, with the node's own --tls-cert/--tls-key), or by
// tokens (--token-file, --read-token-file: labs).
func agentAuth(c *cli.Context, cfg *cluster.AgentConfig) (*tlsPair, error) {
	cert, err := pair(c, "tls-cert", "tls-key")
	if err != nil {
		return nil, err
	}
	if cfg.ClientCA, err = caPool(c.String("tls-ca"), "tls-ca"); err != nil {
		return nil, err
	}
	if cfg.ClientCA != nil {
		if cert == nil {
			return nil, usageError{errors.New("--tls-ca needs the node's certificate: --tls-cert and --tls-key (hotsnap cluster ca issue --node ID)")}
		}
		if c.String("token-file") != "" || c.String("read-token-file") != "" {
			return nil, usageError{errors.New("with --tls-ca, clients prove themselves by certificate: drop --token-file and --read-token-file")}
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, usageError{err}
		}
		if id, err := cluster.IdentityOf(leaf); err != nil || id != cluster.NodeIdentity(c.String("cluster"), c.String("node-id")) {
			return nil, usageError{fmt.Errorf("--tls-cert names %v (%v), not node %s of cluster %s", id, err, c.String("node-id"), c.String("cluster"))}
		}
		return &tlsPair{cert}, nil
	}
	if c.String("token-file") == "" {
		return nil, usageError{errors.New("give --tls-ca with the node's --tls-cert/--tls-key, or --token-file (token mode, for labs)")}
	}
	if cfg.Token, err = readToken(c.String("token-file"), "--token-file"); err != nil {
		return nil, err
	}
	if f := c.String("read-token-file"); f != "" {
		if cfg.ReadToken, err = readToken(f, "--read-token-file"); err != nil {
			return nil, err
		}
	}
	if cert != nil {
		return &tlsPair{cert}, nil
	}
	return nil, nil
}

// tlsPair is the agent's certificate, or nil to serve plain HTTP.
type tlsPair struct{ cert *tls.Certificate }

func (p *tlsPair) certificate() *tls.Certificate {
	if p == nil {
		return nil
	}
	return p.cert
}

func runAgent(c *cli.Context) error {
	e, l, _, err := prologue(c, false)
	if err != nil {
		return err
	}
	if c.String("node-id") == "" {
		return usageError{errors.New("--node-id (or HOTSNAP_NODE_ID) is required")}
	}
	if v := c.String("app-version"); v != "" {
		if err := manifest.ValidVersion(v); err != nil {
			return usageError{fmt.Errorf("--%v", err)}
		}
	}
	if c.IsSet("remote") {
		return usageError{errors.New("the agent takes no --remote: coordinators name it per upload or download")}
	}
	cfg := cluster.AgentConfig{
		Layout: l, NodeID: c.String("node-id"), Cluster: c.String("cluster"),
		NewQuiescer: func(force bool) (snapshot.Quiescer, func()) {
			q, closeQ, _ := quiescerFromFlags(c, l, force) // the flags were checked below
			return q, closeQ
		},
		Lock:       snapshot.LockPolicy{MaxWait: c.Duration("max-wait-for-lock"), InitialPeriod: c.Duration("lock-period")},
		MaxLease:   c.Duration("max-lock-lease"),
		AppVersion: c.String("app-version"), AppEngine: c.String("app-engine"), EncryptionKeyID: c.String("encryption-key-id"),
		StopCmd: c.String("stop-cmd"), StartCmd: c.String("start-cmd"), HookTimeout: c.Duration("hook-timeout"),
		Copy: c.StringSlice("copy"), Exclude: c.StringSlice("exclude"), LinkMode: c.String("link-mode"),
		MaxJobsPerClient: c.Int("max-jobs-per-client"), Logger: e.log,
	}
	tp, err := agentAuth(c, &cfg)
	if err != nil {
		return err
	}
	if f := c.String("policy"); f != "" {
		if cfg.Policy, err = policy.Load(f); err != nil {
			return err
		}
		if c.Duration("policy-every") < time.Second {
			return usageError{errors.New("--policy-every must be at least 1s")}
		}
	}
	// Check the quiesce flags once, up front.
	if _, closeQ, err := quiescerFromFlags(c, l, false); err != nil {
		return err
	} else {
		closeQ()
	}
	if cfg.Remote, err = remoteOptions(c); err != nil {
		return err
	}
	agency, err := dialAgency(c)
	if err != nil {
		return err
	}
	defer agency.Close()
	ag, err := cluster.NewAgent(cfg)
	if err != nil {
		return err
	}
	defer ag.Close()
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tp != nil {
		scheme = "https"
	} else if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		e.log.Warn("serving without TLS on a non-loopback address: the token travels in clear; use --tls-ca, --tls-cert and --tls-key")
	}
	url := c.String("advertise-url")
	if url == "" {
		url = scheme + "://" + ln.Addr().String()
	}
	reg, err := agency.Register(c.Context, cluster.Member{NodeID: c.String("node-id"), URL: url, ToolVersion: snapshot.ToolVersion,
		AppVersion: c.String("app-version"), StartedAt: time.Now().UTC()}, c.Duration("member-ttl"), e.log)
	if err != nil {
		ln.Close()
		return err
	}
	srvc := make(chan *http.Server, 1)
	served := make(chan error, 1)
	go func() {
		served <- ag.Serve(ln, tp.certificate(), cluster.ServerLimits{MaxConns: c.Int("max-conns")}, srvc)
	}()
	srv := <-srvc
	if cfg.Policy != nil {
		go ag.RunPolicyEvery(c.Context, c.Duration("policy-every"))
	}
	ready := map[string]any{"type": "ready", "node": c.String("node-id"), "cluster": c.String("cluster"), "url": url, "pid": os.Getpid()}
	if e.json {
		writeJSON(e.stdout, ready)
	} else if !e.quiet {
		fmt.Fprintf(e.stdout, "agent %s of cluster %s serving at %s\n", c.String("node-id"), c.String("cluster"), url)
	}
	select {
	case <-c.Context.Done():
	case err := <-served:
		reg.Close()
		return fmt.Errorf("serve: %w", err)
	}
	reg.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}
