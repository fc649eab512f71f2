package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/internal/bank"
	"github.com/hotsnap/hotsnap/internal/testetcd"
	"github.com/hotsnap/hotsnap/internal/testserver"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// procCluster is a real etcd (in the test process, on loopback) and agents
// run as real `hotsnap agent` processes, each with its own data dir.
type procCluster struct {
	t      *testing.T
	bin    string
	etcd   string
	token  string
	agents map[string]*procAgent
}

type procAgent struct {
	id, dir string
	cmd     *exec.Cmd
	url     string
	log     *syncBuffer
}

// syncBuffer is a buffer the process's stderr copier and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newProcCluster(t *testing.T) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, bin: buildTestBinary(t), etcd: testetcd.Start(t).URL, agents: map[string]*procAgent{}}
	pc.token = filepath.Join(t.TempDir(), "token")
	os.WriteFile(pc.token, []byte("proc-test-token-0123456789\n"), 0o600)
	return pc
}

func (pc *procCluster) clusterArgs() []string {
	return []string{"--etcd", pc.etcd, "--cluster", "pt", "--token-file", pc.token}
}

// startAgent starts an agent on a free loopback port and waits for its
// "ready" line.
func (pc *procCluster) startAgent(id, dir string, env []string, extra ...string) *procAgent {
	t := pc.t
	t.Helper()
	args := append([]string{"agent", "--data-dir", dir, "--node-id", id, "--listen", "127.0.0.1:0", "--json",
		"--member-ttl", "2s", "--max-wait-for-lock", "5s", "--log-level", "info"}, pc.clusterArgs()...)
	cmd := exec.Command(pc.bin, append(args, extra...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	a := &procAgent{id: id, dir: dir, cmd: cmd, log: &syncBuffer{}}
	cmd.Stderr = a.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.stop() })
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["type"] == "ready" {
				ready <- m
			}
		}
	}()
	select {
	case m := <-ready:
		a.url = m["url"].(string)
	case <-time.After(60 * time.Second):
		t.Fatalf("agent %s not ready in 60s: %s", id, a.log)
	}
	pc.agents[id] = a
	return a
}

// startAgents starts agents n1, n2, ... on dirs.
func (pc *procCluster) startAgents(dirs []string) {
	pc.t.Helper()
	for i, d := range dirs {
		pc.startAgent(fmt.Sprintf("n%d", i+1), d, nil)
	}
}

