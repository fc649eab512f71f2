package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
)

var testBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// buildTestBinary builds hotsnap with the hotsnaptest tag, whose crash points
// kill the process with SIGKILL at a named step (HOTSNAP_CRASH_AT). It is
// built once per test run and removed by TestMain.
func buildTestBinary(t *testing.T) string {
	t.Helper()
	b := &testBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "hotsnap-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "hotsnap")
		b.out, b.err = exec.Command("go", "build", "-tags", "hotsnaptest", "-o", b.path, ".").CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build: %v\n%s", b.err, b.out)
	}
	return b.path
}

func TestMain(m *testing.M) {
	testuser.Dispatch(attackerRoles) // a role of the security tests, run as another user
	code := m.Run()
	testuser.Cleanup()
	if testBinary.dir != "" {
		os.RemoveAll(testBinary.dir)
	}
	os.Exit(code)
}

// TestCrash_Create kills a real `hotsnap create` at every step and checks
// that no snapshot is listed, no partial folder is in backups/, and the next
// command removes what staging held.
func TestCrash_Create(t *testing.T) {
	bin := buildTestBinary(t)
	steps := []string{"create.prelinked", "create.locked", "create.linked", "create.resumed", "create.hashed", "create.manifest"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := testtree.New(t)
			before := testtree.Snapshot(t, dir)
			cmd := exec.Command(bin, "create", "--data-dir", dir, "--label", "crash")
			cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT="+step)
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("want the process killed at %s, got %v", step, err)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
				t.Fatalf("backups/ holds %v after a crash at %s", ents, step)
			}
			out, err := exec.Command(bin, "list", "--data-dir", dir, "--json").Output()
			if err != nil || strings.TrimSpace(string(out)) != `{"event":"result","snapshots":[]}` {
				t.Fatalf("list after crash: %s %v", out, err)
			}
			// list is read-only: the next mutating command cleans up.
			if out, err := exec.Command(bin, "recover", "--data-dir", dir).CombinedOutput(); err != nil {
				t.Fatalf("recover after crash: %v %s", err, out)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, ".hotsnap", "private", "staging")); len(ents) != 0 {
				t.Fatalf("recover left staging: %v", ents)
			}
			// The live data is untouched, and a new create works.
			if d := testtree.Diff(before, testtree.Snapshot(t, dir, "backups")); d != "" && !onlyStateDir(d) {
				t.Fatalf("crash changed live data:\n%s", d)
			}
			if out, err := exec.Command(bin, "create", "--data-dir", dir).CombinedOutput(); err != nil {
				t.Fatalf("create after crash: %v %s", err, out)
			}
		})
	}
	// Killed just after the publishing rename: the snapshot is whole.
	t.Run("create.published", func(t *testing.T) {
		dir := testtree.New(t)
		cmd := exec.Command(bin, "create", "--data-dir", dir, "--label", "crash")
		cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT=create.published")
		cmd.Run()
		out, err := exec.Command(bin, "list", "--data-dir", dir, "--json").Output()
		if err != nil || !strings.Contains(string(out), "_crash") {
			t.Fatalf("list: %s %v", out, err)
		}
		ids, _ := os.ReadDir(filepath.Join(dir, "backups"))
		if out, err := exec.Command(bin, "verify", "--data-dir", dir, "--id", ids[0].Name()).CombinedOutput(); err != nil {
			t.Fatalf("verify: %v %s", err, out)
		}
	})
	// Killed between the two halves of delete: the snapshot is gone from
	// list at once, and the next command finishes the removal.
	t.Run("delete.trashed", func(t *testing.T) {
		dir := testtree.New(t)
		if out, err := exec.Command(bin, "create", "--data-dir", dir, "--label", "x").CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		ids, _ := os.ReadDir(filepath.Join(dir, "backups"))
		cmd := exec.Command(bin, "delete", "--data-dir", dir, "--id", ids[0].Name())
		cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT=delete.trashed")
		cmd.Run()
		out, _ := exec.Command(bin, "recover", "--data-dir", dir, "--json").Output()
		if !strings.Contains(string(out), "trash") {
			t.Fatalf("recover did not report the trash: %s", out)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, ".hotsnap", "private", "trash")); len(ents) != 0 {
			t.Fatalf("trash left: %v", ents)
		}
	})
}

