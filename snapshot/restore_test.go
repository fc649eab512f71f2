package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/examples/bank"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// mutate changes the live fixture the way an application keeping the link
// contract would: deletes, write-new-and-rename, new files, a chmod.
func mutate(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(dir, "a.txt")))
	must(os.RemoveAll(filepath.Join(dir, "db/nested")))
	must(os.WriteFile(filepath.Join(dir, "db/000001.sst.tmp"), []byte("rewritten"), 0o644))
	must(os.Rename(filepath.Join(dir, "db/000001.sst.tmp"), filepath.Join(dir, "db/000001.sst")))
	must(os.WriteFile(filepath.Join(dir, "new-file"), []byte("new"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "new-dir/sub"), 0o755))
	must(os.Chmod(filepath.Join(dir, "private"), 0o755))
	must(os.Remove(filepath.Join(dir, "link-rel")))
	must(os.Symlink("elsewhere", filepath.Join(dir, "link-rel")))
}

func live(t *testing.T, dir string) map[string]testtree.Entry {
	return testtree.Snapshot(t, dir, "backups", ".hotsnap")
}

func TestRestore_RoundTrip(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{Copy: []string{"CURRENT", "MANIFEST-*"}, AppVersion: "3.5.1"})
	want := testtree.Snapshot(t, l.TreeDir(res.ID))
	mutate(t, dir)
	old := live(t, dir)
	q := &quiesce.Flock{DataDir: dir}
	defer q.Close()
	rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{AppVersion: "3.6.2", Quiescer: q})
	if err != nil {
		t.Fatal(err)
	}
	if d := testtree.Diff(want, live(t, dir)); d != "" {
		t.Fatalf("restored data dir differs from the snapshot:\n%s", d)
	}
	// Hard-link groups are kept; linked entries are the snapshot's inodes,
	// copied ones are fresh copies.
	if ino(t, filepath.Join(dir, "db/000002.sst")) != ino(t, filepath.Join(dir, "db/hardlink-of-sst")) {
		t.Fatal("hard-link group not restored")
	}
	if ino(t, filepath.Join(dir, "db/CURRENT")) == ino(t, filepath.Join(l.TreeDir(res.ID), "db/CURRENT")) {
		t.Fatal("a copy-captured entry was linked back: the application could write into the snapshot")
	}
	// The escaping symlink comes back as a symlink, not followed.
	if target, err := os.Readlink(filepath.Join(dir, "abs-link")); err != nil || target != "/etc/hostname" {
		t.Fatalf("abs-link: %q %v", target, err)
	}
	// The previous state is in the failsafe.
	if rr.Failsafe == "" || !strings.HasPrefix(rr.Failsafe, l.failsafeDir()) {
		t.Fatalf("failsafe %q", rr.Failsafe)
	}
	if d := testtree.Diff(old, testtree.Snapshot(t, rr.Failsafe)); d != "" {
		t.Fatalf("failsafe does not hold the previous state:\n%s", d)
	}
	if len(rr.Plan.Added) == 0 || len(rr.Plan.Removed) == 0 || len(rr.Plan.Changed) == 0 {
		t.Fatalf("plan: %+v", rr.Plan)
	}
	// A second restore replaces the failsafe.
	rr2, err := Restore(context.Background(), l, res.ID, RestoreOptions{AppVersion: "3.5.1", NoFailsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	if rr2.Failsafe != "" {
		t.Fatal("--no-failsafe reported a failsafe")
	}
	if ents, _ := os.ReadDir(l.failsafeDir()); len(ents) != 0 {
		t.Fatalf("failsafes left: %v", ents)
	}
	assertClean(t, l)
}

// TestRestore_ApplicationCannotChangeTheSnapshot: after a restore, an
// application keeping the contract (in-place rewrites only of copy-captured
// files, write-new-and-rename for the rest) leaves the snapshot intact.
func TestRestore_ApplicationCannotChangeTheSnapshot(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{Copy: []string{"CURRENT", "MANIFEST-*", "*.txt"}})
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	m, _ := ReadManifest(l, res.ID)
	for _, e := range m.Entries {
		if e.Type != manifest.TypeFile {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(string(e.Path)))
		if e.Capture == manifest.CaptureCopy {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("rewritten in place")
			f.Close()
		} else {
			os.Chmod(filepath.Dir(p), 0o755)
			os.WriteFile(p+".new", []byte("replaced"), 0o644)
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{})
	if err != nil || !vr.OK() {
		t.Fatalf("the snapshot changed through the restored data: %v %v", err, vr.Problems)
	}
}

func TestRestore_RefusesAndTouchesNothing(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{AppVersion: "3.5.1", EncryptionKeyID: "k1", Copy: []string{"CURRENT"}})
	mutate(t, dir)
	before := live(t, dir)
	cases := []struct {
		name string
		o    RestoreOptions
		prep func()
		is   error
		says string
	}{
		{"MinorDowngrade", RestoreOptions{AppVersion: "3.4.9", EncryptionKeyID: "k1"}, nil, ErrIncompatible, "minor 4 < 5"},
		{"MajorChange", RestoreOptions{AppVersion: "4.5.1", EncryptionKeyID: "k1"}, nil, ErrIncompatible, "major"},
		{"NoVersion", RestoreOptions{EncryptionKeyID: "k1"}, nil, ErrIncompatible, "--app-version"},
		{"Topology", RestoreOptions{AppVersion: "3.5.1", EncryptionKeyID: "k1", Nodes: []string{"local", "n2"}}, nil, ErrIncompatible, "topology"},
		{"OtherNode", RestoreOptions{AppVersion: "3.5.1", EncryptionKeyID: "k1", NodeID: "n7"}, nil, ErrIncompatible, "n7"},
		{"Key", RestoreOptions{AppVersion: "3.5.1", EncryptionKeyID: "k2"}, nil, ErrIncompatible, "key id"},
		{"StopCmdFails", RestoreOptions{AppVersion: "3.5.1", EncryptionKeyID: "k1", StopCmd: "echo cannot stop >&2; exit 1"}, nil, ErrHook, "cannot stop"},
		// Last: it damages the snapshot for good.
		{"DamagedTree", RestoreOptions{AppVersion: "3.5.1", EncryptionKeyID: "k1"}, func() {
			os.WriteFile(filepath.Join(l.TreeDir(res.ID), "db/CURRENT"), []byte("XANIFEST-000001\n"), 0o644)
		}, ErrVerifyFailed, "db/CURRENT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.prep != nil {
				c.prep()
			}
			_, err := Restore(context.Background(), l, res.ID, c.o)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("want %v saying %q, got %v", c.is, c.says, err)
			}
			if d := testtree.Diff(before, live(t, dir)); d != "" {
				t.Fatalf("refused restore touched the data dir:\n%s", d)
			}
			assertNoRestoreLeftovers(t, l)
		})
	}
}

