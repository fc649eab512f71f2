package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/internal/testutil/testxfs"
	"github.com/hotsnap/hotsnap/snapshot/freezer/freezertest"
)

// Real storage engines nobody here wrote (Pebble, SQLite), run as real
// processes in a real cgroup, snapshotted under --quiesce freeze while
// they write, every snapshot restored and reopened by the engine itself,
// its invariant checked (docs/DESIGN.md, "Real applications").

var examples struct {
	sync.Mutex
	built map[string]string
}

// buildExample builds examples/NAME once per test run.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	examples.Lock()
	defer examples.Unlock()
	if p, ok := examples.built[name]; ok {
		return p
	}
	bin := buildTestBinary(t) // its dir is removed by TestMain
	p := filepath.Join(filepath.Dir(bin), name)
	if out, err := exec.Command("go", "build", "-o", p, "../../examples/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	if examples.built == nil {
		examples.built = map[string]string{}
	}
	examples.built[name] = p
	return p
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// snapshotWhileRunning takes n snapshots of dir with the create flags
// given, a little apart, while the engine runs; it returns their ids.
func snapshotWhileRunning(t *testing.T, bin, dir string, n int, flags ...string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		time.Sleep(150 * time.Millisecond) // let the engine flush, compact, checkpoint
		out := mustRun(t, bin, append([]string{"create", "--data-dir", dir, "--json"}, flags...)...)
		var res struct {
			ID         string
			LockHeldMs float64
		}
		if err := json.Unmarshal([]byte(lastLine(out)), &res); err != nil {
			t.Fatalf("create %d: %v: %s", i, err, out)
		}
		t.Logf("snapshot %s: writes paused %.2f ms", res.ID, res.LockHeldMs)
		ids = append(ids, res.ID)
	}
	return ids
}

// restoreEach restores each snapshot in turn into dir (the engine is
// stopped) and runs the engine's own check on it, which must say ok.
func restoreEach(t *testing.T, bin, dir string, ids []string, engine, check string, args ...string) {
	t.Helper()
	for _, id := range ids {
		mustRun(t, bin, "restore", "--data-dir", dir, "--id", id, "--quiesce", "none", "--no-failsafe")
		if out := mustRun(t, check, args...); !strings.Contains(out, `"ok":true`) {
			t.Fatalf("snapshot %s, reopened by %s: %s", id, engine, out)
		}
	}
}

// stopEngine ends the engine (SIGTERM; it closes its store) and waits.
func stopEngine(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the engine failed while it ran: %v", err)
	}
}

