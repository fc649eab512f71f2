package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/examples/bank"
	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/internal/testutil/testetcd"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// procCluster is a real etcd (in the test process, on loopback) and agents
// run as real `hotsnap agent` processes, each with its own data dir.
type procCluster struct {
	t       *testing.T
	bin     string
	etcd    string
	etcdTLS []string // --etcd-cacert ... --etcd-password-file: the secured etcd's credentials
	caDir   string   // the cluster CA (hotsnap cluster ca init)
	op      []string // an operator's --tls-cert and --tls-key
	agents  map[string]*procAgent
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

// newProcCluster starts a secured etcd (TLS with client certificates,
// auth on) and makes the cluster's CA and an operator's certificate with
// the CLI, as the README says: every agent and coordinator uses them.
func newProcCluster(t *testing.T) *procCluster {
	t.Helper()
	e := testetcd.Start(t)
	pc := &procCluster{t: t, bin: buildTestBinary(t), etcd: e.URL, agents: map[string]*procAgent{}, caDir: filepath.Join(t.TempDir(), "ca")}
	pc.etcdTLS = []string{"--etcd-cacert", e.CA, "--etcd-cert", e.ClientCert, "--etcd-key", e.ClientKey, "--etcd-user", "root", "--etcd-password-file", e.PasswordFile}
	if code, _, serr := pc.hotsnap(nil, "cluster", "ca", "init", "--cluster", "pt", "--dir", pc.caDir); code != 0 {
		t.Fatalf("ca init: %s", serr)
	}
	pc.op = pc.issue("--operator", "ops")
	return pc
}

// issue makes a certificate of the cluster CA (--node ID, --operator NAME
// or --reader NAME) and returns its --tls-cert and --tls-key flags.
func (pc *procCluster) issue(kind, name string) []string {
	pc.t.Helper()
	out := filepath.Join(pc.t.TempDir(), name)
	if code, _, serr := pc.hotsnap(nil, "cluster", "ca", "issue", "--cluster", "pt", "--ca-dir", pc.caDir, kind, name, "--host", "127.0.0.1", "--out", out); code != 0 {
		pc.t.Fatalf("ca issue %s %s: %s", kind, name, serr)
	}
	return []string{"--tls-cert", out + ".pem", "--tls-key", out + "-key.pem"}
}

// etcdArgs reach the secured etcd for cluster name.
func (pc *procCluster) etcdArgs(name string) []string {
	return append([]string{"--etcd", pc.etcd, "--cluster", name}, pc.etcdTLS...)
}

// clusterArgs are a coordinator's flags: etcd, the cluster CA and the
// operator's certificate.
func (pc *procCluster) clusterArgs() []string {
	return append(append(pc.etcdArgs("pt"), "--tls-ca", filepath.Join(pc.caDir, "ca.pem")), pc.op...)
}

// startAgent starts an agent on a free loopback port and waits for its
// "ready" line.
func (pc *procCluster) startAgent(id, dir string, env []string, extra ...string) *procAgent {
	t := pc.t
	t.Helper()
	args := append([]string{"agent", "--data-dir", dir, "--node-id", id, "--listen", "127.0.0.1:0", "--json",
		"--max-wait-for-lock", "5s", "--log-level", "info"}, pc.etcdArgs("pt")...)
	args = append(append(args, "--tls-ca", filepath.Join(pc.caDir, "ca.pem")), pc.issue("--node", id)...)
	return pc.startProc(id, dir, env, append(args, extra...))
}

// startRaw starts an agent with exactly args (no env).
func (pc *procCluster) startRaw(id, dir string, args []string) *procAgent {
	pc.t.Helper()
	return pc.startProc(id, dir, nil, args)
}

func (pc *procCluster) startProc(id, dir string, env, args []string) *procAgent {
	t := pc.t
	t.Helper()
	cmd := exec.Command(pc.bin, args...)
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
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["state"] == "ready" {
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

// waitLog waits until the agent has logged substr. The deadline only
// bounds a hang: an event that never comes.
func (a *procAgent) waitLog(t *testing.T, substr string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(a.log.String(), substr); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent %s has not logged %q in 2 minutes:\n%s", a.id, substr, a.log)
		}
	}
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
	if code >= 0 && len(args) > 0 && args[0] == "cluster" && slices.Contains(args, "--json") && !slices.Contains(args, "ca") {
		// Every cluster command's --json output (but a killed one's)
		// holds to the contract
		// (docs/json.md) and to its schema.
		checkLines(pc.t, args, code, stdout.String())
		validateLines(pc.t, args, stdout.String())
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
	t.Cleanup(func() { stop() }) // on a failure too: no writer outlives the test's dirs
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
	code, out, serr := pc.cluster(nil, "create", "--max-wait-for-lock", "3s")
	if code != exitLockTimeout || !strings.Contains(out, "lock_timeout") || !strings.Contains(out, "n2") {
		t.Fatalf("create over a long transaction: exit %d %s %s", code, out, serr)
	}
	// Periods of 100 ms growing by 10 % fill 3 s in 15 attempts (16 with
	// periods rounded to the millisecond); round trips on a busy machine
	// make them fewer. (The exact series is
	// TestAcquire_PeriodsGrowByTenPercent's, on synctest's clock.)
	m := regexp.MustCompile(`\((\d+) attempts; last timed out: n2\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no attempt count in %s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 || n > 16 {
		t.Fatalf("%d lock attempts in 3 s; periods growing by 10 %% from 100 ms give at most 16", n)
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
	if code != -int(syscall.SIGKILL) {
		t.Fatalf("coordinator not killed: exit %d %s %s", code, out, serr)
	}
	// Every node stopped writes for the dead coordinator and resumes them
	// by itself when the lease ends (exactly when: TestLease_EndsExactly).
	for _, a := range pc.agents {
		a.waitLog(t, "lock lease ended without renewal or release")
		log := a.log.String()
		if stopped, ended := strings.Index(log, "writes stopped"), strings.Index(log, "lock lease ended"); stopped < 0 || ended < stopped {
			t.Fatalf("agent %s: want writes stopped, then the lease's end:\n%s", a.id, log)
		}
		if !canWrite(t, a.dir) {
			t.Fatalf("writes on %s stay blocked after the lease ended", a.dir)
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
	// The dead coordinator's agency lock is freed at once: it ran on this
	// host and its pid is gone (otherwise its session's lease would end it).
	code, out, serr = pc.cluster(nil, "create", "--max-wait-for-agency", "1m")
	if code != 0 {
		t.Fatalf("create after the coordinator died: exit %d %s %s", code, out, serr)
	}
	var res cluster.CreateResult
	lastJSON(t, out, &res)
	t.Logf("the next create waited %.0f ms for the agency lock", res.AgencyWaitMs)
}

// TestCluster_KillAgentMidCreate: an agent killed while capturing makes the
// cluster create fail; the other pieces are deleted, nothing is available,
// an agent restarted at once takes the dead one's registration over, and
// the next create cleans its staging.
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
	code, out, _ = pc.cluster(nil, "list")
	var l cluster.ListResult
	lastJSON(t, out, &l)
	if code != 0 || len(l.Snapshots) != 0 {
		t.Fatalf("list: %s", out)
	}
	// Restarted at once, as a supervisor would: the dead agent's
	// registration (its lease still running) is no obstacle (the listing
	// above ended it, its process being gone; an agent would also take it
	// over: TestRegister_DeadHolder), and the staging of the killed create
	// is cleaned by the next create.
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

// TestCluster_CLI covers the agent's and coordinator's flags: mutual TLS
// with the cluster CA's certificates, a reader's certificate, a node id
// taken twice, etcd refusing a plaintext client, token mode, upload and
// download through file://, status, exit codes.
func TestCluster_CLI(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 2, 3)
	pc.startAgent("n1", dirs[0], nil)
	pc.startAgent("n2", dirs[1], nil)
	if !strings.HasPrefix(pc.agents["n1"].url, "https://") {
		t.Fatalf("TLS agent url %s", pc.agents["n1"].url)
	}
	code, out, serr := pc.cluster(nil, "create", "--label", "tls")
	if code != 0 {
		t.Fatalf("create over mutual TLS: %d %s %s", code, out, serr)
	}
	var res cluster.CreateResult
	lastJSON(t, out, &res)
	// A reader lists; it may not create (exit 1, kind forbidden).
	reader := append(append(pc.etcdArgs("pt"), "--tls-ca", filepath.Join(pc.caDir, "ca.pem")), pc.issue("--reader", "dashboard")...)
	var lr cluster.ListResult
	code, out, _ = pc.hotsnap(nil, append([]string{"cluster", "list", "--json"}, reader...)...)
	lastJSON(t, out, &lr)
	if code != 0 || len(lr.Snapshots) != 1 {
		t.Fatalf("list as a reader: exit %d %s", code, out)
	}
	// list and cluster list give their snapshots in one shape.
	var clusterItems, localItems []map[string]any
	listed(out, "snapshots", &clusterItems)
	_, lout, _ := hs(t, "list", "--data-dir", dirs[0], "--json")
	if err := listed(lout, "snapshots", &localItems); err != nil || len(localItems) != 1 {
		t.Fatalf("local list: %v %s", err, lout)
	}
	keys := func(m map[string]any) string {
		var k []string
		for n := range m {
			k = append(k, n)
		}
		sort.Strings(k)
		return strings.Join(k, ",")
	}
	if keys(clusterItems[0]) != keys(localItems[0]) {
		t.Fatalf("list and cluster list items differ:\n cluster %s\n local   %s", keys(clusterItems[0]), keys(localItems[0]))
	}
	if code, out, _ = pc.hotsnap(nil, append([]string{"cluster", "create", "--json"}, reader...)...); code != exitError || !strings.Contains(out, `"kind":"forbidden"`) {
		t.Fatalf("create as a reader: exit %d %s", code, out)
	}
	// Without the CA, or without a credential, a coordinator is a usage error.
	if code, _, serr = pc.hotsnap(nil, append([]string{"cluster", "list"}, pc.etcdArgs("pt")...)...); code != exitUsage || !strings.Contains(serr, "--token-file") {
		t.Fatalf("no credential: exit %d %s", code, serr)
	}
	// A second agent with a taken node id is refused, clearly.
	code, _, serr = pc.hotsnap(nil, append(append([]string{"agent", "--data-dir", t.TempDir(), "--node-id", "n1", "--listen", "127.0.0.1:0",
		"--tls-ca", filepath.Join(pc.caDir, "ca.pem")}, pc.issue("--node", "n1")...), pc.etcdArgs("pt")...)...)
	if code != exitUsage || !strings.Contains(serr, "already registered") {
		t.Fatalf("duplicate agent: exit %d %s", code, serr)
	}
	// An agent whose certificate names another node is refused at start.
	code, _, serr = pc.hotsnap(nil, append(append([]string{"agent", "--data-dir", t.TempDir(), "--node-id", "n9", "--listen", "127.0.0.1:0",
		"--tls-ca", filepath.Join(pc.caDir, "ca.pem")}, pc.issue("--node", "n8")...), pc.etcdArgs("pt")...)...)
	if code != exitUsage || !strings.Contains(serr, "not node n9") {
		t.Fatalf("agent with another node's certificate: exit %d %s", code, serr)
	}
	// Upload, delete, download, with per-node progress lines.
	remote := "file://" + t.TempDir()
	code, out, serr = pc.cluster(nil, "upload", "--id", res.ID, "--remote", remote)
	if code != 0 || !strings.Contains(out, `"event":"progress"`) || !strings.Contains(out, `"nodesDone":2`) {
		t.Fatalf("upload: %d %s %s", code, out, serr)
	}
	var jr cluster.JobsResult
	lastJSON(t, out, &jr)
	code, out, _ = pc.cluster(nil, "status", "--job", jr.JobID)
	if code != 0 || strings.Count(out, `"status":"COMPLETED"`) != 2 {
		t.Fatalf("status: %d %s", code, out)
	}
	// A detached job: its id at once; status follows it; abort says how
	// each node's ended (here: done before the abort).
	code, out, _ = pc.cluster(nil, "verify", "--id", res.ID, "--detach")
	var dj cluster.JobsResult
	lastJSON(t, out, &dj)
	if code != 0 || dj.JobID == "" || len(dj.Jobs) != 2 {
		t.Fatalf("verify --detach: %d %s", code, out)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		code, out, _ = pc.cluster(nil, "status", "--job", dj.JobID)
		if code == 0 && strings.Count(out, `"status":"COMPLETED"`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the detached verify did not complete: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, out, _ = pc.cluster(nil, "abort", "--job", dj.JobID); code != 0 || strings.Count(out, `"status":"COMPLETED"`) != 2 {
		t.Fatalf("abort of a finished job: %d %s", code, out)
	}
	if code, out, _ = pc.cluster(nil, "delete", "--id", res.ID); code != 0 {
		t.Fatalf("delete: %d %s", code, out)
	}
	code, out, serr = pc.cluster(nil, "download", "--id", res.ID, "--remote", remote)
	if code != 0 {
		t.Fatalf("download: %d %s %s", code, out, serr)
	}
	code, out, _ = pc.cluster(nil, "list")
	lastJSON(t, out, &lr)
	if code != 0 || len(lr.Snapshots) != 1 || !lr.Snapshots[0].Available {
		t.Fatalf("list after download: %s", out)
	}
	// Exit codes of the coordinator.
	if code, _, _ = pc.cluster(nil, "restore", "--id", "2026-01-01T00.00.00Z_none"); code != exitNotFound {
		t.Fatalf("restore of a missing snapshot: exit %d", code)
	}
	bad := append(pc.etcdArgs("p/t"), "--tls-ca", filepath.Join(pc.caDir, "ca.pem"))
	if code, _, _ = pc.hotsnap(nil, append(append([]string{"cluster", "list"}, bad...), pc.op...)...); code != exitUsage {
		t.Fatalf("bad cluster name: exit %d", code)
	}
	if code, _, _ = pc.cluster(nil, "create", "--lock-lease", "1ms"); code != exitUsage {
		t.Fatalf("a 1ms lease: exit %d", code)
	}
	// A cluster with no agent; etcd refusing a plaintext client; an etcd
	// that does not answer.
	empty := append(append(pc.etcdArgs("empty"), "--tls-ca", filepath.Join(pc.caDir, "ca.pem")), pc.op...)
	if code, out, _ = pc.hotsnap(nil, append([]string{"cluster", "create", "--json"}, empty...)...); code != exitNotFound || !strings.Contains(out, "no live agents") {
		t.Fatalf("create in an empty cluster: exit %d %s", code, out)
	}
	plain := []string{"--etcd", "http://" + strings.TrimPrefix(pc.etcd, "https://"), "--cluster", "pt", "--tls-ca", filepath.Join(pc.caDir, "ca.pem")}
	if code, out, _ = pc.hotsnap(nil, append(append([]string{"cluster", "list", "--json"}, plain...), pc.op...)...); code != exitError || !strings.Contains(out, "does not answer") {
		t.Fatalf("list as a plaintext etcd client: exit %d %s", code, out)
	}
	dead := fmt.Sprintf("https://127.0.0.1:%d", testserver.FreePort(t))
	if code, out, _ = pc.hotsnap(nil, append(append(append([]string{"cluster", "list", "--json", "--etcd", dead, "--cluster", "pt"}, pc.etcdTLS...), "--tls-ca", filepath.Join(pc.caDir, "ca.pem")), pc.op...)...); code != exitError || !strings.Contains(out, "does not answer") {
		t.Fatalf("list with etcd down: exit %d %s", code, out)
	}

	// Token mode (labs): an operators' and a readers' token.
	tok, readTok, wrong := filepath.Join(t.TempDir(), "token"), filepath.Join(t.TempDir(), "read"), filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(tok, []byte("proc-test-token-0123456789\n"), 0o600)
	os.WriteFile(readTok, []byte("proc-read-token-0123456789\n"), 0o600)
	os.WriteFile(wrong, []byte("another-token-0123456789\n"), 0o600)
	tdir := bankDirs(t, 1, 3)[0]
	targs := append([]string{"agent", "--data-dir", tdir, "--node-id", "t1", "--listen", "127.0.0.1:0", "--json",
		"--token-file", tok, "--read-token-file", readTok}, pc.etcdArgs("tk")...)
	pc.startRaw("t1", tdir, targs)
	tk := func(file string, args ...string) (int, string) {
		code, out, _ := pc.hotsnap(nil, append(append(append([]string{"cluster"}, args...), "--json", "--token-file", file), pc.etcdArgs("tk")...)...)
		return code, out
	}
	if code, out := tk(tok, "create"); code != 0 {
		t.Fatalf("token create: exit %d %s", code, out)
	}
	if code, out := tk(readTok, "list"); code != 0 || !strings.Contains(out, `"available":true`) {
		t.Fatalf("read-token list: exit %d %s", code, out)
	}
	if code, out := tk(readTok, "create"); code != exitError || !strings.Contains(out, `"kind":"forbidden"`) {
		t.Fatalf("read-token create: exit %d %s", code, out)
	}
	if code, out := tk(wrong, "list"); code != exitError || !strings.Contains(out, "no agent answered") || !strings.Contains(out, "node t1: unauthorized") {
		t.Fatalf("list with a wrong token: exit %d %s", code, out)
	}
}

// TestCluster_DeadAgentLeaves: an agent killed with SIGKILL (no chance to
// revoke its registration) drops out of the membership: at once for a
// coordinator of the same host, which sees its process gone, else when its
// lease ends; one stopped with SIGTERM leaves at once. The waits have
// deadlines only to bound a hang.
func TestCluster_DeadAgentLeaves(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 3)
	pc.startAgent("n1", dirs[0], nil)
	pc.startAgent("n2", dirs[1], nil, "--member-ttl", "3s")
	pc.startAgent("n3", dirs[2], nil)
	members := func() string {
		t.Helper()
		code, out, serr := pc.cluster(nil, "plan")
		if code != 0 {
			t.Fatalf("plan: exit %d %s %s", code, out, serr)
		}
		var p cluster.Plan
		lastJSON(t, out, &p)
		return strings.Join(p.NodeIDs(), ",")
	}
	waitMembers := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); members() != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("members are %s 2 minutes on, want %s", members(), want)
			}
		}
	}
	if got := members(); got != "n1,n2,n3" {
		t.Fatalf("members: %s", got)
	}
	pc.agents["n2"].cmd.Process.Kill()
	pc.agents["n2"].cmd.Wait()
	waitMembers("n1,n3")
	pc.agents["n3"].stop()
	if got := members(); got != "n1" {
		t.Fatalf("members right after n3's SIGTERM: %s", got)
	}
}

// TestCluster_ExpectedMembership (no-silent-gaps): the first cluster create
// records its node set; with one of three agents gone, a create is refused
// before any lock (exit 5, naming the node), --allow-missing-nodes takes a
// partial snapshot that cluster list never calls available and that a
// whole cluster restore refuses; cluster plan --expect declares the set.
func TestCluster_ExpectedMembership(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 3)
	pc.startAgents(dirs)
	code, out, serr := pc.cluster(nil, "create")
	var res cluster.CreateResult
	lastJSON(t, out, &res)
	if code != 0 || strings.Join(res.ExpectedRecorded, ",") != "n1,n2,n3" {
		t.Fatalf("first create: exit %d %s %s", code, out, serr)
	}
	// Killed (SIGKILL: its lease still runs): it is no member all the same,
	// its process being gone on this host.
	pc.agents["n2"].cmd.Process.Kill()
	pc.agents["n2"].cmd.Wait()
	code, out, _ = pc.cluster(nil, "create")
	if code != 5 || !strings.Contains(out, "n2") || !strings.Contains(out, "--allow-missing-nodes") {
		t.Fatalf("create with n2 gone: exit %d %s", code, out)
	}
	if p := localPieces(t, dirs[0], dirs[2]); len(p) != 2 {
		t.Fatalf("a refused create left pieces: %+v", p)
	}
	code, out, _ = pc.cluster(nil, "create", "--allow-missing-nodes")
	lastJSON(t, out, &res)
	if code != 0 || !res.Partial || strings.Join(res.Missing, ",") != "n2" || strings.Join(res.Nodes, ",") != "n1,n2,n3" {
		t.Fatalf("create --allow-missing-nodes: exit %d %s", code, out)
	}
	partial := res.ID
	code, out, _ = pc.cluster(nil, "list")
	var l cluster.ListResult
	lastJSON(t, out, &l)
	for _, s := range l.Snapshots {
		if s.ID == partial && (s.Available || !s.Partial || strings.Join(s.Missing, ",") != "n2") {
			t.Fatalf("list shows the partial snapshot as %+v", s)
		}
	}
	if code, out, _ := pc.cluster(nil, "restore", "--id", partial); code == 0 {
		t.Fatalf("a whole cluster restore of a partial snapshot: exit 0 %s", out)
	}
	// cluster prune removes partial snapshots past an age, nothing else,
	// and only once every node of the plan answers (a node that is down may
	// hold the missing piece).
	if code, out, _ := pc.cluster(nil, "prune", "--partial-older-than", "1ns"); code != 0 || !strings.Contains(out, `"removed":[]`) {
		t.Fatalf("prune with n2 down: exit %d %s", code, out)
	}
	pc.startAgent("n2", dirs[1], nil)
	if code, out, _ := pc.cluster(nil, "prune", "--partial-older-than", "1h"); code != 0 || !strings.Contains(out, `"removed":[]`) {
		t.Fatalf("prune of partial snapshots older than 1h: exit %d %s", code, out)
	}
	if code, out, _ := pc.cluster(nil, "prune", "--partial-older-than", "1ns"); code != 0 || !strings.Contains(out, partial) {
		t.Fatalf("prune of partial snapshots: exit %d %s", code, out)
	}
	if p := localPieces(t, dirs[0], dirs[2]); len(p) != 2 {
		t.Fatalf("pieces after the prune: %+v (want only the first create's)", p)
	}
	// Declared: two nodes from now on; with n2 gone again, a create of n1
	// and n3 is whole.
	pc.agents["n2"].stop()
	if code, out, _ := pc.cluster(nil, "plan", "--expect", "n1,n3"); code != 0 || !strings.Contains(out, `"expected":["n1","n3"]`) {
		t.Fatalf("plan --expect: exit %d %s", code, out)
	}
	code, out, _ = pc.cluster(nil, "create")
	lastJSON(t, out, &res)
	if code != 0 || res.Partial || strings.Join(res.Nodes, ",") != "n1,n3" {
		t.Fatalf("create after --expect n1,n3: exit %d %s", code, out)
	}
}

// TestCluster_RestoreStopsAndStarts (no-silent-gaps): a cluster restore
// stops the application on every node (each agent's own --stop-cmd), swaps
// everywhere, and starts it again everywhere (--start-cmd): a real process
// per node is replaced by a new one. When one node's stop fails, no node's
// data changes and every node that stopped is started again.
func TestCluster_RestoreStopsAndStarts(t *testing.T) {
	pc := newProcCluster(t)
	dirs := bankDirs(t, 3, 3)
	apps := make([]string, 3)
	for i, d := range dirs {
		apps[i] = t.TempDir()
		start := fmt.Sprintf(`setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > %[1]s/app.pid; echo started >> %[1]s/log`, apps[i])
		stop := fmt.Sprintf(`[ ! -e %[1]s/failstop ] || exit 1; kill $(cat %[1]s/app.pid) && rm %[1]s/app.pid && echo stopped >> %[1]s/log`, apps[i])
		if out, err := exec.Command("sh", "-c", start).CombinedOutput(); err != nil {
			t.Fatalf("start the app: %v %s", err, out)
		}
		t.Cleanup(func() {
			if b, err := os.ReadFile(filepath.Join(apps[i], "app.pid")); err == nil {
				if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
		pc.startAgent(fmt.Sprintf("n%d", i+1), d, nil, "--stop-cmd", stop, "--start-cmd", start)
	}
	pid := func(i int) int {
		b, _ := os.ReadFile(filepath.Join(apps[i], "app.pid"))
		p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return p
	}
	alive := func(p int) bool { // (a killed one may linger as a zombie: not alive)
		st, err := proc.ReadStat(p)
		return p > 0 && err == nil && st.State != 'Z' && st.State != 'X'
	}
	for i, d := range dirs {
		os.WriteFile(filepath.Join(d, "node.txt"), []byte(fmt.Sprintf("I am n%d\n", i+1)), 0o644)
	}
	code, out, serr := pc.cluster(nil, "create")
	var cr cluster.CreateResult
	lastJSON(t, out, &cr)
	if code != 0 {
		t.Fatalf("create: exit %d %s %s", code, out, serr)
	}
	for _, d := range dirs { // replaced, not written in place: the snapshot links the old file
		os.WriteFile(filepath.Join(d, "node.txt.new"), []byte("changed\n"), 0o644)
		os.Rename(filepath.Join(d, "node.txt.new"), filepath.Join(d, "node.txt"))
	}
	// One node cannot stop: nothing changes anywhere, the others run again.
	before := []int{pid(0), pid(1), pid(2)}
	os.WriteFile(filepath.Join(apps[1], "failstop"), nil, 0o644)
	code, out, serr = pc.cluster(nil, "restore", "--id", cr.ID)
	out += serr
	if code == 0 || !strings.Contains(out, "could not be stopped") || !strings.Contains(out, "no node was changed") {
		t.Fatalf("restore with a stop that fails: exit %d %s", code, out)
	}
	for i, d := range dirs {
		if b, _ := os.ReadFile(filepath.Join(d, "node.txt")); string(b) != "changed\n" {
			t.Fatalf("node %d changed after a refused restore: %q", i+1, b)
		}
	}
	for _, i := range []int{0, 2} {
		log, _ := os.ReadFile(filepath.Join(apps[i], "log"))
		if !strings.HasSuffix(string(log), "started\nstopped\nstarted\n") || !alive(pid(i)) || pid(i) == before[i] {
			t.Fatalf("node %d after a refused restore: log %q, pid %d (was %d)", i+1, log, pid(i), before[i])
		}
	}
	if pid(1) != before[1] || !alive(pid(1)) {
		t.Fatal("the node whose stop failed lost its application")
	}
	// All stop, all swap, all start.
	os.Remove(filepath.Join(apps[1], "failstop"))
	before = []int{pid(0), pid(1), pid(2)}
	code, out, serr = pc.cluster(nil, "restore", "--id", cr.ID)
	var rr cluster.RestoreResult
	lastJSON(t, out, &rr)
	if code != 0 || !rr.Restored || len(rr.Stops) != 3 || len(rr.Starts) != 3 {
		t.Fatalf("restore: exit %d %s %s", code, out, serr)
	}
	for i, d := range dirs {
		if b, _ := os.ReadFile(filepath.Join(d, "node.txt")); string(b) != fmt.Sprintf("I am n%d\n", i+1) {
			t.Fatalf("node %d not restored: %q", i+1, b)
		}
		if alive(before[i]) || !alive(pid(i)) || pid(i) == before[i] {
			t.Fatalf("node %d: the application was not stopped and started again (pid %d, was %d)", i+1, pid(i), before[i])
		}
	}
}
