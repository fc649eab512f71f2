package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

func TestRestore_Partial(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{Copy: []string{"CURRENT"}})
	snap := testtree.Snapshot(t, l.TreeDir(res.ID))
	// The application moves on: a subtree goes, a copied file is rewritten,
	// files the snapshot does not hold appear beside and inside what is
	// restored.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.RemoveAll(filepath.Join(dir, "db/nested")))
	must(os.WriteFile(filepath.Join(dir, "db/CURRENT"), []byte("MANIFEST-000009\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "db/000009.sst"), []byte("newer"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "a.txt.new"), []byte("replaced"), 0o644))
	must(os.Rename(filepath.Join(dir, "a.txt.new"), filepath.Join(dir, "a.txt")))
	must(os.WriteFile(filepath.Join(dir, "private/extra"), []byte("x"), 0o600))
	old := live(t, dir)
	currentIno := ino(t, filepath.Join(dir, "db/CURRENT"))

	q := &quiesce.Flock{DataDir: dir}
	defer q.Close()
	o := RestoreOptions{Include: []string{"db/nested", "CURRENT", "private"}, Quiescer: q, DryRun: true}
	dry, err := Restore(context.Background(), l, res.ID, o)
	if err != nil {
		t.Fatal(err)
	}
	if d := testtree.Diff(old, live(t, dir)); d != "" {
		t.Fatalf("a dry run changed the data dir:\n%s", d)
	}
	sort.Strings(dry.Plan.Added)
	if got, want := strings.Join(dry.Plan.Added, " "), "db/nested db/nested/deeper db/nested/deeper/leaf.log db/nested/link-up"; got != want {
		t.Errorf("plan added %q, want %q", got, want)
	}
	if got := strings.Join(dry.Plan.Removed, " "); got != "private/extra" {
		t.Errorf("plan removed %q, want private/extra (inside a restored dir)", got)
	}
	if got := strings.Join(dry.Plan.Changed, " "); got != "db/CURRENT" {
		t.Errorf("plan changed %q, want db/CURRENT", got)
	}

	o.DryRun = false
	rr, err := Restore(context.Background(), l, res.ID, o)
	if err != nil {
		t.Fatal(err)
	}
	if d := testtree.Diff(testtree.Replace(old, snap, "db/nested", "db/CURRENT", "private"), live(t, dir)); d != "" {
		t.Fatalf("after the partial restore:\n%s", d)
	}
	if rr.Files != 3 || len(rr.Include) != 3 {
		t.Errorf("result: files %d include %v, want 3 files (leaf.log, CURRENT, secret)", rr.Files, rr.Include)
	}
	// The failsafe holds exactly what was replaced, at its paths.
	fs := testtree.Snapshot(t, rr.Failsafe)
	var held []string
	for p := range fs {
		held = append(held, p)
	}
	sort.Strings(held)
	if got := strings.Join(held, " "); got != "db db/CURRENT private private/extra private/secret" {
		t.Errorf("failsafe holds %q", got)
	}
	if ino(t, filepath.Join(rr.Failsafe, "db/CURRENT")) != currentIno {
		t.Error("the replaced db/CURRENT is not the one in the failsafe")
	}
	// Its failsafe holds a part of a data dir: revert refuses it.
	if _, err := Revert(context.Background(), l, rr.Failsafe, RevertOptions{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "partial") {
		t.Fatalf("revert of a partial failsafe: %v", err)
	}
	assertClean(t, l)
}

// TestRestore_PartialMissingParents: the live data dir lost the whole
// directory above the entry asked for; the restore brings the directories
// with only that entry in them, and the rest of the snapshot stays out.
func TestRestore_PartialMissingParents(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{})
	snap := testtree.Snapshot(t, l.TreeDir(res.ID))
	if err := os.RemoveAll(filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}
	old := live(t, dir)
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{Include: []string{"*.log", "db/MANIFEST-*"}}); err != nil {
		t.Fatal(err)
	}
	want := testtree.Replace(old, snap, "db/nested/deeper/leaf.log", "db/MANIFEST-000001")
	for _, p := range []string{"db", "db/nested", "db/nested/deeper"} {
		want[p] = snap[p]
	}
	if d := testtree.Diff(want, live(t, dir)); d != "" {
		t.Fatalf("after the partial restore:\n%s", d)
	}
	// Nothing matches: refused before anything is touched.
	before := live(t, dir)
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{Include: []string{"no-such-*"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an include matching nothing: %v", err)
	}
	if d := testtree.Diff(before, live(t, dir)); d != "" {
		t.Fatalf("a refused restore changed the data dir:\n%s", d)
	}
	// A damaged file: refused when selected, no matter when not.
	leaf := filepath.Join(l.TreeDir(res.ID), "db/nested/deeper/leaf.log")
	st, _ := os.Stat(leaf)
	os.WriteFile(leaf+".new", []byte("LOG LINE\n"), 0o644) // a new inode: the live file is the old one
	os.Chtimes(leaf+".new", st.ModTime(), st.ModTime())
	os.Rename(leaf+".new", leaf)
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{Include: []string{"deeper"}}); !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("a damaged selected file: %v", err)
	}
	if d := testtree.Diff(before, live(t, dir)); d != "" {
		t.Fatalf("a refused restore changed the data dir:\n%s", d)
	}
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{Include: []string{"a.txt"}}); err != nil {
		t.Fatalf("a damage outside the selection: %v", err)
	}
	assertClean(t, l)
}

