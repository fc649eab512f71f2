package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeebo/blake3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/examples/bank"
	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/internal/testutil/testetcd"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

const testToken = "test-token-0123456789abcdef" // token-mode agents (auth_test.go, leases_test.go)

// testNode is one in-process agent serving real HTTP on loopback, with its
// own data dir, registered in a real etcd.
type testNode struct {
	id     string
	dir    string
	layout *snapshot.Layout
	agent  *Agent
	srv    *httptest.Server
	reg    *Registration
	client *Client
	// failSwap makes the node's next quiescers fail (a restore that
	// cannot swap); onQuiesce runs inside every Quiesce.
	failSwap  atomic.Bool
	onQuiesce func()
}

type testCluster struct {
	etcd   *testetcd.Etcd
	agency *Agency
	nodes  []*testNode
	co     *Coordinator
	ca     *ca.CA
}

type hookQuiescer struct {
	*quiesce.Flock
	n *testNode
}

func (h hookQuiescer) Quiesce(ctx context.Context, wait time.Duration) error {
	if h.n.failSwap.Load() {
		return fmt.Errorf("%w: injected failure on node %s", snapshot.ErrLockFailed, h.n.id)
	}
	if h.n.onQuiesce != nil {
		h.n.onQuiesce()
	}
	return h.Flock.Quiesce(ctx, wait)
}

func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	e := testetcd.Start(t)
	ag, err := Dial(context.Background(), etcdOptions(t, e))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ag.Close() })
	authority, err := ca.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{etcd: e, agency: ag, ca: authority}
	for i := 1; i <= n; i++ {
		tc.nodes = append(tc.nodes, tc.addNode(t, fmt.Sprintf("n%d", i)))
	}
	tc.co = &Coordinator{Agency: ag, Auth: tc.auth(t, ca.RoleOperator)}
	return tc
}

// etcdOptions dial the secured test etcd as its root user, over TLS with
// the root client certificate.
func etcdOptions(t testing.TB, e *testetcd.Etcd) DialOptions {
	return DialOptions{Endpoints: []string{e.URL}, Cluster: "test", TLS: e.TLS(t), Username: "root", Password: e.Password}
}