func assertNoRestoreLeftovers(t *testing.T, l *Layout) {
	t.Helper()
	for _, d := range []string{l.restoringDir(), l.failsafeDir()} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Fatalf("%s holds %v", d, ents)
		}
	}
	if exists(l.journalPath()) {
		t.Fatal("journal left")
	}
}

func TestRestore_IgnoreVersionSaysSo(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{AppVersion: "3.5.1"})
	rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{AppVersion: "2.0.0", IgnoreVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rr.IgnoredVersion || len(rr.Warnings) == 0 || !strings.Contains(rr.Warnings[0], "ignored") {
		t.Fatalf("result must say the version was ignored: %+v", rr)
	}
}

func TestRestore_HostileManifest(t *testing.T) {
	for _, name := range []string{"traversal.json", "under-symlink.json", "broken-seal.json", "size-lie.json", "invalid-utf8.json"} {
		t.Run(name, func(t *testing.T) {
			dir := testtree.New(t)
			l := newLayout(t, dir)
			res := mustCreate(t, l, CreateOptions{})
			hostile, err := os.ReadFile(filepath.Join("..", "testdata", "hostile", name))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(l.ManifestPath(res.ID), hostile, 0o644)
			before := live(t, dir)
			_, err = Restore(context.Background(), l, res.ID, RestoreOptions{IgnoreVersion: true})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("want ErrCorrupt, got %v", err)
			}
			if d := testtree.Diff(before, live(t, dir)); d != "" {
				t.Fatalf("hostile manifest touched the data dir:\n%s", d)
			}
		})
	}
}