// onlyStateDir reports whether a diff only concerns hotsnap's own state dir.
func onlyStateDir(d string) bool {
	for _, line := range strings.Split(strings.TrimSpace(d), "\n") {
		if !strings.Contains(line, ".hotsnap") {
			return false
		}
	}
	return true
}

// TestCrash_Restore kills a real `hotsnap restore` at every step of the
// swap, runs `hotsnap recover`, and requires the data dir to be exactly the
// old state or exactly the restored one.
func TestCrash_Restore(t *testing.T) {
	bin := buildTestBinary(t)
	steps := swapSteps(12, 12)
	outcomes := map[string]int{}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir, id := createBase(t, bin)
			restored := testtree.Snapshot(t, filepath.Join(dir, "backups", id, "data"))
			// The live data moves on (new, changed and removed entries at the top level too).
			os.Remove(filepath.Join(dir, "a.txt"))
			os.WriteFile(filepath.Join(dir, "zz-new"), []byte("new"), 0o644)
			os.WriteFile(filepath.Join(dir, "db", "CURRENT"), []byte("MANIFEST-000002\n"), 0o644)
			os.RemoveAll(filepath.Join(dir, "private"))
			old := testtree.Snapshot(t, dir, "backups", ".hotsnap")

			killRestoreAndRecover(t, bin, dir, step, old, restored, outcomes, "--id", id)
			if out, err := exec.Command(bin, "verify", "--data-dir", dir, "--id", id).CombinedOutput(); err != nil {
				t.Fatalf("snapshot damaged by the crash: %s", out)
			}
		})
	}
	t.Logf("outcomes over %d kill points: %v", len(steps), outcomes)
	// Real steps: built, journal, out.0..7 (the changed data dir has 8
	// top-level entries), out.done, in.0..8 (the snapshot has 9), swapped,
	// done: 1+1+8+1+9+1+1 = 22 kills.
	if outcomes["killed"] != 22 || outcomes["old"] == 0 || outcomes["restored"] == 0 {
		t.Fatalf("expected kills both before the journal (old state) and after it (restored): %v", outcomes)
	}
}

// swapSteps names a restore's crash points in order: outs moves of live
// entries out, ins moves of the snapshot's in (points past the real
// number of moves are never reached).
func swapSteps(outs, ins int) []string {
	steps := []string{"restore.built", "restore.journal"}
	for i := range outs {
		steps = append(steps, "restore.out."+itoa(i))
	}
	steps = append(steps, "restore.out.done")
	for i := range ins {
		steps = append(steps, "restore.in."+itoa(i))
	}
	return append(steps, "restore.swapped", "restore.done")
}