// TestEngine_PebbleFreeze: Pebble, an LSM store, snapshotted with the
// settings examples/engines.md gives for LSM stores: SSTs hard-linked
// (immutable), the WAL, MANIFEST, OPTIONS, CURRENT and marker files
// copied, writes stopped by freezing the cgroup.
func TestEngine_PebbleFreeze(t *testing.T) {
	bin := buildTestBinary(t)
	pb := buildExample(t, "pebblebank")
	cg := freezertest.New(t, false)
	dir := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(dir, "db")
	mustRun(t, pb, "init", "--dir", db, "--accounts", "200")
	engine := freezertest.Start(t, cg, pb, "run", "--dir", db, "--accounts", "200")
	ids := snapshotWhileRunning(t, bin, dir, 6, "--quiesce", "freeze", "--cgroup", cg.Dir,
		"--copy", "*.log", "--copy", "MANIFEST-*", "--copy", "OPTIONS-*", "--copy", "CURRENT", "--copy", "marker.*")
	// Every snapshot verifies while the engine goes on writing: no
	// hard-linked file was rewritten in place.
	for _, id := range ids {
		mustRun(t, bin, "verify", "--data-dir", dir, "--id", id)
	}
	stopEngine(t, engine)
	ssts, _ := filepath.Glob(filepath.Join(db, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("the engine never wrote an SST: the test did not exercise the LSM")
	}
	restoreEach(t, bin, dir, ids, "Pebble", pb, "check", "--dir", db, "--accounts", "200")
}

// TestEngine_SQLiteReflinkFreeze: SQLite in WAL mode rewrites its
// database in place; on XFS with reflinks, --link-mode reflink (and auto)
// under --quiesce freeze gives snapshots that verify while it goes on
// writing, and that SQLite reopens with integrity_check ok and the
// bank's total intact.
func TestEngine_SQLiteReflinkFreeze(t *testing.T) {
	bin := buildTestBinary(t)
	sq := buildExample(t, "sqlitebank")
	mnt := testxfs.Mount(t, 512<<20)
	for _, mode := range []string{"reflink", "auto"} {
		t.Run(mode, func(t *testing.T) {
			cg := freezertest.New(t, false)
			dir := filepath.Join(mnt, mode)
			dbf := filepath.Join(dir, "bank.db")
			os.MkdirAll(dir, 0o755)
			mustRun(t, sq, "init", "--db", dbf, "--accounts", "100")
			engine := freezertest.Start(t, cg, sq, "run", "--db", dbf)
			ids := snapshotWhileRunning(t, bin, dir, 5, "--quiesce", "freeze", "--cgroup", cg.Dir, "--link-mode", mode)
			for _, id := range ids {
				mustRun(t, bin, "verify", "--data-dir", dir, "--id", id)
			}
			stopEngine(t, engine)
			restoreEach(t, bin, dir, ids, "SQLite", sq, "check", "--db", dbf, "--accounts", "100")
		})
	}
}

// TestEngine_SQLiteLink: the same SQLite on ext4 (no reflinks), in link
// mode. Under --quiesce freeze hotsnap sees the files the frozen engine
// holds open for writing (the database, its WAL and -shm) and copies
// them: the snapshots are good. Under a quiescer that cannot see them (a
// lock script that stops the process with SIGSTOP), the linked database
// is rewritten in place after the lock: such a snapshot is never silently
// good: create exits 4 naming the file and the fix, or, when it finished
// before the engine wrote again, verify and restore exit 4 once it has.
func TestEngine_SQLiteLink(t *testing.T) {
	bin := buildTestBinary(t)
	sq := buildExample(t, "sqlitebank")
	cg := freezertest.New(t, false)
	dir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(dir, 0o755)
	dbf := filepath.Join(dir, "bank.db")
	pidFile := filepath.Join(t.TempDir(), "pid")
	mustRun(t, sq, "init", "--db", dbf, "--accounts", "100")
	engine := freezertest.Start(t, cg, sq, "run", "--db", dbf, "--pid-file", pidFile)

	ids := snapshotWhileRunning(t, bin, dir, 3, "--quiesce", "freeze", "--cgroup", cg.Dir)
	for _, id := range ids {
		mustRun(t, bin, "verify", "--data-dir", dir, "--id", id)
		man, _ := os.ReadFile(filepath.Join(dir, "backups", id, "manifest.json"))
		if !strings.Contains(string(man), `"capture":"copy"`) {
			t.Fatalf("snapshot %s: the open database was not captured as a copy: %.400s", id, man)
		}
	}

	lock := `kill -STOP "$(cat ` + pidFile + `)"`
	unlock := `kill -CONT "$(cat ` + pidFile + `)"`
	for i := range 3 {
		cmd := exec.Command(bin, "create", "--data-dir", dir, "--quiesce", "exec", "--lock-cmd", lock, "--unlock-cmd", unlock, "--json")
		out, err := cmd.CombinedOutput()
		code := procExit(err)
		if code == 4 {
			if !strings.Contains(string(out), "bank.db") || !strings.Contains(string(out), "--copy") {
				t.Fatalf("create %d refused without naming the file and the fix: %s", i, out)
			}
			continue
		}
		if code != 0 {
			t.Fatalf("create %d: exit %d: %s", i, code, out)
		}
		var res struct{ ID string }
		json.Unmarshal([]byte(lastLine(string(out))), &res)
		// Wait for the engine to write again (no upper bound), then the
		// snapshot must fail verification and be refused by restore.
		st0, _ := os.Stat(dbf + "-wal")
		for {
			st, _ := os.Stat(dbf + "-wal")
			if st != nil && st0 != nil && (st.ModTime() != st0.ModTime() || st.Size() != st0.Size()) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		vout, verr := exec.Command(bin, "verify", "--data-dir", dir, "--id", res.ID).CombinedOutput()
		if procExit(verr) != 4 || !strings.Contains(string(vout), "bank.db") {
			t.Fatalf("verify of a link-mode SQLite snapshot after more writes: exit %d: %s", procExit(verr), vout)
		}
		rout, rerr := exec.Command(bin, "restore", "--data-dir", dir, "--id", res.ID, "--quiesce", "none").CombinedOutput()
		if procExit(rerr) != 4 {
			t.Fatalf("restore of it: exit %d: %s", procExit(rerr), rout)
		}
	}

	stopEngine(t, engine)
	restoreEach(t, bin, dir, ids, "SQLite", sq, "check", "--db", dbf, "--accounts", "100")
}