func TestRestore_DryRun(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{})
	mutate(t, dir)
	before := testtree.Snapshot(t, dir)
	rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Restored || !rr.DryRun {
		t.Fatalf("%+v", rr)
	}
	has := func(list []string, p string) bool {
		for _, x := range list {
			if x == p {
				return true
			}
		}
		return false
	}
	if !has(rr.Plan.Added, "a.txt") || !has(rr.Plan.Removed, "new-file") || !has(rr.Plan.Changed, "db/000001.sst") || !has(rr.Plan.Changed, "link-rel") {
		t.Fatalf("plan: %+v", rr.Plan)
	}
	if d := testtree.Diff(before, testtree.Snapshot(t, dir)); d != "" {
		t.Fatalf("dry run changed something:\n%s", d)
	}
}

func TestRestore_StartCmdFailsAfterRestore(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{})
	want := testtree.Snapshot(t, l.TreeDir(res.ID))
	mutate(t, dir)
	marker := filepath.Join(t.TempDir(), "stopped")
	rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{StopCmd: "touch " + marker, StartCmd: "exit 7"})
	if !errors.Is(err, ErrHook) || !strings.Contains(err.Error(), "was restored") || rr == nil || !rr.Restored {
		t.Fatalf("want a start-command error saying the data was restored, got %v", err)
	}
	if !exists(marker) {
		t.Fatal("stop command did not run")
	}
	if d := testtree.Diff(want, live(t, dir)); d != "" {
		t.Fatalf("data not restored:\n%s", d)
	}
}

func TestRestore_HoldsTheWriteLock(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{})
	mutate(t, dir)
	before := live(t, dir)
	g, _ := writegate.Open(dir)
	defer g.Close()
	tx, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	q := &quiesce.Flock{DataDir: dir}
	defer q.Close()
	_, err = Restore(context.Background(), l, res.ID, RestoreOptions{Quiescer: q, Lock: quiesce.Policy{MaxWait: 300 * time.Millisecond, InitialPeriod: 50 * time.Millisecond}})
	tx.End()
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("want ErrLockTimeout while a writer holds the lock, got %v", err)
	}
	if d := testtree.Diff(before, live(t, dir)); d != "" {
		t.Fatalf("refused restore touched the data dir:\n%s", d)
	}
	assertNoRestoreLeftovers(t, l)
}

// TestRestore_BankUnderLoad restores a consistent snapshot while writers
// keep moving money: the restore waits for in-flight transactions, swaps,
// and the writers carry on from the restored balances.
func TestRestore_BankUnderLoad(t *testing.T) {
	l, w, stop := startBank(t, false)
	q := &quiesce.Flock{DataDir: l.DataDir}
	defer q.Close()
	res, err := Create(context.Background(), l, CreateOptions{Quiescer: q})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	n := w.Transfers.Load()
	for w.Transfers.Load() < n+100 {
		time.Sleep(time.Millisecond)
	}
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{Quiescer: q}); err != nil {
		stop()
		t.Fatal(err)
	}
	n = w.Transfers.Load()
	for w.Transfers.Load() < n+100 {
		time.Sleep(time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if sum, accts, err := bank.Sum(l.DataDir); err != nil || sum != bankTotal || accts != bankAccounts {
		t.Fatalf("after restore under load: %d accounts sum to %d (err %v)", accts, sum, err)
	}
	if vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("snapshot changed: %v %v", err, vr.Problems)
	}
}

