package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/snapshot"
)

// RunOptions are an agent process's: where it listens and is reached, how
// it registers in etcd, and its own policy's interval.
type RunOptions struct {
	Listen       string // host:port; port 0 is any free port
	AdvertiseURL string // default: from the listener and Cert
	// Cert is the certificate to serve with; nil serves plain HTTP (token
	// mode; a warning unless on loopback).
	Cert      *tls.Certificate
	Agency    *Agency
	MemberTTL time.Duration // 0 means defaults.MemberTTL
	Limits    ServerLimits
	// PolicyEvery is the interval of the node's own policy (AgentConfig.Policy).
	PolicyEvery time.Duration
	// Ready, when set, is called once the agent serves and is registered.
	Ready func(url string)
}

// Run is an agent's life: listen, register the node in etcd under a lease
// it keeps alive, serve the API, run the node's policy every PolicyEvery;
// when ctx ends, leave etcd at once and shut the server down within
// defaults.ShutdownTimeout. It returns when the server stops.
func (a *Agent) Run(ctx context.Context, o RunOptions) error {
	if a.cfg.Policy != nil && o.PolicyEvery < time.Second {
		return fmt.Errorf("%w: a policy's interval must be at least 1s (it is %s)", snapshot.ErrInvalid, o.PolicyEvery)
	}
	if o.MemberTTL <= 0 {
		o.MemberTTL = defaults.MemberTTL
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if o.Cert != nil {
		scheme = "https"
	} else if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		a.log.Warn("serving without TLS on a non-loopback address: the token travels in clear; use --tls-ca, --tls-cert and --tls-key")
	}
	url := o.AdvertiseURL
	if url == "" {
		url = scheme + "://" + ln.Addr().String()
	}
	reg, err := o.Agency.Register(ctx, Member{NodeID: a.cfg.NodeID, URL: url, ToolVersion: snapshot.ToolVersion,
		AppVersion: a.cfg.AppVersion, StartedAt: time.Now().UTC()}, o.MemberTTL, a.log)
	if err != nil {
		ln.Close()
		return err
	}
	defer reg.Close()
	srvc := make(chan *http.Server, 1)
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln, o.Cert, o.Limits, srvc) }()
	srv := <-srvc
	if a.cfg.Policy != nil && o.PolicyEvery > 0 {
		go a.RunPolicyEvery(ctx, o.PolicyEvery)
	}
	if o.Ready != nil {
		o.Ready(url)
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	reg.Close()
	sctx, cancel := context.WithTimeout(context.Background(), defaults.ShutdownTimeout)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}
