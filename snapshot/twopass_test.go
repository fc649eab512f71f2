package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/examples/bank"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// atLock is a quiescer that records the data dir as it is when writes
// stop: what the snapshot must hold.
type atLock struct {
	t     *testing.T
	dir   string
	state map[string]testtree.Entry
}

func (q *atLock) Quiesce(context.Context, time.Duration) error {
	q.state = testtree.Snapshot(q.t, q.dir, "backups", ".hotsnap")
	return nil
}
func (q *atLock) Resume(context.Context) error { return nil }

// TestCreate_WindowBetweenPasses: changes made between the first pass
// (Prepare) and the lock (Capture) are in the snapshot, which holds the
// data dir exactly as it was when writes stopped.
func TestCreate_WindowBetweenPasses(t *testing.T) {
	dir := testtree.New(t)
	testtree.Settle(t, dir) // only the changes below count as changes
	l := newLayout(t, dir)
	p, err := Prepare(context.Background(), l, CreateOptions{Label: "window", Copy: []string{"db/CURRENT"}})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// An LSM at work: a new table, a compaction dropping an old one, the
	// CURRENT pointer rewritten in place (--copy), a new dir, a dir gone.
	must(os.WriteFile(filepath.Join(dir, "db/000009.sst"), []byte("new table"), 0o644))
	must(os.Remove(filepath.Join(dir, "db/000001.sst")))
	must(os.WriteFile(filepath.Join(dir, "db/CURRENT"), []byte("MANIFEST-000009\n"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "wal/2"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "wal/2/log"), []byte("log"), 0o644))
	// A second name for a file the first pass linked, in a dir that stood.
	must(os.Link(filepath.Join(dir, "db/nested/deeper/leaf.log"), filepath.Join(dir, "wal/2/linked.log")))
	q := &atLock{t: t, dir: dir}
	res, err := p.Capture(context.Background(), CaptureOptions{Quiescer: q})
	if err != nil {
		t.Fatal(err)
	}
	if res.RescannedDirs == 0 || res.RecapturedEntries == 0 {
		t.Fatalf("the locked pass found nothing to do: %+v", res)
	}
	got := testtree.Snapshot(t, l.TreeDir(res.ID))
	if d := testtree.Diff(q.state, got); d != "" {
		t.Fatalf("the snapshot is not the data dir at the lock:\n%s", d)
	}
	if vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("verify: %v %v", err, vr.Problems)
	}
	// The two names of one inode are one link group, though the first pass
	// saw one link.
	m, err := ReadManifest(l, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, e := range m.Entries {
		groups[string(e.Path)] = e.LinkGroup
	}
	if g := groups["db/nested/deeper/leaf.log"]; g == 0 || groups["wal/2/linked.log"] != g {
		t.Fatalf("link groups: %d and %d, want one group", g, groups["wal/2/linked.log"])
	}
	assertClean(t, l)
}

// TestCreate_InPlaceChangesInTheWindow: a linked file appended to in place
// and another chmod-ed between the passes, in a directory that did not
// change (so the locked pass kept the first pass's stat), are recorded as
// they were at the lock: nothing changed them after it, so their stat
// after the lock is their stat at it, and the appended file is hashed
// again. (One written after the lock still fails the create:
// TestCreate_ModifiedInPlaceIsCaught.)
func TestCreate_InPlaceChangesInTheWindow(t *testing.T) {
	dir := testtree.New(t)
	testtree.Settle(t, dir)
	l := newLayout(t, dir)
	if _, err := Create(context.Background(), l, CreateOptions{}); err != nil {
		t.Fatal(err) // a previous snapshot, whose hashes would be reused
	}
	p, err := Prepare(context.Background(), l, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "db/000001.sst"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("appended in place"))
	f.Close()
	if err := os.Chmod(filepath.Join(dir, "db/000002.sst"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A change in the clock tick the locked pass ends in may be after it,
	// for all the ctime says: past that tick, the two are known to be before.
	testtree.Settle(t, dir)
	q := &atLock{t: t, dir: dir}
	res, err := p.Capture(context.Background(), CaptureOptions{Quiescer: q})
	if err != nil {
		t.Fatal(err)
	}
	if res.RescannedDirs != 0 || res.HashedFiles != 1 {
		t.Fatalf("want no dir listed again and the appended file alone hashed: %+v", res)
	}
	if d := testtree.Diff(q.state, testtree.Snapshot(t, l.TreeDir(res.ID))); d != "" {
		t.Fatalf("the snapshot is not the data dir at the lock:\n%s", d)
	}
	m, err := ReadManifest(l, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		if e.Path == "db/000002.sst" && e.Mode != 0o600 {
			t.Fatalf("the manifest records mode %o, want the chmod's 0600", e.Mode)
		}
	}
	if vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("verify: %v %v", err, vr.Problems)
	}
}

// TestBank_WritersInTheWindow: writers move money through both passes and
// the window between them; each snapshot sums to the total.
func TestBank_WritersInTheWindow(t *testing.T) {
	l, w, stop := startBank(t, false)
	defer stop()
	q := &quiesce.Flock{DataDir: l.DataDir}
	defer q.Close()
	rescanned := 0
	for i := 0; i < 8; i++ {
		p, err := Prepare(context.Background(), l, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for before := w.Transfers.Load(); w.Transfers.Load() < before+100; {
			time.Sleep(time.Millisecond) // the window: transfers go on
		}
		res, err := p.Capture(context.Background(), CaptureOptions{Quiescer: q, Lock: quiesce.Policy{MaxWait: 20 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		rescanned += res.RescannedDirs
		if sum, n, err := bank.Sum(l.TreeDir(res.ID)); err != nil || n != bankAccounts || sum != bankTotal {
			t.Fatalf("snapshot %s: %d accounts sum to %d, want %d summing to %d (err %v)", res.ID, n, sum, bankAccounts, bankTotal, err)
		}
	}
	if rescanned == 0 {
		t.Fatal("no directory was listed again: the window saw no change")
	}
}

// TestSecurity_SwapInTheWindow: between the passes, the data dir's owner
// (a throwaway unprivileged user) swaps a directory the first pass linked
// for a symlink to a root-only tree, and a file for a symlink to a
// root-only secret. The locked pass finds both changed and captures the
// symlinks as symlinks: nothing outside the data dir is read, linked or
// changed.
func TestSecurity_SwapInTheWindow(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testuser.DataDir(t)
	victim := testuser.NewVictim(t)
	testtree.Settle(t, dir)
	l := newLayout(t, dir)
	p, err := Prepare(context.Background(), l, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("cd %s && rm -rf db/sub && ln -s %s/dir db/sub && rm a.txt && ln -s %s/secret a.txt", dir, victim.Dir, victim.Dir)
	if out, err := testuser.Sh(script); err != nil {
		t.Fatalf("as uid %d: %v\n%s", testuser.UID, err, out)
	}
	res, err := p.Capture(context.Background(), CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(l, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, e := range m.Entries {
		types[string(e.Path)] = string(e.Type)
		if strings.HasPrefix(string(e.Path), "db/sub/") {
			t.Fatalf("the snapshot holds %s, below the symlink db/sub", e.Path)
		}
	}
	if types["db/sub"] != "symlink" || types["a.txt"] != "symlink" {
		t.Fatalf("want db/sub and a.txt captured as symlinks: %v", types)
	}
	victim.NoSecretIn(t, filepath.Join(dir, "backups"))
	victim.NoSecretIn(t, filepath.Join(dir, ".hotsnap"))
	victim.Check(t)
	if vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("verify: %v %v", err, vr.Problems)
	}
}