// TestRecover_RollsBackWhenForwardIsImpossible: a swap interrupted half way
// whose restored tree has since vanished cannot be finished, so recover puts
// the old entries back from the failsafe.
func TestRecover_RollsBackWhenForwardIsImpossible(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	old := live(t, dir)
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.Name() != ".hotsnap" && e.Name() != "backups" {
			out = append(out, e.Name())
		}
	}
	s := writeSession(t, l)
	failsafe := filepath.Join(l.failsafeDir(), "x")
	os.MkdirAll(failsafe, 0o700)
	os.MkdirAll(filepath.Join(l.restoringDir(), "2026-01-01T00.00.00Z_gone"), 0o700)
	j := &journal{ID: "2026-01-01T00.00.00Z_gone", Failsafe: "x", Source: "restoring/2026-01-01T00.00.00Z_gone", MoveOut: out, MoveIn: []string{"db", "only-in-snapshot"}}
	if err := s.writeJournal(j); err != nil {
		t.Fatal(err)
	}
	s.close()
	// Half the old entries moved out, then the crash.
	for _, n := range out[:len(out)/2] {
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(failsafe, n)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Recover(context.Background(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Restore, "rolled back") {
		t.Fatalf("recover says %q", res.Restore)
	}
	if d := testtree.Diff(old, live(t, dir)); d != "" {
		t.Fatalf("roll back did not bring the old state back:\n%s", d)
	}
	if exists(l.journalPath()) {
		t.Fatal("journal left")
	}
}

// TestImport_DoesNotBlockOtherCommands: a long import (a download) holds
// only its staging tree's lock, so a create runs meanwhile, and its recovery
// leaves the import's staging tree alone.
func TestImport_DoesNotBlockOtherCommands(t *testing.T) {
	src := testtree.New(t)
	ls := newLayout(t, src)
	res := mustCreate(t, ls, CreateOptions{})

	dir := testtree.New(t)
	l := newLayout(t, dir)
	filling, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.Import(context.Background(), res.ID, []byte(`{}`), copySource{l: ls, id: res.ID, before: func() {
			close(filling)
			<-release
		}}, nil)
	}()
	<-filling
	old := DefaultOpLockWait
	DefaultOpLockWait = time.Second
	defer func() { DefaultOpLockWait = old }()
	if _, err := Create(context.Background(), l, CreateOptions{Label: "meanwhile"}); err != nil {
		t.Fatalf("create during an import: %v", err)
	}
	if !exists(filepath.Join(l.stagingDir(), res.ID)) {
		t.Fatal("the create's recovery removed the import's staging tree")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("import: %v", err)
	}
	if vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("imported snapshot: %v %v", err, vr)
	}
	assertClean(t, l)
}

// TestRestore_FastVerifyChecksWhileBuilding: --fast-verify has no stat
// pass of its own; the build checks every file as it links or copies it,
// in the staging tree. A snapshot file replaced by another (another size,
// a missing one) is refused, exit 4, the data dir untouched, nothing left;
// a snapshot directory that others may write is restored from opened
// files, and the result is the snapshot's.
func TestRestore_FastVerifyChecksWhileBuilding(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{AppVersion: "3.5.1", Copy: []string{"CURRENT"}})
	want := testtree.Snapshot(t, l.TreeDir(res.ID))
	mutate(t, dir)
	before := live(t, dir)
	o := RestoreOptions{AppVersion: "3.5.1", FastVerify: true}
	tree := l.TreeDir(res.ID)

	// A linked file of the snapshot replaced by another inode.
	victim := filepath.Join(tree, "db", "000001.sst")
	orig, _ := os.ReadFile(victim)
	os.WriteFile(victim+".tmp", append(orig, 'x'), 0o644)
	os.Rename(victim, victim+".keep")
	os.Rename(victim+".tmp", victim)
	if _, err := Restore(context.Background(), l, res.ID, o); !errors.Is(err, ErrVerifyFailed) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("fast restore of a replaced file: %v", err)
	}
	if d := testtree.Diff(before, live(t, dir)); d != "" {
		t.Fatalf("a refused restore touched the data dir:\n%s", d)
	}
	assertNoRestoreLeftovers(t, l)
	// Missing.
	os.Remove(victim)
	if _, err := Restore(context.Background(), l, res.ID, o); !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("fast restore of a missing file: %v", err)
	}
	assertNoRestoreLeftovers(t, l)
	os.Rename(victim+".keep", victim)

	// A directory others may write: the file is opened, checked, linked.
	os.Chmod(filepath.Join(tree, "db"), 0o777)
	r, err := Restore(context.Background(), l, res.ID, RestoreOptions{AppVersion: "3.5.1", FastVerify: true, NoFailsafe: true})
	if err != nil || r.Verified != "fast" {
		t.Fatalf("fast restore: %+v %v", r, err)
	}
	os.Chmod(filepath.Join(tree, "db"), 0o755)
	got := live(t, dir)
	for p, e := range want {
		if strings.HasPrefix(p, "db/") && e.Mode.IsRegular() && string(got[p].Data) != string(e.Data) {
			t.Fatalf("%s after a fast restore: %q, want %q", p, got[p].Data, e.Data)
		}
	}
}