// TestRestore_PartialRefusesWhatStandsAbove: a user who can write the
// data dir replaces a directory above the entries asked for with a file,
// or with a symlink to a directory outside; the restore refuses before
// anything moves and writes nothing through the symlink, at plan time and
// again under the lock (where the plan could not have seen it).
func TestRestore_PartialRefusesWhatStandsAbove(t *testing.T) {
	for _, plant := range []string{"file", "symlink"} {
		t.Run(plant, func(t *testing.T) {
			dir := testtree.New(t)
			l := newLayout(t, dir)
			res := mustCreate(t, l, CreateOptions{})
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, "keep"), []byte("mine"), 0o644)
			outsideBefore := testtree.Snapshot(t, outside)
			nested := filepath.Join(dir, "db/nested")
			if err := os.RemoveAll(nested); err != nil {
				t.Fatal(err)
			}
			if plant == "file" {
				os.WriteFile(nested, []byte("not a dir"), 0o644)
			} else if err := os.Symlink(outside, nested); err != nil {
				t.Fatal(err)
			}
			old := live(t, dir)
			_, err := Restore(context.Background(), l, res.ID, RestoreOptions{Include: []string{"leaf.log"}})
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "db/nested is a") {
				t.Fatalf("restore over a planted %s: %v", plant, err)
			}
			// Under the lock: the units are decided again.
			s := writeSession(t, l)
			snapMf, err := s.openManifest(res.ID)
			if err != nil {
				t.Fatal(err)
			}
			sel, err := selectTops(context.Background(), snapMf, []string{"leaf.log"})
			snapMf.Close()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.partialUnits(sel); !errors.Is(err, ErrConflict) {
				t.Fatalf("units over a planted %s: %v", plant, err)
			}
			s.close()
			if d := testtree.Diff(old, live(t, dir)); d != "" {
				t.Fatalf("a refused restore changed the data dir:\n%s", d)
			}
			if d := testtree.Diff(outsideBefore, testtree.Snapshot(t, outside)); d != "" {
				t.Fatalf("the directory outside changed:\n%s", d)
			}
			assertClean(t, l)
		})
	}
}

// TestJournal_PartialNames: a partial restore's journal may name nested
// paths, but never one climbing out, hotsnap's own places, or one unit
// below another; a whole restore's names stay single components.
func TestJournal_PartialNames(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	s := writeSession(t, l)
	base := journal{Version: journalVersion, ID: "2026-01-01T00.00.00Z_x", Failsafe: "f", Source: "restoring/2026-01-01T00.00.00Z_x"}
	for _, tc := range []struct {
		partial bool
		in      []string
		ok      bool
	}{
		{true, []string{"db/nested", "private/secret"}, true},
		{false, []string{"db/nested"}, false},
		{true, []string{"db/../../etc"}, false},
		{true, []string{"/etc/passwd"}, false},
		{true, []string{".hotsnap/private"}, false},
		{true, []string{"backups/x"}, false},
		{true, []string{"db", "db/nested"}, false},
		{true, []string{"db/nested", "db/nested"}, false},
	} {
		j := base
		j.Partial, j.MoveIn = tc.partial, tc.in
		if err := s.checkJournal(&j); (err == nil) != tc.ok {
			t.Errorf("partial=%v %v: %v", tc.partial, tc.in, err)
		}
	}
}