// stop ends the agent by pid: SIGTERM, then SIGKILL.
func (a *procAgent) stop() {
	if a.cmd.ProcessState != nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// hotsnap runs the CLI as a process: exit code and stdout.
func (pc *procCluster) hotsnap(env []string, args ...string) (int, string, string) {
	pc.t.Helper()
	cmd := exec.Command(pc.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			code = -int(ws.Signal())
		}
	} else if err != nil {
		pc.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func (pc *procCluster) cluster(env []string, sub string, args ...string) (int, string, string) {
	return pc.hotsnap(env, append(append([]string{"cluster", sub, "--json"}, pc.clusterArgs()...), args...)...)
}

func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
}

func localPieces(t *testing.T, dirs ...string) []snapshot.Info {
	t.Helper()
	var out []snapshot.Info
	for _, d := range dirs {
		l, _ := snapshot.NewLayout(d, "")
		infos, err := snapshot.List(context.Background(), l, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, infos...)
	}
	return out
}

func bankDirs(t *testing.T, n, accounts int) []string {
	t.Helper()
	var dirs []string
	for i := 0; i < n; i++ {
		d := t.TempDir()
		if err := bank.Init(d, accounts, 1000); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func clusterSum(t *testing.T, dirs []string, id string) int64 {
	t.Helper()
	var total int64
	for _, d := range dirs {
		root := d
		if id != "" {
			l, _ := snapshot.NewLayout(d, "")
			root = l.TreeDir(id)
		}
		s, n, err := bank.Sum(root)
		if err != nil || n == 0 {
			t.Fatalf("sum %s: %d accounts, %v", root, n, err)
		}
		total += s
	}
	return total
}

// TestCluster_Bank takes cluster snapshots in a loop while writers move
// money between accounts on different nodes: every snapshot, summed over the
// nodes, holds the opening total. A control without the lock shows the
// workload would catch a snapshot that is not one instant on every node.
// Then one snapshot is restored on every node and checked again.
func TestCluster_Bank(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 20)
	const total = 3 * 20 * 1000
	pc.startAgents(dirs)
	w := &bank.ClusterWriter{DataDirs: dirs, Accounts: 20, Think: 2 * time.Millisecond}
	stop, err := w.Run(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 6; i++ {
		code, out, serr := pc.cluster(nil, "create", "--label", fmt.Sprintf("bank%d", i), "--max-wait-for-lock", "60s")
		if code != 0 {
			stop()
			t.Fatalf("cluster create: exit %d: %s %s", code, out, serr)
		}
		var res cluster.CreateResult
		lastJSON(t, out, &res)
		if res.PotentiallyInconsistent || len(res.Pieces) != 3 {
			t.Fatalf("create: %+v", res)
		}
		if got := clusterSum(t, dirs, res.ID); got != total {
			stop()
			t.Fatalf("cluster snapshot %s sums to %d, want %d", res.ID, got, total)
		}
		t.Logf("snapshot %d: %d lock attempt(s), writes paused at most %.1f ms, %d transfers so far", i, res.LockAttempts, res.MaxLockHeldMs, w.Transfers.Load())
		ids = append(ids, res.ID)
	}
	// Control: per-node snapshots taken one after the other, without the
	// cluster lock, catch transfers between nodes half done.
	caught := false
	for i := 0; i < 30 && !caught; i++ {
		id := fmt.Sprintf("2026-01-01T00.00.%02dZ_control", i)
		whole := true
		for _, d := range dirs {
			l, _ := snapshot.NewLayout(d, "")
			// Without a lock a writer's temp file can be caught half
			// written; create refuses that piece (modified in place).
			if _, err := snapshot.Create(context.Background(), l, snapshot.CreateOptions{ID: id}); errors.Is(err, snapshot.ErrModifiedInPlace) {
				whole = false
				break
			} else if err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Millisecond)
		}
		caught = whole && clusterSum(t, dirs, id) != total
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !caught {
		t.Fatal("control: 30 unlocked per-node snapshots all summed right; the workload does not test the cluster lock")
	}
	if w.Transfers.Load() < 50 {
		t.Fatalf("only %d transfers ran", w.Transfers.Load())
	}
	if got := clusterSum(t, dirs, ""); got != total {
		t.Fatalf("live data sums to %d", got)
	}
	code, out, _ := pc.cluster(nil, "list")
	var l cluster.ListResult
	lastJSON(t, out, &l)
	avail := 0
	for _, s := range l.Snapshots {
		if s.Available {
			avail++
		}
	}
	if code != 0 || avail < 6 {
		t.Fatalf("cluster list: exit %d, %d available: %s", code, avail, out)
	}
	// Restore one on every node: the live accounts are the snapshot's.
	pick := ids[2]
	want := map[string]string{}
	for _, d := range dirs {
		l, _ := snapshot.NewLayout(d, "")
		files, _ := filepath.Glob(filepath.Join(l.TreeDir(pick), bank.Dir, "acct-*.bal"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			want[d+"/"+filepath.Base(f)] = string(b)
		}
	}
	code, out, serr := pc.cluster(nil, "restore", "--id", pick)
	if code != 0 {
		t.Fatalf("cluster restore: exit %d %s %s", code, out, serr)
	}
	for k, v := range want {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(k), bank.Dir, filepath.Base(k)))
		if err != nil || string(b) != v {
			t.Fatalf("%s after restore: %q %v, want %q", k, b, err, v)
		}
	}
	if got := clusterSum(t, dirs, ""); got != total {
		t.Fatalf("restored data sums to %d", got)
	}
}

// TestCluster_LongTransaction: a writer holding one node's write lock for
// 10 s makes a cluster create with a 3 s wait fail with exit 3, leaving no
// piece anywhere; with --allow-inconsistent it succeeds, flagged everywhere.
func TestCluster_LongTransaction(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 5)
	pc.startAgents(dirs)
	g, _ := writegate.Open(dirs[1])
	tx, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	txEnd := time.AfterFunc(10*time.Second, func() { tx.End() })
	defer func() {
		if txEnd.Stop() {
			tx.End()
		}
		g.Close()
	}()
	start := time.Now()
	code, out, serr := pc.cluster(nil, "create", "--max-wait-for-lock", "3s")
	took := time.Since(start)
	if code != exitLockTimeout || !strings.Contains(out, "lock_timeout") || !strings.Contains(out, "n2") {
		t.Fatalf("create over a long transaction: exit %d %s %s", code, out, serr)
	}
	if took > 9*time.Second {
		t.Fatalf("create took %v: it waited for the transaction", took)
	}
	// Periods of 100 ms growing by 10 % fill 3 s in about 15 attempts
	// (fewer when each attempt's round trips add up).
	m := regexp.MustCompile(`\((\d+) attempts; last timed out: n2\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no attempt count in %s", out)
	}
	// (Constant periods would give 30, doubling ones 5.)
	if n, _ := strconv.Atoi(m[1]); n < 7 || n > 16 {
		t.Fatalf("%d lock attempts in 3 s; periods growing by 10 %% from 100 ms give 15", n)
	}
	if p := localPieces(t, dirs...); len(p) != 0 {
		t.Fatalf("a timed-out cluster create left pieces: %+v", p)
	}
	for _, d := range []string{dirs[0], dirs[2]} {
		g2, _ := writegate.Open(d)
		tx2, err := g2.TryBegin()
		if err != nil {
			t.Fatalf("writes on %s blocked after a failed create: %v", d, err)
		}
		tx2.End()
		g2.Close()
	}
	code, out, serr = pc.cluster(nil, "create", "--max-wait-for-lock", "3s", "--allow-inconsistent")
	if code != 0 {
		t.Fatalf("allow-inconsistent: exit %d %s %s", code, out, serr)
	}
	var res cluster.CreateResult
	lastJSON(t, out, &res)
	p := localPieces(t, dirs...)
	if !res.PotentiallyInconsistent || len(p) != 3 {
		t.Fatalf("allow-inconsistent: %+v, pieces %+v", res, p)
	}
	for _, i := range p {
		if !i.PotentiallyInconsistent || i.ID != res.ID {
			t.Fatalf("piece not flagged: %+v", i)
		}
	}
}

// TestCluster_KillCoordinator kills a real coordinator right after it locked
// every node: the agents release the locks themselves when the lease ends,
// no piece exists, and the agency lock frees itself too.
func TestCluster_KillCoordinator(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 5)
	pc.startAgents(dirs)
	const lease = 2 * time.Second
	code, out, serr := pc.cluster([]string{"HOTSNAP_CRASH_AT=cluster.locked"}, "create", "--lock-lease", lease.String())
	killed := time.Now()
	if code != -int(syscall.SIGKILL) {
		t.Fatalf("coordinator not killed: exit %d %s %s", code, out, serr)
	}
	gates := make([]*writegate.Gate, len(dirs))
	for i, d := range dirs {
		gates[i], _ = writegate.Open(d)
		defer gates[i].Close()
		if tx, err := gates[i].TryBegin(); err == nil {
			tx.End()
			t.Fatalf("writes on %s were not stopped when the coordinator died", d)
		}
	}
	blocked := make([]time.Duration, len(dirs))
	errs := make(chan error, len(dirs))
	for i := range dirs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tx, err := gates[i].Begin(ctx)
			if err != nil {
				errs <- fmt.Errorf("writes on %s stayed blocked 20s after the coordinator died", dirs[i])
				return
			}
			blocked[i] = time.Since(killed)
			tx.End()
			errs <- nil
		}()
	}
	for range dirs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("writes blocked after the coordinator's death: %v (lease %v)", blocked, lease)
	for _, b := range blocked {
		if b > lease+time.Second {
			t.Fatalf("writes stayed blocked %v, lease %v", b, lease)
		}
	}
	if p := localPieces(t, dirs...); len(p) != 0 {
		t.Fatalf("pieces after the coordinator died: %+v", p)
	}
	code, out, _ = pc.cluster(nil, "list")
	var l cluster.ListResult
	lastJSON(t, out, &l)
	if code != 0 || len(l.Snapshots) != 0 {
		t.Fatalf("list: %d %s", code, out)
	}
	// The dead coordinator's agency lock ends with its session.
	code, out, serr = pc.cluster(nil, "create", "--max-wait-for-agency", "20s")
	if code != 0 {
		t.Fatalf("create after the coordinator died: exit %d %s %s", code, out, serr)
	}
	for _, a := range pc.agents {
		if !strings.Contains(a.log.String(), "lock lease ended without renewal or release") {
			t.Errorf("agent %s did not log the lease end:\n%s", a.id, a.log)
		}
	}
}

// TestCluster_KillAgentMidCreate: an agent killed while capturing makes the
// cluster create fail; the other pieces are deleted, nothing is available,
// the dead agent leaves the membership, and a restarted agent cleans its
// staging.
func TestCluster_KillAgentMidCreate(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 5)
	pc.startAgent("n1", dirs[0], nil)
	pc.startAgent("n2", dirs[1], []string{"HOTSNAP_CRASH_AT=create.linked"})
	pc.startAgent("n3", dirs[2], nil)
	code, out, serr := pc.cluster(nil, "create")
	if code == 0 || !strings.Contains(out, "node n2") {
		t.Fatalf("create with an agent killed: exit %d %s %s", code, out, serr)
	}
	if p := localPieces(t, dirs[0], dirs[2]); len(p) != 0 {
		t.Fatalf("pieces left on the live nodes: %+v", p)
	}
	pc.agents["n2"].cmd.Wait()
	// The dead agent drops out of the membership when its lease ends.
	start := time.Now()
	for { // no deadline of its own: a member that never leaves is a hang for go test's -timeout
		_, out, _ := pc.cluster(nil, "plan")
		if !strings.Contains(out, `"nodeId":"n2"`) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("n2 left the membership %v after the failed create", time.Since(start))
	code, out, _ = pc.cluster(nil, "list")
	var l cluster.ListResult
	lastJSON(t, out, &l)
	if code != 0 || len(l.Snapshots) != 0 || strings.Join(l.Nodes, ",") != "n1,n3" {
		t.Fatalf("list: %s", out)
	}
	// Back again: the staging of the killed create is cleaned, and a
	// cluster create works.
	pc.startAgent("n2", dirs[1], nil)
	code, out, serr = pc.cluster(nil, "create")
	if code != 0 {
		t.Fatalf("create after the restart: exit %d %s %s", code, out, serr)
	}
	if ents, _ := os.ReadDir(filepath.Join(dirs[1], ".hotsnap", "private", "staging")); len(ents) != 0 {
		t.Fatalf("staging left: %v", ents)
	}
	code, out, _ = pc.cluster(nil, "list")
	lastJSON(t, out, &l)
	if code != 0 || len(l.Snapshots) != 1 || !l.Snapshots[0].Available || l.Snapshots[0].NrPiecesPresent != 3 {
		t.Fatalf("list: %s", out)
	}
}

// TestCluster_CLI covers the agent's and coordinator's flags: TLS, a node
// id taken twice, bad tokens, upload and download through file://, status.
func TestCluster_CLI(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 2, 3)
	certFile, keyFile := selfSigned(t)
	pc.startAgent("n1", dirs[0], nil, "--tls-cert", certFile, "--tls-key", keyFile)
	pc.startAgent("n2", dirs[1], nil, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(pc.agents["n1"].url, "https://") {
		t.Fatalf("TLS agent url %s", pc.agents["n1"].url)
	}
	// Without the CA the coordinator refuses the agents' certificate.
	code, out, _ := pc.cluster(nil, "list")
	if code == 0 || !strings.Contains(out, "certificate") {
		t.Fatalf("list without the CA: exit %d %s", code, out)
	}
	ca := []string{"--tls-ca", certFile}
	code, out, serr := pc.cluster(nil, "create", append(ca, "--label", "tls")...)
	if code != 0 {
		t.Fatalf("create over TLS: %d %s %s", code, out, serr)
	}
	var res cluster.CreateResult
	lastJSON(t, out, &res)
	// A second agent with a taken node id is refused, clearly.
	code, _, serr = pc.hotsnap(nil, append([]string{"agent", "--data-dir", t.TempDir(), "--node-id", "n1", "--listen", "127.0.0.1:0"}, pc.clusterArgs()...)...)
	if code != exitUsage || !strings.Contains(serr, "already registered") {
		t.Fatalf("duplicate agent: exit %d %s", code, serr)
	}
	// A wrong token: exit 1, nothing listed.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("another-token-0123456789"), 0o600)
	code, out, _ = pc.hotsnap(nil, "cluster", "list", "--json", "--etcd", pc.etcd, "--cluster", "pt", "--token-file", bad, "--tls-ca", certFile)
	if code != exitError || !strings.Contains(out, "no agent answered") || !strings.Contains(out, "node n1: unauthorized") {
		t.Fatalf("list with a wrong token: exit %d %s", code, out)
	}
	var lr cluster.ListResult
	// Upload, delete, download, with per-node progress lines.
	remote := "file://" + t.TempDir()
	code, out, serr = pc.cluster(nil, "upload", append(ca, "--id", res.ID, "--remote", remote)...)
	if code != 0 || !strings.Contains(out, `"type":"progress"`) || !strings.Contains(out, `"nodesDone":2`) {
		t.Fatalf("upload: %d %s %s", code, out, serr)
	}
	var jr cluster.JobsResult
	lastJSON(t, out, &jr)
	code, out, _ = pc.cluster(nil, "status", append(ca, "--job", jr.JobID)...)
	if code != 0 || strings.Count(out, `"status":"COMPLETED"`) != 2 {
		t.Fatalf("status: %d %s", code, out)
	}
	if code, out, _ = pc.cluster(nil, "delete", append(ca, "--id", res.ID)...); code != 0 {
		t.Fatalf("delete: %d %s", code, out)
	}
	code, out, serr = pc.cluster(nil, "download", append(ca, "--id", res.ID, "--remote", remote)...)
	if code != 0 {
		t.Fatalf("download: %d %s %s", code, out, serr)
	}
	code, out, _ = pc.cluster(nil, "list", ca...)
	lastJSON(t, out, &lr)
	if code != 0 || len(lr.Snapshots) != 1 || !lr.Snapshots[0].Available {
		t.Fatalf("list after download: %s", out)
	}
	// Exit codes of the coordinator.
	if code, _, _ = pc.cluster(nil, "restore", append(ca, "--id", "2026-01-01T00.00.00Z_none")...); code != exitNotFound {
		t.Fatalf("restore of a missing snapshot: exit %d", code)
	}
	if code, _, _ = pc.hotsnap(nil, "cluster", "list", "--etcd", pc.etcd, "--cluster", "pt"); code != exitUsage {
		t.Fatalf("no token file: exit %d", code)
	}
	if code, _, _ = pc.hotsnap(nil, "cluster", "list", "--etcd", pc.etcd, "--cluster", "p/t", "--token-file", pc.token); code != exitUsage {
		t.Fatalf("bad cluster name: exit %d", code)
	}
	if code, _, _ = pc.cluster(nil, "create", append(ca, "--lock-lease", "1ms")...); code != exitUsage {
		t.Fatalf("a 1ms lease: exit %d", code)
	}
	// A cluster with no agent, and an etcd that does not answer.
	if code, out, _ = pc.hotsnap(nil, "cluster", "create", "--json", "--etcd", pc.etcd, "--cluster", "empty", "--token-file", pc.token); code != exitNotFound || !strings.Contains(out, "no live agents") {
		t.Fatalf("create in an empty cluster: exit %d %s", code, out)
	}
	dead := fmt.Sprintf("http://127.0.0.1:%d", testserver.FreePort(t))
	if code, out, _ = pc.hotsnap(nil, "cluster", "list", "--json", "--etcd", dead, "--cluster", "pt", "--token-file", pc.token); code != exitError || !strings.Contains(out, "does not answer") {
		t.Fatalf("list with etcd down: exit %d %s", code, out)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hotsnap-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cf, kf
}