// TestRestore_RehashBesideBuild: the full re-hash runs beside the build of
// the restore tree. A linked file whose bytes changed with its stat kept
// (same inode, size and mtime: a stat check passes) is found by the
// re-hash wherever it lies in the tree, first or last; so is a directory
// or a symlink in a file's place (the build links those names without a
// stat of its own): the restore is refused, the data dir untouched, no
// tree left. Undamaged, the restore says "full" and puts the snapshot
// back.
func TestRestore_RehashBesideBuild(t *testing.T) {
	dir := t.TempDir()
	for d := range 20 {
		for f := range 50 {
			p := filepath.Join(dir, fmt.Sprintf("d%02d", d), fmt.Sprintf("f%02d", f))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d/%d\n", d, f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{})
	want := testtree.Snapshot(t, l.TreeDir(res.ID))
	os.WriteFile(filepath.Join(dir, "d00", "f00.tmp"), []byte("changed since\n"), 0o644)
	os.Rename(filepath.Join(dir, "d00", "f00.tmp"), filepath.Join(dir, "d00", "f00"))
	os.RemoveAll(filepath.Join(dir, "d19"))
	damage := func(rel string) (undo func()) {
		p := filepath.Join(l.TreeDir(res.ID), rel)
		fi, _ := os.Stat(p)
		b, _ := os.ReadFile(p)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{b[0] ^ 0x20}, 0)
		f.Close()
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
		return func() {
			os.WriteFile(p, b, 0o644)
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		}
	}
	for _, rel := range []string{"d00/f01", "d19/f49"} {
		undo := damage(rel) // d00/f01 is also the live file: one inode
		before := live(t, dir)
		_, err := Restore(context.Background(), l, res.ID, RestoreOptions{})
		if !errors.Is(err, ErrVerifyFailed) || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), rel) {
			t.Fatalf("restore with %s damaged: %v", rel, err)
		}
		if d := testtree.Diff(before, live(t, dir)); d != "" {
			t.Fatalf("a refused restore touched the data dir:\n%s", d)
		}
		assertNoRestoreLeftovers(t, l)
		undo()
	}
	// The build links by name without a stat of its own here: a directory
	// or a symlink where the snapshot has a file is still damage.
	for _, plant := range []string{"dir", "symlink"} {
		rel := "d05/f05"
		p := filepath.Join(l.TreeDir(res.ID), rel)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if plant == "dir" {
			os.Mkdir(p, 0o755)
		} else {
			os.Symlink(filepath.Join(dir, "d05", "f06"), p)
		}
		before := live(t, dir)
		_, err := Restore(context.Background(), l, res.ID, RestoreOptions{})
		if !errors.Is(err, ErrVerifyFailed) || !strings.Contains(err.Error(), rel) {
			t.Fatalf("restore with a %s at %s: %v", plant, rel, err)
		}
		if d := testtree.Diff(before, live(t, dir)); d != "" {
			t.Fatalf("a refused restore touched the data dir:\n%s", d)
		}
		assertNoRestoreLeftovers(t, l)
		os.Remove(p)
		if err := os.Link(filepath.Join(dir, rel), p); err != nil { // the live file is the snapshot's inode
			t.Fatal(err)
		}
	}
	rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{NoFailsafe: true})
	if err != nil || rr.Verified != "full" {
		t.Fatalf("restore: %+v %v", rr, err)
	}
	if d := testtree.Diff(want, live(t, dir)); d != "" {
		t.Fatalf("the restored data dir is not the snapshot:\n%s", d)
	}
}

