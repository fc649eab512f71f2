package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/examples/bank"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// TestServer_SurvivesAbuse: 3,000 connections that never finish a TLS
// handshake (idle, or stalled after the first bytes of a ClientHello) and
// authenticated clients stalled in their request body do not stop a
// cluster create; the server sheds every one of them within its timeouts
// and goes on serving.
func TestServer_SurvivesAbuse(t *testing.T) {
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	if rl.Cur < 16384 { // 3,000 connections have two ends here; root may raise the limit
		rl.Cur = max(rl.Cur, 16384)
		rl.Max = max(rl.Max, rl.Cur)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatalf("raise the open files limit to 16384 (run as root or raise it): %v", err)
		}
	}
	tc := startCluster(t, 1)
	ctx := context.Background()

	// n2 serves through Agent.Serve with short timeouts.
	dir := t.TempDir()
	if err := bank.Init(dir, 10, 1000); err != nil {
		t.Fatal(err)
	}
	l, _ := snapshot.NewLayout(dir, "")
	pool := x509.NewCertPool()
	pool.AddCert(tc.ca.Cert)
	ag, err := NewAgent(AgentConfig{Layout: l, NodeID: "n2", Cluster: "test", ClientCA: pool,
		NewQuiescer: func(force bool) (quiesce.Quiescer, func()) {
			q := &quiesce.Flock{DataDir: dir, Force: force}
			return q, func() { q.Close() }
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limits := ServerLimits{ReadHeaderTimeout: 3 * time.Second, ReadTimeout: 4 * time.Second, IdleTimeout: 3 * time.Second}
	srvc := make(chan *http.Server, 1)
	go ag.Serve(ln, tc.cert(t, ca.NodeIdentity("test", "n2")), limits, srvc)
	srv := <-srvc
	defer srv.Close()
	reg, err := tc.agency.Register(ctx, Member{NodeID: "n2", URL: "https://" + ln.Addr().String()}, defaults.MemberTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	start := time.Now()
	if _, err := tc.co.Create(ctx, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	quiet := time.Since(start)

	// The attack.
	const n = 3000
	conns := make([]net.Conn, 0, n+10)
	for i := range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 1 {
			c.Write([]byte{0x16, 0x03, 0x01}) // the start of a TLS record, then nothing
		}
		conns = append(conns, c)
	}
	op := tc.cert(t, ca.Identity{Cluster: "test", Kind: ca.RoleOperator, Name: "slow"})
	for range 10 { // authenticated, then stalled in a request body
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{*op}, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/lock HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		conns = append(conns, c)
	}
	start = time.Now()
	res, err := tc.co.Create(ctx, CreateOptions{})
	if err != nil {
		t.Fatalf("create under %d idle and stalled connections: %v", len(conns), err)
	}
	t.Logf("cluster create: %v quiet, %v under %d open connections (lock held at most %.1f ms)", quiet, time.Since(start), len(conns), res.MaxLockHeldMs)

	// Every attacking connection is closed by the server (a read ends).
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("all %d connections shed %v after the attack began (timeouts: header %v, request %v)", len(conns), time.Since(start), limits.ReadHeaderTimeout, limits.ReadTimeout)
	for _, c := range conns {
		c.Close()
	}
	if _, err := tc.co.List(ctx); err != nil {
		t.Fatalf("list after the attack: %v", err)
	}
}
