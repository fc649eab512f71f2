package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/testutil/testetcd"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// rawGet is a GET with the given TLS client config (nil: no client
// certificate), trusting the test CA for the agent.
func rawGet(tc *testCluster, url string, cert *tls.Certificate) (int, string, error) {
	pool := x509.NewCertPool()
	pool.AddCert(tc.ca.Cert)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestAuth_Certificates: an agent with a client CA reads no request from a
// peer without a certificate of that CA; a certificate of another cluster
// is unauthorized; a reader may list and read metrics but not change
// anything, and a refused change changes nothing.
func TestAuth_Certificates(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	if _, _, err := rawGet(tc, n.srv.URL+"/v1/snapshots", nil); err == nil {
		t.Fatal("a client without a certificate got an answer")
	}
	other, _ := ca.NewCA("test", time.Hour)
	cp, kp, _ := other.Issue(ca.Identity{Cluster: "test", Kind: ca.RoleOperator, Name: "mallory"}, nil, time.Hour)
	foreign, _ := tls.X509KeyPair(cp, kp)
	if _, _, err := rawGet(tc, n.srv.URL+"/v1/snapshots", &foreign); err == nil {
		t.Fatal("a certificate of another CA got an answer")
	}
	prod := tc.cert(t, ca.Identity{Cluster: "prod", Kind: ca.RoleOperator, Name: "ops"})
	if code, body, err := rawGet(tc, n.srv.URL+"/v1/snapshots", prod); err != nil || code != 401 || !strings.Contains(body, `"kind":"unauthorized"`) {
		t.Fatalf("another cluster's operator: %d %s %v", code, body, err)
	}

	reader := tc.auth(t, ca.RoleReader)
	rc, err := reader.Client(Member{NodeID: n.id, URL: n.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := rc.List(ctx); err != nil {
		t.Fatalf("a reader's list: %v", err)
	}
	if _, err := rc.Lock(ctx, "x1", time.Second, 5*time.Second, false); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a reader's lock: %v", err)
	}
	if !canWrite(t, n.dir) {
		t.Fatal("a refused lock stopped writes")
	}
	if _, err := rc.Create(ctx, CreateRequest{ID: "2026-01-01T00.00.00Z_x"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a reader's create: %v", err)
	}
	if _, err := rc.StartJob(ctx, "2026-01-01T00.00.00Z_x", "restore", JobRequest{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a reader's restore: %v", err)
	}
	if p := pieces(t, tc.nodes); len(p) != 0 {
		t.Fatalf("refused calls left snapshots: %v", p)
	}
	// A reader coordinator lists the cluster; it cannot create.
	co := &Coordinator{Agency: tc.agency, Auth: reader}
	if _, err := co.List(ctx); err != nil {
		t.Fatalf("cluster list as a reader: %v", err)
	}
	if _, err := co.Create(ctx, CreateOptions{MaxWait: time.Second}); !errors.Is(err, ErrForbidden) || errs.Of(err) != errs.Forbidden {
		t.Fatalf("cluster create as a reader: %v", err)
	}
	// Refused: another cluster's operator, three calls of the reader, the
	// reader coordinator's prepare and its clean-up (unprepare).
	if m := metricsText(t, n); !strings.Contains(m, `hotsnap_unauthorized_requests_total{node="n1"} 6`) {
		t.Errorf("refused requests not counted:\n%s", m)
	}
}

// TestAuth_ForgedRegistration: whoever can write a member into etcd gets
// nothing from a coordinator: an impostor's server (a self-signed
// certificate, or a real node's certificate under another node's id) sees
// no request, and a plain http URL is not even dialled.
func TestAuth_ForgedRegistration(t *testing.T) {
	tc := startCluster(t, 2)
	ctx := context.Background()
	var requests atomic.Int64
	impostor := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer impostor.Close()
	// n1's own certificate, served under the id "n3".
	stolen := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	stolen.TLS = &tls.Config{Certificates: []tls.Certificate{*tc.cert(t, ca.NodeIdentity("test", "n1"))}}
	stolen.StartTLS()
	defer stolen.Close()
	for _, m := range []Member{
		{NodeID: "evil", URL: impostor.URL},
		{NodeID: "n3", URL: stolen.URL},
		{NodeID: "n2", URL: tc.nodes[0].srv.URL}, // n1's real address under n2's id
	} {
		c, err := tc.auth(t, ca.RoleOperator).Client(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.List(ctx); !errors.Is(err, ErrAgentIdentity) {
			t.Fatalf("%s at %s: %v", m.NodeID, m.URL, err)
		}
	}
	if _, err := tc.auth(t, ca.RoleOperator).Client(Member{NodeID: "plain", URL: "http://127.0.0.1:1"}); !errors.Is(err, ErrAgentIdentity) {
		t.Fatalf("a plain http member: %v", err)
	}
	// Registered in etcd, the impostor makes a cluster create fail before
	// any node is locked, and is sent nothing.
	reg, err := tc.agency.Register(ctx, Member{NodeID: "evil", URL: impostor.URL}, defaults.MemberTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := tc.co.Create(ctx, CreateOptions{MaxWait: time.Second}); !errors.Is(err, ErrAgentIdentity) {
		t.Fatalf("create with an impostor registered: %v", err)
	}
	if requests.Load() != 0 {
		t.Fatalf("impostors received %d requests", requests.Load())
	}
	if p := pieces(t, tc.nodes); len(p) != 0 {
		t.Fatalf("pieces: %v", p)
	}
}

// TestAuth_TokenMode: the lab fallback. Operators' and readers' tokens,
// compared in constant time; a wrong or missing token is unauthorized, a
// reader's forbidden to change anything.
func TestAuth_TokenMode(t *testing.T) {
	a, _, call := leaseAgent(t) // operators' token testToken
	_ = a
	readTok := "reader-token-0123456789"
	a2, err := NewAgent(AgentConfig{Layout: a.cfg.Layout, NodeID: "n2", Token: testToken, ReadToken: readTok,
		NewQuiescer: a.cfg.NewQuiescer})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a2.Handler())
	defer srv.Close()
	ctx := context.Background()
	for _, tok := range []string{"", "wrong-token-0123456789abcdef", testToken + "x", testToken[:10]} {
		c, _ := ClientAuth{Token: tok}.Client(Member{NodeID: "n2", URL: srv.URL})
		if _, err := c.List(ctx); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	rc, _ := ClientAuth{Token: readTok}.Client(Member{NodeID: "n2", URL: srv.URL})
	if _, err := rc.List(ctx); err != nil {
		t.Fatalf("reader list: %v", err)
	}
	if _, err := rc.Lock(ctx, "l1", time.Second, time.Second, false); !errors.Is(err, ErrForbidden) {
		t.Fatalf("reader lock: %v", err)
	}
	oc, _ := ClientAuth{Token: testToken}.Client(Member{NodeID: "n2", URL: srv.URL})
	if _, err := oc.Lock(ctx, "l1", time.Second, time.Second, false); err != nil {
		t.Fatalf("operator lock: %v", err)
	}
	oc.Unlock(ctx, "l1")
	if w := call("GET", "/v1/snapshots", nil); w.Code != http.StatusOK {
		t.Fatalf("the first agent: %d", w.Code)
	}
	if _, err := NewAgent(AgentConfig{Layout: a.cfg.Layout, NodeID: "n3", Token: testToken, ReadToken: testToken, NewQuiescer: a.cfg.NewQuiescer}); err == nil {
		t.Fatal("a readers' token equal to the operators' was accepted")
	}
}

// TestAgent_JobsPerClient: one caller may have so many jobs running at
// once; another caller is not held up by it.
func TestAgent_JobsPerClient(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	n.agent.cfg.MaxJobsPerClient = 1
	ctx := context.Background()
	res, err := tc.co.Create(ctx, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := writegate.Open(n.dir)
	defer g.Close()
	tx, err := g.Begin(ctx) // the restore waits for the lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.End()
	if _, err := n.client.StartJob(ctx, res.ID, "restore", JobRequest{JobID: "j1", Nodes: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.StartJob(ctx, res.ID, "verify", JobRequest{JobID: "j2"}); !errors.Is(err, errs.ErrThrottled) {
		t.Fatalf("a second job of one client: %v", err)
	}
	other, _ := ClientAuth{Cluster: "test", CA: tc.auth(t, ca.RoleOperator).CA, Cert: tc.cert(t, ca.Identity{Cluster: "test", Kind: ca.RoleOperator, Name: "other"})}.
		Client(Member{NodeID: n.id, URL: n.srv.URL})
	if _, err := other.StartJob(ctx, res.ID, "verify", JobRequest{JobID: "j3"}); err != nil {
		t.Fatalf("another client's job: %v", err)
	}
	if j := waitJob(t, other, "j3"); j.Status != JobCompleted {
		t.Fatalf("j3: %+v", j)
	}
	n.client.Abort(ctx, "j1")
	waitJob(t, n.client, "j1")
	if _, err := n.client.StartJob(ctx, res.ID, "verify", JobRequest{JobID: "j4"}); err != nil {
		t.Fatalf("a job once the first ended: %v", err)
	}
	waitJob(t, n.client, "j4")
}

// TestEtcd_Security: the agency talks to etcd over TLS with credentials;
// etcd refuses a plaintext client, a TLS client without a certificate and
// a wrong password.
func TestEtcd_Security(t *testing.T) {
	e := testetcd.Start(t)
	ctx := context.Background()
	good := etcdOptions(t, e)
	a, err := Dial(ctx, good)
	if err != nil {
		t.Fatalf("root over TLS: %v", err)
	}
	a.Close()
	plain := good
	plain.TLS, plain.Username, plain.Password, plain.Timeout = nil, "", "", 2*time.Second
	plain.Endpoints = []string{"http://" + strings.TrimPrefix(e.URL, "https://")}
	if _, err := Dial(ctx, plain); err == nil {
		t.Fatal("a plaintext client was served")
	}
	noCert := good
	noCert.TLS = &tls.Config{RootCAs: e.TLS(t).RootCAs}
	noCert.Timeout = 2 * time.Second
	if _, err := Dial(ctx, noCert); err == nil {
		t.Fatal("a TLS client without a client certificate was served")
	}
	wrong := good
	wrong.Password = "not-the-password"
	if _, err := Dial(ctx, wrong); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if _, err := Dial(ctx, DialOptions{Endpoints: []string{e.URL}, Cluster: "test", Username: "root", Password: "x"}); !errors.Is(err, snapshot.ErrInvalid) {
		t.Fatalf("a password without TLS: %v", err)
	}
}