// TestRestore_PlanIsExact checks a dry run's plan against one computed
// here from lstats of the live tree and the manifest: the plan's walk
// stats only what a listing cannot settle (a file whose listed inode is
// the snapshot's own needs nothing more), and must still name every
// change, with its bytes.
func TestRestore_PlanIsExact(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{Copy: []string{"CURRENT"}})
	mutate(t, dir)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// More kinds of change: a file become a dir, a dir become a file, a
	// file replaced by another inode of the same size and mtime (unchanged,
	// as before), a copied file rewritten in place (its inode is not the
	// snapshot's), one replaced by one of another size.
	must(os.Remove(filepath.Join(dir, "empty")))
	must(os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	must(os.RemoveAll(filepath.Join(dir, "readonly-dir")))
	must(os.WriteFile(filepath.Join(dir, "readonly-dir"), []byte("now a file"), 0o644))
	st, err := os.Stat(filepath.Join(dir, "db/MANIFEST-000001"))
	must(err)
	data, _ := os.ReadFile(filepath.Join(dir, "db/MANIFEST-000001"))
	must(os.Remove(filepath.Join(dir, "db/MANIFEST-000001")))
	must(os.WriteFile(filepath.Join(dir, "db/MANIFEST-000001"), data, 0o644))
	must(os.Chtimes(filepath.Join(dir, "db/MANIFEST-000001"), st.ModTime(), st.ModTime()))
	must(os.WriteFile(filepath.Join(dir, "db/CURRENT"), []byte("MANIFEST-000002, in place\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "db/000002.sst.new"), []byte("short"), 0o644))
	must(os.Rename(filepath.Join(dir, "db/000002.sst.new"), filepath.Join(dir, "db/000002.sst")))

	m, err := ReadManifest(l, res.ID)
	must(err)
	snap := map[string]manifest.Entry{}
	for _, e := range m.Entries {
		snap[string(e.Path)] = e
	}
	want := RestorePlan{Added: []string{}, Removed: []string{}, Changed: []string{}}
	seen := map[string]bool{}
	must(filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if rel == "backups" || rel == ".hotsnap" {
			return filepath.SkipDir
		}
		sys := fi.Sys().(*syscall.Stat_t)
		e, ok := snap[rel]
		seen[rel] = ok
		if !ok {
			want.Removed = append(want.Removed, rel)
			if fi.Mode().IsRegular() {
				want.RemovedBytes += fi.Size()
			}
			return nil
		}
		typ := map[bool]string{true: "dir", false: "file"}[fi.IsDir()]
		if fi.Mode()&os.ModeSymlink != 0 {
			typ = "symlink"
		}
		changed := typ != e.Type
		if !changed {
			switch typ {
			case "file":
				same := uint64(sys.Dev) == e.Inode.Dev && sys.Ino == e.Inode.Ino
				changed = !same && (fi.Size() != e.Size || fi.ModTime().UnixNano() != e.MtimeNs)
			case "symlink":
				tgt, _ := os.Readlink(p)
				changed = tgt != string(e.Target)
			case "dir":
				changed = uint32(fi.Mode().Perm())|uint32(sys.Mode&0o7000) != e.Mode
			}
		}
		if changed {
			want.Changed = append(want.Changed, rel)
			if e.Type == "file" {
				want.AddedBytes += e.Size
			}
			if fi.Mode().IsRegular() {
				want.RemovedBytes += fi.Size()
			}
		}
		return nil
	}))
	for _, e := range m.Entries {
		if _, ok := seen[string(e.Path)]; !ok {
			want.Added = append(want.Added, string(e.Path))
			if e.Type == "file" {
				want.AddedBytes += e.Size
			}
		}
	}
	rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{DryRun: true})
	must(err)
	for _, s := range [][]string{want.Added, want.Removed, want.Changed, rr.Plan.Added, rr.Plan.Removed, rr.Plan.Changed} {
		sort.Strings(s)
	}
	if !reflect.DeepEqual(*rr.Plan, want) {
		t.Fatalf("plan:\n %+v\nwant\n %+v", *rr.Plan, want)
	}
	// The plan saw each kind of change.
	for _, p := range []string{"empty", "readonly-dir", "db/000002.sst", "db/000001.sst", "db/CURRENT", "link-rel", "private"} {
		if !slices.Contains(rr.Plan.Changed, p) {
			t.Errorf("%s is not among the changed: %v", p, rr.Plan.Changed)
		}
	}
	for _, p := range []string{"db/MANIFEST-000001", "with space ü.txt", "db/hardlink-of-sst"} {
		if slices.Contains(rr.Plan.Changed, p) {
			t.Errorf("%s is among the changed: %v", p, rr.Plan.Changed)
		}
	}
}