// TestCrash_PartialRestore kills a real `hotsnap restore --include` at
// every step of its swap, whose units are nested paths (one replacing a
// live file, one a live dir, two the live data dir lacks), runs `hotsnap
// recover`, and requires the data dir to be exactly the old state or
// exactly the old state with those entries replaced.
func TestCrash_PartialRestore(t *testing.T) {
	bin := buildTestBinary(t)
	steps := swapSteps(3, 5)
	outcomes := map[string]int{}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir, id := createBase(t, bin)
			os.RemoveAll(filepath.Join(dir, "db", "nested"))
			os.WriteFile(filepath.Join(dir, "db", "CURRENT"), []byte("MANIFEST-000002\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "db", "000003.sst"), []byte("newer"), 0o644)
			os.WriteFile(filepath.Join(dir, "private", "extra"), []byte("x"), 0o600)
			os.Remove(filepath.Join(dir, "readonly-dir"))
			old := testtree.Snapshot(t, dir, "backups", ".hotsnap")
			restored := testtree.Replace(old, testtree.Snapshot(t, filepath.Join(dir, "backups", id, "data")),
				"db/nested", "db/CURRENT", "private", "readonly-dir")

			killRestoreAndRecover(t, bin, dir, step, old, restored, outcomes, "--id", id,
				"--include", "db/nested", "--include", "CURRENT", "--include", "private", "--include", "readonly-dir")
		})
	}
	t.Logf("outcomes over %d kill points: %v", len(steps), outcomes)
	// built, journal, out.0..1 (db/CURRENT and private exist live),
	// out.done, in.0..3, swapped, done: 11 kills.
	if outcomes["killed"] != 11 || outcomes["old"] == 0 || outcomes["restored"] == 0 {
		t.Fatalf("expected kills both before the journal (old state) and after it (restored): %v", outcomes)
	}
}

// createBase makes a fixture data dir and its snapshot (CURRENT copied).
func createBase(t *testing.T, bin string) (dir, id string) {
	t.Helper()
	dir = testtree.New(t)
	out, err := exec.Command(bin, "create", "--data-dir", dir, "--label", "base", "--copy", "CURRENT", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	return dir, jsonField(t, out, "id")
}

// killRestoreAndRecover runs `hotsnap restore` with args, killed at step,
// then `hotsnap recover`, and requires the data dir to be exactly old or
// exactly restored, with no restoring tree and no journal left.
func killRestoreAndRecover(t *testing.T, bin, dir, step string, old, restored map[string]testtree.Entry, outcomes map[string]int, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"restore", "--data-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT="+step)
	out, err := cmd.CombinedOutput()
	killed := false
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		killed = true
		outcomes["killed"]++
	} else if err != nil {
		t.Fatalf("restore failed without being killed: %v %s", err, out)
	}
	if out, err := exec.Command(bin, "recover", "--data-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("recover: %v %s", err, out)
	}
	got := testtree.Snapshot(t, dir, "backups", ".hotsnap")
	dOld, dNew := testtree.Diff(old, got), testtree.Diff(restored, got)
	switch {
	case dNew == "":
		outcomes["restored"]++
	case dOld == "":
		outcomes["old"]++
	default:
		t.Fatalf("after a kill at %s (killed=%v) and recover, the data dir is a mix:\nvs old:\n%s\nvs restored:\n%s", step, killed, dOld, dNew)
	}
	for _, d := range []string{"restoring", "staging"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, ".hotsnap", "private", d)); len(ents) != 0 {
			t.Fatalf("%s left after recover: %v", d, ents)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".hotsnap", "private", "restore.journal")); err == nil {
		t.Fatal("journal left after recover")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func jsonField(t *testing.T, b []byte, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(lastLine(string(b))), &m); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	s, _ := m[key].(string)
	return s
}