// cert issues a certificate of the test cluster's CA.
func (tc *testCluster) cert(t testing.TB, id ca.Identity) *tls.Certificate {
	t.Helper()
	cp, kp, err := tc.ca.Issue(id, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// auth is a coordinator's credentials of role.
func (tc *testCluster) auth(t testing.TB, role string) ClientAuth {
	pool := x509.NewCertPool()
	pool.AddCert(tc.ca.Cert)
	return ClientAuth{Cluster: "test", CA: pool, Cert: tc.cert(t, ca.Identity{Cluster: "test", Kind: role, Name: "test-" + role})}
}

func (tc *testCluster) addNode(t testing.TB, id string) *testNode {
	t.Helper()
	dir := t.TempDir()
	if err := bank.Init(dir, 10, 1000); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "node.txt"), []byte("I am "+id+"\n"), 0o644)
	l, err := snapshot.NewLayout(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	nd := &testNode{id: id, dir: dir, layout: l}
	pool := x509.NewCertPool()
	pool.AddCert(tc.ca.Cert)
	nd.agent, err = NewAgent(AgentConfig{Layout: l, NodeID: id, Cluster: "test", ClientCA: pool,
		NewQuiescer: func(force bool) (quiesce.Quiescer, func()) {
			q := &quiesce.Flock{DataDir: dir, Force: force}
			return hookQuiescer{q, nd}, func() { q.Close() }
		},
		Lock: quiesce.Policy{MaxWait: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	nd.srv = httptest.NewUnstartedServer(nd.agent.Handler())
	nd.srv.TLS = nd.agent.TLSConfig(*tc.cert(t, ca.NodeIdentity("test", id)))
	nd.srv.StartTLS()
	t.Cleanup(nd.srv.Close)
	t.Cleanup(nd.agent.Close)
	m := Member{NodeID: id, URL: nd.srv.URL, ToolVersion: snapshot.ToolVersion, StartedAt: time.Now()}
	nd.reg, err = tc.agency.Register(context.Background(), m, defaults.MemberTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nd.reg.Close)
	if nd.client, err = tc.auth(t, ca.RoleOperator).Client(m); err != nil {
		t.Fatal(err)
	}
	return nd
}

// waitJob polls a job until it has finished. It has no deadline of its
// own: a job that never ends is a hang, for go test's -timeout to report.
func waitJob(t *testing.T, c *Client, id string) *Job {
	t.Helper()
	for {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Finished() {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond until it holds (no deadline of its own: see waitJob).
func eventually(cond func() bool) time.Duration {
	start := time.Now()
	for !cond() {
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// canWrite reports whether a writer gets through dir's gate now.
func canWrite(t *testing.T, dir string) bool {
	t.Helper()
	ok, err := bank.GateOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func pieces(t *testing.T, nodes []*testNode) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, n := range nodes {
		infos, err := snapshot.List(context.Background(), n.layout, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range infos {
			out[n.id] = append(out[n.id], i.ID)
		}
	}
	return out
}

func TestLockLease(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	ctx := context.Background()
	// Held while renewed (that it lasts exactly its lease from the last
	// renewal is TestLease_EndsExactly's, on synctest's clock): a lease of
	// a minute, so a busy machine never lets it end between two calls.
	if _, err := n.client.Lock(ctx, "l1", time.Second, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := n.client.Renew(ctx, "l1", time.Minute); err != nil {
			t.Fatalf("renew %d: %v", i, err)
		}
		if canWrite(t, n.dir) {
			t.Fatal("writes went through a held lock")
		}
	}
	// Another lock id is refused while l1 holds.
	if _, err := n.client.Lock(ctx, "l2", 100*time.Millisecond, time.Second, false); !errors.Is(err, snapshot.ErrLockTimeout) {
		t.Fatalf("second lock: %v", err)
	}
	// Renewed with a short lease and then left: the agent releases it by
	// itself when that lease ends.
	if err := n.client.Renew(ctx, "l1", time.Second); err != nil {
		t.Fatal(err)
	}
	took := eventually(func() bool { return canWrite(t, n.dir) })
	t.Logf("writes resumed %v after the last renewal (lease 1s)", took)
	u, err := n.client.Unlock(ctx, "l1")
	if err != nil || u.Released || u.Outcome != "expired" {
		t.Fatalf("unlock after expiry: %+v %v", u, err)
	}
	// A renewal never takes a released lock again.
	if err := n.client.Renew(ctx, "l1", time.Second); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("renew of an ended lock: %v", err)
	}
	if !canWrite(t, n.dir) {
		t.Fatal("renew re-took the lock")
	}
	// Explicit unlock.
	if _, err := n.client.Lock(ctx, "l3", time.Second, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if u, err := n.client.Unlock(ctx, "l3"); err != nil || !u.Released || u.Outcome != "unlocked" {
		t.Fatalf("unlock: %+v %v", u, err)
	}
	if !canWrite(t, n.dir) {
		t.Fatal("unlock did not resume writes")
	}
	// A lock that cannot drain writes in its period times out cleanly.
	g, _ := writegate.Open(n.dir)
	tx, _ := g.Begin(ctx)
	if _, err := n.client.Lock(ctx, "l4", 200*time.Millisecond, time.Minute, false); !errors.Is(err, snapshot.ErrLockTimeout) {
		t.Fatalf("lock over a long transaction: %v", err)
	}
	tx.End()
	g.Close()
	if !canWrite(t, n.dir) {
		t.Fatal("a timed-out lock kept writes stopped")
	}
	// Bad requests.
	if _, err := n.client.Lock(ctx, "../x", time.Second, time.Second, false); !errors.Is(err, snapshot.ErrInvalid) {
		t.Fatalf("bad lock id: %v", err)
	}
	if _, err := n.client.Lock(ctx, "l5", time.Second, time.Hour, false); !errors.Is(err, snapshot.ErrInvalid) {
		t.Fatalf("lease over the cap: %v", err)
	}
	m := metricsText(t, n)
	for _, want := range []string{`hotsnap_lock_expired_total{node="n1"} 1`, `hotsnap_lock_attempts_total{node="n1",result="timeout"} 2`, `hotsnap_lock_held{node="n1"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func metricsText(t *testing.T, n *testNode) string {
	t.Helper()
	req, _ := http.NewRequest("GET", n.srv.URL+"/metrics", nil)
	resp, err := n.client.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestCreateListDelete(t *testing.T) {
	tc := startCluster(t, 3)
	ctx := context.Background()
	res, err := tc.co.Create(ctx, CreateOptions{Label: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pieces) != 3 || res.PotentiallyInconsistent || res.LockAttempts != 1 {
		t.Fatalf("result: %+v", res)
	}
	for _, n := range tc.nodes {
		m, err := snapshot.ReadManifest(n.layout, res.ID)
		if err != nil {
			t.Fatalf("node %s: %v", n.id, err)
		}
		if m.Node.ID != n.id || strings.Join(m.Topology.Nodes, ",") != "n1,n2,n3" || m.Topology.PlanRevision != res.PlanRevision || m.Topology.PlanRevision == 0 {
			t.Fatalf("node %s manifest: node %v topology %+v", n.id, m.Node, m.Topology)
		}
		var plan Plan
		if err := json.Unmarshal(m.Topology.Plan, &plan); err != nil || len(plan.Nodes) != 3 || plan.Nodes[1].URL != tc.nodes[1].srv.URL {
			t.Fatalf("stored plan: %s %v", m.Topology.Plan, err)
		}
		if m.LockHeldMs <= 0 || !canWrite(t, n.dir) {
			t.Fatalf("node %s: lock held %v ms, writes resumed %v", n.id, m.LockHeldMs, canWrite(t, n.dir))
		}
	}
	l, err := tc.co.List(ctx)
	if err != nil || len(l.Snapshots) != 1 || !l.Snapshots[0].Available || l.Snapshots[0].NrPiecesPresent != 3 {
		t.Fatalf("list: %+v %v", l, err)
	}
	// A piece missing: listed, not available.
	if err := snapshot.Delete(ctx, tc.nodes[1].layout, res.ID, nil); err != nil {
		t.Fatal(err)
	}
	l, _ = tc.co.List(ctx)
	if s := l.Snapshots[0]; s.Available || s.NrPiecesPresent != 2 || strings.Join(s.Missing, ",") != "n2" {
		t.Fatalf("list with a piece missing: %+v", s)
	}
	d, err := tc.co.Delete(ctx, res.ID)
	if err != nil || strings.Join(d.Deleted, ",") != "n1,n3" || strings.Join(d.Absent, ",") != "n2" {
		t.Fatalf("delete: %+v %v", d, err)
	}
	if _, err := tc.co.Delete(ctx, res.ID); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if p := pieces(t, tc.nodes); len(p) != 0 {
		t.Fatalf("pieces left: %v", p)
	}
	m := metricsText(t, tc.nodes[0])
	for _, want := range []string{`hotsnap_create_duration_seconds_count{node="n1"} 1`, `hotsnap_lock_held_seconds_count{node="n1"} 1`,
		`hotsnap_lock_attempts_total{node="n1",result="ok"} 1`, `hotsnap_deletes_total{node="n1"} 1`, `hotsnap_snapshots{node="n1"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestAgencyLock: a second cluster create waits for the first, or fails
// clearly when the wait is too short; two never interleave.
func TestAgencyLock(t *testing.T) {
	tc := startCluster(t, 2)
	ctx := context.Background()
	release, err := tc.agency.LockBackups(ctx, RunningBackup{ID: "manual", Holder: proc.Holder{Host: "elsewhere", Pid: 42}}, time.Second, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.co.Create(ctx, CreateOptions{AgencyWait: 500 * time.Millisecond})
	if !errors.Is(err, ErrBackupRunning) || !errors.Is(err, snapshot.ErrLockTimeout) || !strings.Contains(err.Error(), "pid 42") {
		t.Fatalf("create while another holds the agency lock: %v", err)
	}
	release()
	if p := pieces(t, tc.nodes); len(p) != 0 {
		t.Fatalf("a refused create left pieces: %v", p)
	}
	// Two at once: both succeed, one after the other.
	var wg sync.WaitGroup
	results := make([]*CreateResult, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := tc.co.Create(ctx, CreateOptions{Label: fmt.Sprintf("c%d", i)})
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, a := range results {
		for j, b := range results {
			if i != j && a.heldFrom.Before(b.heldTo) && b.heldFrom.Before(a.heldTo) {
				t.Fatalf("creates %d and %d interleaved: %v-%v and %v-%v", i, j, a.heldFrom, a.heldTo, b.heldFrom, b.heldTo)
			}
		}
	}
	if p := pieces(t, tc.nodes); len(p["n1"]) != 4 || len(p["n2"]) != 4 {
		t.Fatalf("pieces: %v", p)
	}
}

func TestPlanChangeDuringCreate(t *testing.T) {
	tc := startCluster(t, 3)
	ctx := context.Background()
	changed := false
	tc.nodes[1].onQuiesce = func() {
		if !changed {
			changed = true
			tc.agency.SetPlan(ctx, json.RawMessage(`{"shards":4}`))
		}
	}
	_, err := tc.co.Create(ctx, CreateOptions{})
	if !errors.Is(err, ErrPlanChanged) || !strings.Contains(err.Error(), "the user plan joined") {
		t.Fatalf("create across a plan change: %v", err)
	}
	if p := pieces(t, tc.nodes); len(p) != 0 {
		t.Fatalf("pieces left after a plan change: %v", p)
	}
	// Allowed: kept, with a warning; the new plan is in the manifests.
	changed = false
	tc.nodes[1].onQuiesce = func() {
		if !changed {
			changed = true
			tc.agency.SetPlan(ctx, json.RawMessage(`{"shards":5}`))
		}
	}
	res, err := tc.co.Create(ctx, CreateOptions{AllowInconsistent: true})
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "plan changed") {
		t.Fatalf("allowed: %+v %v", res, err)
	}
	// A later create carries the user plan.
	tc.nodes[1].onQuiesce = nil
	res, err = tc.co.Create(ctx, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := snapshot.ReadManifest(tc.nodes[2].layout, res.ID)
	if !strings.Contains(string(m.Topology.Plan), `"user":{"shards":5}`) {
		t.Fatalf("plan in manifest: %s", m.Topology.Plan)
	}
	// A member that drops out in the middle of a create fails it clearly,
	// and no node keeps a piece or a staging folder of it.
	before := pieces(t, tc.nodes)
	tc.nodes[1].onQuiesce = func() { tc.nodes[2].reg.Close() }
	if _, err := tc.co.Create(ctx, CreateOptions{}); !errors.Is(err, ErrPlanChanged) || !strings.Contains(err.Error(), "n3") {
		t.Fatalf("create across a member's leaving: %v", err)
	}
	if after := pieces(t, tc.nodes); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("pieces after a member left: %v, before %v", after, before)
	}
	for _, n := range tc.nodes {
		if ents, _ := os.ReadDir(filepath.Join(n.dir, ".hotsnap", "private", "staging")); len(ents) != 0 {
			t.Fatalf("node %s keeps staging: %v", n.id, ents)
		}
	}
}

func TestRestoreAllOrNone(t *testing.T) {
	tc := startCluster(t, 3)
	ctx := context.Background()
	res, err := tc.co.Create(ctx, CreateOptions{Label: "before"})
	if err != nil {
		t.Fatal(err)
	}
	change := func(s string) {
		for _, n := range tc.nodes {
			// A new file renamed over the old: snapshots share inodes
			// with the live data, so nothing is rewritten in place.
			tmp := filepath.Join(n.dir, "node.txt.tmp")
			os.WriteFile(tmp, []byte(s+n.id+"\n"), 0o644)
			os.Rename(tmp, filepath.Join(n.dir, "node.txt"))
			os.WriteFile(filepath.Join(n.dir, "extra-"+s), []byte(s), 0o644)
		}
	}
	content := func(n *testNode) string {
		b, _ := os.ReadFile(filepath.Join(n.dir, "node.txt"))
		return string(b)
	}
	change("later ")
	// One node fails to swap: the others go back, every node holds "later".
	tc.nodes[2].failSwap.Store(true)
	rr, err := tc.co.Restore(ctx, res.ID, RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "injected failure") || strings.Join(rr.Reverted, ",") != "n1,n2" {
		t.Fatalf("restore with a failing node: %+v %v", rr, err)
	}
	for _, n := range tc.nodes {
		if got := content(n); got != "later "+n.id+"\n" {
			t.Fatalf("node %s after a failed cluster restore: %q", n.id, got)
		}
		if _, err := os.Stat(filepath.Join(n.dir, "extra-later ")); err != nil {
			t.Fatalf("node %s lost a later file: %v", n.id, err)
		}
	}
	tc.nodes[2].failSwap.Store(false)
	// A missing piece: refused before any node changes.
	snapshot.Delete(ctx, tc.nodes[1].layout, res.ID, nil)
	if _, err := tc.co.Restore(ctx, res.ID, RestoreOptions{}); !errors.Is(err, snapshot.ErrNotFound) || !strings.Contains(err.Error(), "no node was changed") {
		t.Fatalf("restore with a piece missing: %v", err)
	}
	for _, n := range tc.nodes {
		if content(n) != "later "+n.id+"\n" {
			t.Fatalf("node %s changed by a refused restore", n.id)
		}
	}
	// A full cluster restore.
	res2, err := tc.co.Create(ctx, CreateOptions{Label: "second"})
	if err != nil {
		t.Fatal(err)
	}
	change("third ")
	if _, err := tc.co.Restore(ctx, res2.ID, RestoreOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if content(tc.nodes[0]) != "third n1\n" {
		t.Fatal("dry run changed data")
	}
	rr, err = tc.co.Restore(ctx, res2.ID, RestoreOptions{})
	if err != nil || !rr.Restored {
		t.Fatalf("restore: %+v %v", rr, err)
	}
	for _, n := range tc.nodes {
		if got := content(n); got != "later "+n.id+"\n" {
			t.Fatalf("node %s after restore: %q", n.id, got)
		}
		if _, err := os.Stat(filepath.Join(n.dir, "extra-third ")); err == nil {
			t.Fatalf("node %s kept a file the snapshot does not have", n.id)
		}
	}
	// A topology that differs is refused: a fourth node joins.
	tc.nodes = append(tc.nodes, tc.addNode(t, "n4"))
	if _, err := tc.co.Restore(ctx, res2.ID, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "topology") {
		t.Fatalf("restore onto 4 nodes: %v", err)
	}
}

func TestJobsUploadDownload(t *testing.T) {
	tc := startCluster(t, 3)
	ctx := context.Background()
	var events []JobsProgress
	var mu sync.Mutex
	tc.co.Progress = func(p JobsProgress) { mu.Lock(); events = append(events, p); mu.Unlock() }
	res, err := tc.co.Create(ctx, CreateOptions{Label: "arch"})
	if err != nil {
		t.Fatal(err)
	}
	remote := "file://" + t.TempDir()
	up, err := tc.co.RunJobs(ctx, "upload", res.ID, JobRequest{Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range up.Jobs {
		if j.Status != JobCompleted || j.FilesDone != j.FilesTotal || j.FilesTotal == 0 {
			t.Fatalf("upload job: %+v", j)
		}
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if _, err := os.Stat(filepath.Join(strings.TrimPrefix(remote, "file://"), "snapshots", res.ID, n+".manifest")); err != nil {
			t.Fatal(err)
		}
	}
	last := events[len(events)-1]
	if last.Done != 3 || last.Nodes != 3 || !strings.Contains(last.String(), "3/3 nodes done; node n1: ") {
		t.Fatalf("last progress: %s", last)
	}
	st, err := tc.co.Status(ctx, up.JobID)
	if err != nil || len(st) != 3 || st[2].Status != JobCompleted {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := tc.co.Delete(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.co.RunJobs(ctx, "download", res.ID, JobRequest{Remote: remote}); err != nil {
		t.Fatal(err)
	}
	l, _ := tc.co.List(ctx)
	if len(l.Snapshots) != 1 || !l.Snapshots[0].Available {
		t.Fatalf("list after download: %+v", l)
	}
	if _, err := tc.co.RunJobs(ctx, "verify", res.ID, JobRequest{}); err != nil {
		t.Fatal(err)
	}
	// A failing node is named; the others complete.
	snapshot.Delete(ctx, tc.nodes[2].layout, res.ID, nil)
	vr, err := tc.co.RunJobs(ctx, "verify", res.ID, JobRequest{})
	if !errors.Is(err, snapshot.ErrNotFound) || !strings.Contains(err.Error(), "node n3") || vr.Jobs[0].Status != JobCompleted || vr.Jobs[2].Status != JobFailed {
		t.Fatalf("verify with a piece missing: %+v %v", vr, err)
	}
	if _, err := tc.co.Status(ctx, "no-such-job"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("status of an unknown job: %v", err)
	}
	m := metricsText(t, tc.nodes[0])
	if !strings.Contains(m, `hotsnap_jobs_total{node="n1",status="COMPLETED",type="upload"} 1`) || strings.Contains(m, `hotsnap_bytes_moved_total{direction="upload",node="n1"} 0`) {
		t.Fatalf("metrics:\n%s", m)
	}
}

func TestMembership(t *testing.T) {
	tc := startCluster(t, 2)
	ctx := context.Background()
	// A node id held by a live agent is refused.
	_, err := tc.agency.Register(ctx, Member{NodeID: "n1", URL: "http://127.0.0.1:1"}, defaults.MemberTTL, nil)
	if !errors.Is(err, snapshot.ErrInvalid) || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate node id: %v", err)
	}
	tc.nodes[1].reg.Close()
	p, err := tc.agency.ReadPlan(ctx)
	if err != nil || strings.Join(p.NodeIDs(), ",") != "n1" {
		t.Fatalf("plan after n2 left: %v %v", p.NodeIDs(), err)
	}
}

// TestPreparedCreate: a prepared create holds the node's operation lock and
// staging only while the coordinator renews it; then it is dropped.
func TestPreparedCreate(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	ctx := context.Background()
	id := "2026-01-01T00.00.00Z_prep"
	staging := filepath.Join(n.dir, ".hotsnap", "private", "staging", id)
	// Renewed, it stays (exact timing: TestPrepared_ExpiresExactly); a ttl
	// of a minute, so a busy machine never lets it end between two calls.
	if err := n.client.Prepare(ctx, id, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := n.client.RenewPrepared(ctx, id, time.Minute); err != nil {
			t.Fatalf("renew %d: %v", i, err)
		}
	}
	if _, err := os.Stat(staging); err != nil {
		t.Fatalf("a renewed prepared create lost its staging: %v", err)
	}
	// Renewed with a short ttl and then left: dropped when it ends.
	if err := n.client.RenewPrepared(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(func() bool { _, err := os.Stat(staging); return err != nil })
	// The operation lock is free again: a local create goes through.
	if _, err := snapshot.Create(ctx, n.layout, snapshot.CreateOptions{Label: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := n.client.RenewPrepared(ctx, id, time.Second); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("renew of an expired prepare: %v", err)
	}
	// Dropped by the coordinator.
	if err := n.client.Prepare(ctx, id, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := n.client.Prepare(ctx, id, nil, time.Minute); err == nil || !strings.Contains(err.Error(), "prepared already") {
		t.Fatalf("second prepare: %v", err)
	}
	if err := n.client.Unprepare(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staging); err == nil {
		t.Fatal("unprepare left staging")
	}
	if err := n.client.Unprepare(ctx, id); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("second unprepare: %v", err)
	}
	// Used by the create of the same id.
	if err := n.client.Prepare(ctx, id, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.Lock(ctx, "lk", time.Second, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.Create(ctx, CreateRequest{ID: id, LockID: "lk"}); err != nil {
		t.Fatal(err)
	}
	if u, _ := n.client.Unlock(ctx, "lk"); u.Released || u.Outcome != "captured" {
		t.Fatalf("unlock after create: %+v", u)
	}
	if p := pieces(t, tc.nodes); len(p["n1"]) != 2 {
		t.Fatalf("pieces: %v", p)
	}
}

// TestJobAbort: a restore job waiting for the write lock (a writer holds
// it) is aborted while it waits: it ends ABORTED, its quiescer saw the
// cancellation, and the data dir is unchanged.
func TestJobAbort(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	ctx := context.Background()
	res, err := tc.co.Create(ctx, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(n.dir, "node.txt.tmp")
	os.WriteFile(tmp, []byte("changed\n"), 0o644)
	os.Rename(tmp, filepath.Join(n.dir, "node.txt"))
	g, _ := writegate.Open(n.dir)
	defer g.Close()
	tx, err := g.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.End()
	waiting := make(chan struct{})
	n.onQuiesce = func() { close(waiting) } // verified, built, now waiting for the lock
	j, err := n.client.StartJob(ctx, res.ID, "restore", JobRequest{JobID: "abort-me", Nodes: []string{"n1"}})
	if err != nil || j.ID != "abort-me" {
		t.Fatalf("start: %+v %v", j, err)
	}
	<-waiting
	if j, err = n.client.Job(ctx, "abort-me"); err != nil || j.Status != JobRunning {
		t.Fatalf("job before abort: %+v %v", j, err)
	}
	// The abort's answer says how the job ended: it waits for it.
	if j, err = n.client.Abort(ctx, "abort-me"); err != nil || j.Status != JobAborted {
		t.Fatalf("abort answered %+v %v, want the job ABORTED", j, err)
	}
	j = waitJob(t, n.client, "abort-me")
	if j.Status != JobAborted || j.Error == nil || j.Error.Kind != errs.Interrupted.String() || !strings.Contains(j.Error.Message, "context canceled") {
		t.Fatalf("aborted job: %+v", j)
	}
	if b, _ := os.ReadFile(filepath.Join(n.dir, "node.txt")); string(b) != "changed\n" {
		t.Fatalf("an aborted restore changed the data: %q", b)
	}
	// The same through the coordinator: a detached job, then its abort.
	waiting = make(chan struct{})
	n.onQuiesce = func() { close(waiting) }
	jr, err := tc.co.StartJobs(ctx, "restore", res.ID, JobRequest{Nodes: []string{"n1"}})
	if err != nil || jr.JobID == "" || len(jr.Jobs) != 1 {
		t.Fatalf("detached start: %+v %v", jr, err)
	}
	<-waiting
	jobs, err := tc.co.Abort(ctx, jr.JobID)
	if err != nil || len(jobs) != 1 || jobs[0].Status != JobAborted {
		t.Fatalf("coordinator abort: %+v %v", jobs, err)
	}
	if _, err := n.client.StartJob(ctx, res.ID, "restore", JobRequest{JobID: "abort-me"}); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("a reused job id: %v", err)
	}
	if _, err := n.client.StartJob(ctx, res.ID, "explode", JobRequest{}); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("an unknown job type: %v", err)
	}
}

// TestForce: --force reaches every node's quiescer, so a long transaction
// that honours Tx.AbortRequested lets the cluster lock in.
func TestForce(t *testing.T) {
	tc := startCluster(t, 2)
	ctx := context.Background()
	g, _ := writegate.Open(tc.nodes[1].dir)
	defer g.Close()
	tx, err := g.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aborted := make(chan struct{})
	go func() {
		defer close(aborted)
		for !tx.AbortRequested() {
			time.Sleep(5 * time.Millisecond)
		}
		tx.End()
	}()
	if _, err := tc.co.Create(ctx, CreateOptions{MaxWait: 500 * time.Millisecond}); !errors.Is(err, snapshot.ErrLockTimeout) {
		t.Fatalf("without force: %v", err)
	}
	res, err := tc.co.Create(ctx, CreateOptions{MaxWait: 10 * time.Second, Force: true})
	if err != nil || res.PotentiallyInconsistent {
		t.Fatalf("with force: %+v %v", res, err)
	}
	<-aborted
}

// TestMembership_UnderLoad: agents whose machine is busy (every CPU taken
// by other processes, and this process hashing on all of its threads)
// stay members for longer than a member lease: etcd sees no member key
// deleted. The lease is the default one, renewed by etcd's client in a
// goroutine of its own.
func TestMembership_UnderLoad(t *testing.T) {
	tc := startCluster(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, err := tc.agency.cli.Get(ctx, tc.agency.memberKey(""), clientv3.WithPrefix())
	if err != nil || len(start.Kvs) != 3 {
		t.Fatalf("members at the start: %v %v", start, err)
	}
	w := tc.agency.cli.Watch(ctx, tc.agency.memberKey(""), clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	testserver.Hog(t, 2*runtime.NumCPU())
	var work sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		work.Add(1)
		go func() {
			defer work.Done()
			buf := make([]byte, 1<<20)
			for ctx.Err() == nil {
				blake3.Sum256(buf)
			}
		}()
	}
	// Creates on every node keep the agents working too.
	go func() {
		for ctx.Err() == nil {
			tc.co.Create(ctx, CreateOptions{})
		}
	}()
	window := defaults.MemberTTL + 5*time.Second
	timer := time.NewTimer(window)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case <-timer.C:
			done = true
		case wr := <-w:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					t.Fatalf("member %s dropped out under load", ev.Kv.Key)
				}
			}
		}
	}
	cancel()
	work.Wait()
	p, err := tc.agency.ReadPlan(context.Background())
	if err != nil || len(p.Nodes) != 3 {
		t.Fatalf("members after %v under load: %v %v", window, p.NodeIDs(), err)
	}
}

// TestRegister_DeadHolder: a registration left by a dead agent of this
// host (its pid gone) is taken over at once; one of a live agent, or of
// another host, is refused, saying when its lease ends.
func TestRegister_DeadHolder(t *testing.T) {
	tc := startCluster(t, 0)
	ctx := context.Background()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st, err := proc.ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	gone := proc.Self()
	gone.Pid, gone.Start = cmd.Process.Pid, st.Start
	cmd.Process.Kill()
	cmd.Wait()
	plant := func(id string, h proc.Holder) {
		t.Helper()
		l, err := tc.agency.cli.Grant(ctx, 600)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(Member{NodeID: id, URL: "http://127.0.0.1:1", Holder: h})
		if _, err := tc.agency.cli.Put(ctx, tc.agency.memberKey(id), string(b), clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
	}
	plant("dead", gone)
	reg, err := tc.agency.Register(ctx, Member{NodeID: "dead", URL: "http://127.0.0.1:2"}, defaults.MemberTTL, nil)
	if err != nil {
		t.Fatalf("register over a dead agent's key: %v", err)
	}
	defer reg.Close()
	p, _ := tc.agency.ReadPlan(ctx)
	if m, ok := p.Node("dead"); !ok || m.URL != "http://127.0.0.1:2" || m.Pid != os.Getpid() {
		t.Fatalf("after the take-over: %+v", p.Nodes)
	}
	// A live holder (this process) and one of another host stay.
	elsewhere := gone
	elsewhere.Host = "another-host"
	plant("far", elsewhere)
	plant("live", proc.Self())
	for _, id := range []string{"far", "live"} {
		_, err := tc.agency.Register(ctx, Member{NodeID: id, URL: "http://127.0.0.1:3"}, defaults.MemberTTL, nil)
		if !errors.Is(err, snapshot.ErrInvalid) || !strings.Contains(err.Error(), "already registered") || !strings.Contains(err.Error(), "its lease ends in") {
			t.Fatalf("register over %s: %v", id, err)
		}
	}
}

// TestRegister_KeepsLiveLease: registering again after the client stopped
// hearing renewals keeps the lease if etcd still has it (no gap in the
// membership), and takes a new one if it ended.
func TestRegister_KeepsLiveLease(t *testing.T) {
	tc := startCluster(t, 0)
	ctx := context.Background()
	key, val := tc.agency.memberKey("n9"), `{"nodeId":"n9"}`
	first, err := tc.agency.register(ctx, key, val, 0, 60, slog.New(slog.DiscardHandler))
	if err != nil || first.kept {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := tc.agency.register(ctx, key, val, first.lease, 60, slog.New(slog.DiscardHandler))
	if err != nil || !again.kept || again.lease != first.lease {
		t.Fatalf("again with the lease alive: %+v %v", again, err)
	}
	if _, err := tc.agency.cli.Revoke(ctx, first.lease); err != nil {
		t.Fatal(err)
	}
	third, err := tc.agency.register(ctx, key, val, first.lease, 60, slog.New(slog.DiscardHandler))
	if err != nil || third.kept || third.lease == first.lease {
		t.Fatalf("again after the lease ended: %+v %v", third, err)
	}
	tc.agency.cli.Revoke(ctx, third.lease)
}