// emptyDataDir removes everything from l's data dir but hotsnap's own
// places.
func emptyDataDir(t *testing.T, l *Layout) {
	t.Helper()
	ents, err := os.ReadDir(l.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !l.reservedNames()[e.Name()] {
			if err := os.RemoveAll(filepath.Join(l.DataDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRestore_EmptyDataDirPlan: a full restore into an empty data dir has
// its plan listed by the build (no pass of the manifest beside it): the
// same plan as the dry run's walk gives, every entry added, with the full
// re-hash and with --fast-verify, and the data dir is the snapshot's.
func TestRestore_EmptyDataDirPlan(t *testing.T) {
	l := newLayout(t, testtree.New(t))
	res := mustCreate(t, l, CreateOptions{})
	m, err := ReadManifest(l, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := testtree.Snapshot(t, l.TreeDir(res.ID))
	for _, fast := range []bool{false, true} {
		emptyDataDir(t, l)
		dry, err := Restore(context.Background(), l, res.ID, RestoreOptions{DryRun: true, FastVerify: fast})
		if err != nil {
			t.Fatal(err)
		}
		if len(dry.Plan.Added) != len(m.Entries) || len(dry.Plan.Removed)+len(dry.Plan.Changed) != 0 {
			t.Fatalf("dry run into an empty data dir: %d of %d entries added, plan %+v", len(dry.Plan.Added), len(m.Entries), dry.Plan)
		}
		rr, err := Restore(context.Background(), l, res.ID, RestoreOptions{FastVerify: fast})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rr.Plan, dry.Plan) {
			t.Fatalf("fast %v: the build's plan\n %+v\nthe dry run's\n %+v", fast, rr.Plan, dry.Plan)
		}
		if d := testtree.Diff(want, testtree.Snapshot(t, l.DataDir, "backups", ".hotsnap")); d != "" {
			t.Fatalf("fast %v: restored: %s", fast, d)
		}
	}
}

// TestRestore_EmptyDataDirReservedEntry: a snapshot that holds a path on
// hotsnap's own places in the data dir it is restored into (taken with
// the backups dir elsewhere, restored where backups/ is inside the data
// dir) is refused, into an empty data dir too, and nothing changes.
func TestRestore_EmptyDataDirReservedEntry(t *testing.T) {
	dir := testtree.New(t)
	if err := os.MkdirAll(filepath.Join(dir, "backups"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backups", "not-a-snapshot"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside, err := NewLayout(dir, filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	res := mustCreate(t, outside, CreateOptions{})
	l := newLayout(t, dir)
	emptyDataDir(t, l)
	if err := os.Remove(filepath.Join(dir, "backups", "not-a-snapshot")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(outside.BackupsDir, res.ID), filepath.Join(l.BackupsDir, res.ID)); err != nil {
		t.Fatal(err)
	}
	before := testtree.Snapshot(t, dir, ".hotsnap")
	for _, fast := range []bool{false, true} {
		_, err := Restore(context.Background(), l, res.ID, RestoreOptions{FastVerify: fast})
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), `"backups"`) {
			t.Fatalf("fast %v: restore of a snapshot holding backups/: %v", fast, err)
		}
		if d := testtree.Diff(before, testtree.Snapshot(t, dir, ".hotsnap")); d != "" {
			t.Fatalf("fast %v: a refused restore changed the data dir: %s", fast, d)
		}
	}
}

// TestImport_BrokenSealRefused: a manifest whose seal does not hold is
// refused by the proving pass that runs beside the fill, with its error
// (the source's own pass fails too, in other words: the proof's error is
// the one returned, every time), and nothing is left: no snapshot, no
// staging.
func TestImport_BrokenSealRefused(t *testing.T) {
	ls := newLayout(t, testtree.New(t))
	res := mustCreate(t, ls, CreateOptions{})
	l := newLayout(t, testtree.New(t))
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		i := bytes.Index(b, []byte(`"a.txt"`))
		if i < 0 {
			t.Fatal("no a.txt in the manifest")
		}
		b[i+5] = 'T' // a.txT: same length and order, valid JSON, the seal broken
		return b
	}
	for range 10 {
		err := l.Import(context.Background(), res.ID, []byte(`{}`), copySource{l: ls, id: res.ID, mangle: flip}, nil)
		if !errors.Is(err, manifest.ErrCorrupt) || !strings.Contains(err.Error(), "seal") {
			t.Fatalf("import of a manifest with a broken seal: %v", err)
		}
		if infos, _ := List(context.Background(), l, nil); len(infos) != 0 {
			t.Fatal("a refused import left a snapshot")
		}
		if names, _ := os.ReadDir(l.stagingDir()); len(names) != 0 {
			t.Fatalf("a refused import left staging: %v", names)
		}
	}
}