// TestCrash_UploadResumes kills a real `hotsnap upload` after its second
// pack, reruns it, and requires the rerun to reuse those packs (nothing
// sent twice), the archive to check clean with no chunk stored twice, and
// the snapshot to download and verify.
func TestCrash_UploadResumes(t *testing.T) {
	bin := buildTestBinary(t)
	dir := testtree.New(t)
	big := make([]byte, 5<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	repo := "file://" + t.TempDir()
	run := func(env string, args ...string) ([]byte, error) {
		cmd := exec.Command(bin, args...)
		if env != "" {
			cmd.Env = append(os.Environ(), env)
		}
		return cmd.Output()
	}
	if out, err := run("", "archive", "init", "--remote", repo, "--pack-size", "1048576"); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	out, err := run("", "create", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	id := jsonField(t, out, "id")
	_, err = run("HOTSNAP_CRASH_AT=upload.pack.2", "upload", "--data-dir", dir, "--id", id, "--remote", repo)
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("want the upload killed after pack 2, got %v", err)
	}
	out, err = run("", "upload", "--data-dir", dir, "--id", id, "--remote", repo, "--json")
	if err != nil {
		t.Fatalf("rerun: %v %s", err, out)
	}
	var res struct {
		OrphanPacksReused int   `json:"orphanPacksReused"`
		PacksWritten      int   `json:"packsWritten"`
		FilesReused       int   `json:"filesReused"`
		BytesSent         int64 `json:"bytesSent"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	json.Unmarshal([]byte(lines[len(lines)-1]), &res)
	if res.OrphanPacksReused != 2 || res.PacksWritten == 0 {
		t.Fatalf("rerun must reuse the 2 packs of the killed upload and send the rest: %+v", res)
	}
	out, err = run("", "archive", "check", "--remote", repo, "--read-data", "--json")
	if err != nil || !strings.Contains(string(out), `"duplicateBlobs":0`) || !strings.Contains(string(out), `"orphanPacks":0`) {
		t.Fatalf("check after resume: %v %s", err, out)
	}
	if out, err := run("", "delete", "--data-dir", dir, "--id", id); err != nil {
		t.Fatal(err, string(out))
	}
	if out, err := run("", "download", "--data-dir", dir, "--id", id, "--remote", repo); err != nil {
		t.Fatalf("download: %v %s", err, out)
	}
	if out, err := run("", "verify", "--data-dir", dir, "--id", id); err != nil {
		t.Fatalf("verify: %v %s", err, out)
	}
	// The download's proof spares the restore's re-hash: in a dry run, and
	// in the restore itself, whose build checks each file under the proof
	// as it links it (the tree's hard-link group included: the link of its
	// first name moves the inode's ctime before its second is checked).
	if out, err := run("", "restore", "--data-dir", dir, "--id", id, "--dry-run", "--json"); err != nil || !strings.Contains(string(out), `"verified":"proof"`) {
		t.Fatalf("restore after the download: %v %s", err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "backups", id, "data", "db", "hardlink-of-sst"), &st); err != nil || st.Nlink != 2 {
		t.Fatalf("the download did not make the hard-link group (nlink %d, %v): nothing to prove", st.Nlink, err)
	}
	before := testtree.Snapshot(t, dir, "backups", ".hotsnap")
	if out, err := run("", "restore", "--data-dir", dir, "--id", id, "--quiesce", "none", "--json"); err != nil || !strings.Contains(string(out), `"verified":"proof"`) {
		t.Fatalf("restore after the download: %v %s", err, out)
	}
	if d := testtree.Diff(before, testtree.Snapshot(t, dir, "backups", ".hotsnap")); d != "" {
		t.Fatalf("restored tree differs from the data it was made of: %s", d)
	}
}

// TestPanic_IsAnInternalError: a bug (a panic) in a command, on the main
// goroutine or in a worker, ends with "internal error" and exit 70, not a
// Go crash (exit 2, the usage code), and leaves nothing half made.
func TestPanic_IsAnInternalError(t *testing.T) {
	bin := buildTestBinary(t)
	for _, step := range []string{"create.linked", "create.hashed"} {
		t.Run(step, func(t *testing.T) {
			dir := testtree.New(t)
			cmd := exec.Command(bin, "create", "--data-dir", dir, "--json")
			cmd.Env = append(os.Environ(), "HOTSNAP_PANIC_AT="+step)
			out, err := cmd.Output()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != exitInternal {
				t.Fatalf("want exit %d, got %v (%s)", exitInternal, err, out)
			}
			if !strings.Contains(string(out), `"kind":"internal"`) || !strings.Contains(string(out), "internal error") {
				t.Fatalf("output: %s", out)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
				t.Fatalf("a snapshot was published: %v", ents)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, ".hotsnap", "private", "staging")); len(ents) != 0 {
				t.Fatalf("staging left: %v", ents)
			}
		})
	}
}
