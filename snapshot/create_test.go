package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

func newLayout(t *testing.T, dataDir string) *Layout {
	t.Helper()
	l, err := NewLayout(dataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustCreate(t *testing.T, l *Layout, o CreateOptions) *CreateResult {
	t.Helper()
	if o.Quiescer == nil {
		q := &quiesce.Flock{DataDir: l.DataDir}
		defer q.Close()
		o.Quiescer = q
	}
	res, err := Create(context.Background(), l, o)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res
}

// assertClean checks the invariants every test must leave: no staging, no
// trash, every listed snapshot readable and verified.
func assertClean(t *testing.T, l *Layout) {
	t.Helper()
	for _, d := range []string{l.stagingDir(), l.trashDir()} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Errorf("%s holds leftovers: %v", d, ents)
		}
	}
	infos, err := List(context.Background(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Error != "" {
			t.Errorf("snapshot %s unreadable: %s", i.ID, i.Error)
		}
	}
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestCreate_Fixture(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{Label: "fixture", AppVersion: "3.5.1"})
	if !strings.HasSuffix(res.ID, "_fixture") || res.PotentiallyInconsistent {
		t.Fatalf("unexpected result %+v", res)
	}
	// The snapshot's tree equals the data dir, entry for entry.
	live := testtree.Snapshot(t, dir, "backups", ".hotsnap")
	snap := testtree.Snapshot(t, l.TreeDir(res.ID))
	if d := testtree.Diff(live, snap); d != "" {
		t.Fatalf("snapshot differs from the data dir:\n%s", d)
	}
	// Linked, not copied: the same inode, so no bytes were written.
	if ino(t, filepath.Join(dir, "db/000001.sst")) != ino(t, filepath.Join(l.TreeDir(res.ID), "db/000001.sst")) {
		t.Fatal("regular file was not hard-linked")
	}
	m, err := ReadManifest(l, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]manifest.Entry{}
	for _, e := range m.Entries {
		byPath[string(e.Path)] = e
	}
	if a, b := byPath["db/000002.sst"], byPath["db/hardlink-of-sst"]; a.LinkGroup == 0 || a.LinkGroup != b.LinkGroup {
		t.Fatalf("hard links inside the data dir must share a link group: %+v %+v", a, b)
	}
	if e := byPath["dangling"]; e.Type != manifest.TypeSymlink || e.Target != "does/not/exist" {
		t.Fatalf("dangling symlink: %+v", e)
	}
	if e := byPath["private"]; e.Mode != 0o700 {
		t.Fatalf("0700 dir recorded as %o", e.Mode)
	}
	if fi, _ := os.Stat(filepath.Join(l.TreeDir(res.ID), "readonly-dir")); fi.Mode().Perm() != 0o555 {
		t.Fatalf("the snapshot's readonly-dir has mode %v, want 0555", fi.Mode())
	}
	if e := byPath["with space ü.txt"]; e.Type != manifest.TypeFile {
		t.Fatalf("UTF-8 name: %+v", e)
	}
	if m.AppVersion != "3.5.1" || m.Node.ID != DefaultNodeID || len(m.Topology.Nodes) != 1 {
		t.Fatalf("header: %+v", m)
	}
	if m.Totals.Files != res.Files || res.Files != 10 {
		t.Fatalf("files: manifest %d, result %d, want 10", m.Totals.Files, res.Files)
	}
	vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{})
	if err != nil || !vr.OK() {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	assertClean(t, l)
}

func TestCreate_CopyAndExclude(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{Copy: []string{"CURRENT", "db/MANIFEST-*"}, Exclude: []string{"*.log", "private"}})
	tree := l.TreeDir(res.ID)
	for _, p := range []string{"db/CURRENT", "db/MANIFEST-000001"} {
		if ino(t, filepath.Join(dir, p)) == ino(t, filepath.Join(tree, p)) {
			t.Errorf("%s should be a copy", p)
		}
		a, _ := os.Stat(filepath.Join(dir, p))
		b, _ := os.Stat(filepath.Join(tree, p))
		if !a.ModTime().Equal(b.ModTime()) || a.Mode() != b.Mode() {
			t.Errorf("%s: copy must keep mtime and mode", p)
		}
	}
	for _, p := range []string{"db/nested/deeper/leaf.log", "private"} {
		if _, err := os.Lstat(filepath.Join(tree, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s should be excluded", p)
		}
	}
	m, _ := ReadManifest(l, res.ID)
	for _, e := range m.Entries {
		if e.Path == "db/CURRENT" && e.Capture != manifest.CaptureCopy {
			t.Errorf("db/CURRENT capture %q", e.Capture)
		}
	}
	// Rewriting the live copy-captured file in place leaves the snapshot intact.
	os.WriteFile(filepath.Join(dir, "db/CURRENT"), []byte("MANIFEST-000999\n"), 0o644)
	if vr, _ := Verify(context.Background(), l, res.ID, VerifyOptions{}); !vr.OK() {
		t.Fatalf("snapshot changed through a copy-captured file: %v", vr.Problems)
	}
	assertClean(t, l)
}

func TestCreate_HashReuse(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	first := mustCreate(t, l, CreateOptions{})
	if first.ReusedHashes != 0 || first.HashedBytes == 0 {
		t.Fatalf("first create: %+v", first)
	}
	second := mustCreate(t, l, CreateOptions{})
	if second.HashedBytes != 0 || second.ReusedHashes != second.Files {
		t.Fatalf("unchanged tree must reuse every hash: %+v", second)
	}
	// Replace one file (write new, rename): only it is hashed.
	p := filepath.Join(dir, "db/000001.sst")
	os.WriteFile(p+".tmp", []byte("new content"), 0o644)
	os.Rename(p+".tmp", p)
	third := mustCreate(t, l, CreateOptions{})
	if third.HashedFiles != 1 || third.HashedBytes != int64(len("new content")) {
		t.Fatalf("want one file hashed, got %+v", third)
	}
	if vr, _ := Verify(context.Background(), l, third.ID, VerifyOptions{}); !vr.OK() {
		t.Fatal(vr.Problems)
	}
	assertClean(t, l)
}

// inPlaceWriter is a quiescer whose Resume rewrites a file in place, as an
// application that ignores the link contract would right after the lock.
type inPlaceWriter struct {
	quiesce.Flock
	path string
}

func (q *inPlaceWriter) Resume(ctx context.Context) error {
	err := q.Flock.Resume(ctx)
	time.Sleep(2 * time.Millisecond) // a later mtime, whatever the clock's granularity
	f, _ := os.OpenFile(q.path, os.O_WRONLY, 0)
	f.WriteAt([]byte("XX"), 0)
	f.Close()
	return err
}

func TestCreate_ModifiedInPlaceIsCaught(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	q := &inPlaceWriter{Flock: quiesce.Flock{DataDir: dir}, path: filepath.Join(dir, "db/CURRENT")}
	defer q.Close()
	_, err := Create(context.Background(), l, CreateOptions{Quiescer: q})
	if !errors.Is(err, ErrModifiedInPlace) || !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("want ErrModifiedInPlace, got %v", err)
	}
	if !strings.Contains(err.Error(), "db/CURRENT") || !strings.Contains(err.Error(), "--copy") {
		t.Fatalf("error must name the file and suggest --copy: %v", err)
	}
	if infos, _ := List(context.Background(), l, nil); len(infos) != 0 {
		t.Fatalf("a failed create left a snapshot: %+v", infos)
	}
	assertClean(t, l)
	// With the file captured as a copy, the same writer is harmless.
	res, err := Create(context.Background(), l, CreateOptions{Quiescer: q, Copy: []string{"CURRENT"}})
	if err != nil {
		t.Fatal(err)
	}
	if vr, _ := Verify(context.Background(), l, res.ID, VerifyOptions{}); !vr.OK() {
		t.Fatal(vr.Problems)
	}
}

func TestCreate_LockTimeoutAndAllowInconsistent(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	g, err := writegate.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tx, err := g.Begin(context.Background()) // a long write transaction
	if err != nil {
		t.Fatal(err)
	}
	defer tx.End()
	q := &quiesce.Flock{DataDir: dir}
	defer q.Close()
	pol := quiesce.Policy{MaxWait: 400 * time.Millisecond, InitialPeriod: 50 * time.Millisecond}
	_, err = Create(context.Background(), l, CreateOptions{Quiescer: q, Lock: pol})
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("want ErrLockTimeout, got %v", err)
	}
	if infos, _ := List(context.Background(), l, nil); len(infos) != 0 {
		t.Fatal("lock timeout left a snapshot")
	}
	// Writers were not left blocked: a new transaction starts at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tx2, err := g.Begin(ctx)
	if err != nil {
		t.Fatalf("writers blocked after a failed lock: %v", err)
	}
	tx2.End()

	res, err := Create(context.Background(), l, CreateOptions{Quiescer: q, Lock: pol, AllowInconsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.PotentiallyInconsistent || res.LockAttempts < 2 {
		t.Fatalf("want a flagged snapshot after several attempts: %+v", res)
	}
	infos, _ := List(context.Background(), l, nil)
	m, _ := ReadManifest(l, res.ID)
	if len(infos) != 1 || !infos[0].PotentiallyInconsistent || !m.PotentiallyInconsistent {
		t.Fatalf("flag must show in list and manifest: %+v", infos)
	}
	assertClean(t, l)
}

// recordingQuiescer never gets the lock; it records the periods it was given.
type recordingQuiescer struct{ waits []time.Duration }

func (r *recordingQuiescer) Quiesce(ctx context.Context, wait time.Duration) error {
	r.waits = append(r.waits, wait)
	time.Sleep(wait)
	return ErrLockTimeout
}
func (r *recordingQuiescer) Resume(context.Context) error { return nil }

// TestAcquire_PeriodsGrowByTenPercent runs on synctest's clock: the
// periods, their count and the give-up time are exact, not "about".
func TestAcquire_PeriodsGrowByTenPercent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recordingQuiescer{}
		start := time.Now()
		maxWait, first := 600*time.Millisecond, 20*time.Millisecond
		st, err := quiesce.Acquire(context.Background(), r, quiesce.Policy{MaxWait: maxWait, InitialPeriod: first})
		if !errors.Is(err, ErrLockTimeout) {
			t.Fatalf("want ErrLockTimeout, got %v", err)
		}
		if el := time.Since(start); el != maxWait {
			t.Fatalf("gave up after %s, want exactly the max wait %s", el, maxWait)
		}
		var want []time.Duration
		for p, spent := first, time.Duration(0); spent < maxWait; p += p / 10 {
			w := min(p, maxWait-spent) // the last one is clipped to the remaining time
			want = append(want, w)
			spent += w
		}
		if !slices.Equal(r.waits, want) || st.Attempts != len(want) || st.Waited != maxWait {
			t.Fatalf("periods %v (%d attempts, waited %s), want %v", r.waits, st.Attempts, st.Waited, want)
		}
	})
}

// refusingQuiescer says "not now" at once, as a lock command that exits
// 75 without waiting.
type refusingQuiescer struct{ attempts int }

func (r *refusingQuiescer) Quiesce(context.Context, time.Duration) error {
	r.attempts++
	return ErrLockTimeout
}
func (r *refusingQuiescer) Resume(context.Context) error { return nil }

// TestAcquire_RefusedAtOnce: attempts refused at once still come one per
// period, on synctest's clock: as many as the periods that fit in the
// max wait, never a spin.
func TestAcquire_RefusedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &refusingQuiescer{}
		start := time.Now()
		maxWait, first := 3*time.Second, 100*time.Millisecond
		st, err := quiesce.Acquire(context.Background(), r, quiesce.Policy{MaxWait: maxWait, InitialPeriod: first})
		if !errors.Is(err, ErrLockTimeout) || time.Since(start) != maxWait {
			t.Fatalf("gave up after %s with %v, want %s and a lock timeout", time.Since(start), err, maxWait)
		}
		n := 0
		for p, spent := first, time.Duration(0); spent < maxWait; p += p / 10 {
			spent += min(p, maxWait-spent)
			n++
		}
		if r.attempts != n || st.Attempts != n {
			t.Fatalf("%d attempts (stats %d), want one per period: %d", r.attempts, st.Attempts, n)
		}
		// Cancelled while waiting out a period: it ends at once.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(150*time.Millisecond, cancel)
		start = time.Now()
		if _, err := quiesce.Acquire(ctx, r, quiesce.Policy{MaxWait: maxWait, InitialPeriod: first}); !errors.Is(err, context.Canceled) || time.Since(start) != 150*time.Millisecond {
			t.Fatalf("cancelled: %v after %s", err, time.Since(start))
		}
	})
}

// TestExecQuiescer_RefusesAtOnce: a real lock command that exits 75 at
// once is run at most once per period: 8 periods of 100 ms growing by
// 10 % fill 1 s (a busy machine only makes them fewer).
func TestExecQuiescer_RefusesAtOnce(t *testing.T) {
	dir := testtree.New(t)
	count := filepath.Join(t.TempDir(), "count")
	q := &quiesce.Exec{LockCmd: `echo x >> ` + count + `; exit 75`, UnlockCmd: "true", DataDir: dir}
	st, err := quiesce.Acquire(context.Background(), q, quiesce.Policy{MaxWait: time.Second, InitialPeriod: 100 * time.Millisecond})
	b, _ := os.ReadFile(count)
	ran := strings.Count(string(b), "x")
	t.Logf("the lock command ran %d times in 1 s", ran)
	if !errors.Is(err, ErrLockTimeout) || ran != st.Attempts || ran < 1 || ran > 8 {
		t.Fatalf("ran %d times (%d attempts) in 1 s, want 1 to 8: %v", ran, st.Attempts, err)
	}
}

func TestExecQuiescer(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	state := t.TempDir()
	count := filepath.Join(state, "count")
	// Fails twice with 75 (retry), then locks; the unlock removes the marker.
	lock := `echo x >> ` + count + `; [ $(wc -l < ` + count + `) -ge 3 ] || exit 75; touch ` + state + `/locked`
	unlock := `rm -f ` + state + `/locked`
	q := &quiesce.Exec{LockCmd: lock, UnlockCmd: unlock, DataDir: dir}
	res, err := Create(context.Background(), l, CreateOptions{Quiescer: q, Lock: quiesce.Policy{InitialPeriod: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if res.LockAttempts != 3 {
		t.Fatalf("want 3 attempts, got %d", res.LockAttempts)
	}
	if _, err := os.Stat(filepath.Join(state, "locked")); !os.IsNotExist(err) {
		t.Fatal("unlock command did not run")
	}
	// Any other status is a failure, not retried, and leaves nothing.
	os.Remove(count)
	q = &quiesce.Exec{LockCmd: `echo x >> ` + count + `; echo "db is read-only" >&2; exit 3`, UnlockCmd: "true", DataDir: dir}
	_, err = Create(context.Background(), l, CreateOptions{Quiescer: q})
	if !errors.Is(err, ErrLockFailed) || !strings.Contains(err.Error(), "db is read-only") {
		t.Fatalf("want ErrLockFailed with stderr, got %v", err)
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "x") != 1 {
		t.Fatalf("a failing lock command must not be retried (ran %d times)", strings.Count(string(b), "x"))
	}
	// A failing unlock discards the snapshot and says so.
	q = &quiesce.Exec{LockCmd: "true", UnlockCmd: "exit 1", DataDir: dir}
	_, err = Create(context.Background(), l, CreateOptions{Quiescer: q})
	if !errors.Is(err, ErrLockFailed) || !strings.Contains(err.Error(), "discarded") {
		t.Fatalf("want unlock failure, got %v", err)
	}
	if infos, _ := List(context.Background(), l, nil); len(infos) != 1 {
		t.Fatalf("want only the first snapshot, got %d", len(infos))
	}
	assertClean(t, l)
}

func TestCreate_BadInput(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	before := testtree.Snapshot(t, dir)
	if _, err := Create(context.Background(), l, CreateOptions{Label: "a/b"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("label with '/': %v", err)
	}
	if _, err := Create(context.Background(), l, CreateOptions{Copy: []string{"[x"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad glob: %v", err)
	}
	if _, err := Create(context.Background(), l, CreateOptions{LinkMode: "teleport"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad link mode: %v", err)
	}
	if d := testtree.Diff(before, testtree.Snapshot(t, dir)); d != "" {
		t.Errorf("bad input touched the data dir:\n%s", d)
	}
	if _, err := NewLayout(filepath.Join(dir, "nope"), ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing data dir: %v", err)
	}
	if _, err := NewLayout(filepath.Join(dir, "a.txt"), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("file as data dir: %v", err)
	}
	res := mustCreate(t, l, CreateOptions{})
	if _, err := NewLayout(l.TreeDir(res.ID), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("snapshot tree as data dir: %v", err)
	}
	if _, err := NewLayout(filepath.Join(l.TreeDir(res.ID), "db"), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("dir inside backups as data dir: %v", err)
	}
	if err := Delete(context.Background(), l, "2020-01-01T00.00.00Z_nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if err := Delete(context.Background(), l, "../../etc", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad id: %v", err)
	}
	if _, err := Verify(context.Background(), l, "2020-01-01T00.00.00Z_nope", VerifyOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("verify unknown id: %v", err)
	}
	assertClean(t, l)
}

func TestCreate_BackupsOnAnotherFilesystem(t *testing.T) {
	other, err := os.MkdirTemp("/dev/shm", "hotsnap-test-")
	if err != nil {
		t.Fatalf("need /dev/shm (a tmpfs) for a second filesystem: %v", err)
	}
	defer os.RemoveAll(other)
	dir := testtree.New(t)
	if err := fsutilSameFS(dir, other); err == nil {
		t.Fatalf("%s and %s share a filesystem; this test needs two", dir, other)
	}
	l, err := NewLayout(dir, filepath.Join(other, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Create(context.Background(), l, CreateOptions{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "filesystem") {
		t.Fatalf("want a same-filesystem error, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "backups")); !os.IsNotExist(err) {
		t.Fatal("backups dir created on the wrong filesystem")
	}
	if _, err := os.Stat(filepath.Join(dir, ".hotsnap")); !os.IsNotExist(err) {
		t.Fatal("state dir written before the filesystem check")
	}
}

func TestDelete_LeavesLiveDataAlone(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	before := testtree.Snapshot(t, dir, "backups", ".hotsnap")
	res := mustCreate(t, l, CreateOptions{})
	if err := Delete(context.Background(), l, res.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.SnapshotDir(res.ID)); !os.IsNotExist(err) {
		t.Fatal("snapshot still there")
	}
	if d := testtree.Diff(before, testtree.Snapshot(t, dir, "backups", ".hotsnap")); d != "" {
		t.Fatalf("delete changed live data:\n%s", d)
	}
	assertClean(t, l)
}

// TestVerify_ReportsEveryDifference damages a snapshot in every way a
// verify must see, in a backups dir of hotsnap's own (files opened once)
// and in a shared one (each name proven a regular file before it is
// opened); a fifo where a file was is reported, never opened to block.
func TestVerify_ReportsEveryDifference(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "own", true: "shared"}[shared], func(t *testing.T) {
			dir := testtree.New(t)
			l := newLayout(t, dir)
			l.AllowSharedBackups = shared
			res := mustCreate(t, l, CreateOptions{Copy: []string{"CURRENT", "MANIFEST-*", "secret", "a.txt", "000002.sst", "with space*"}})
			tree := l.TreeDir(res.ID)
			// Damage the snapshot in every way (copies only: linked files are live data).
			os.Remove(filepath.Join(tree, "db/MANIFEST-000001"))                           // missing
			os.WriteFile(filepath.Join(tree, "db/extra"), []byte("x"), 0o644)              // extra
			os.WriteFile(filepath.Join(tree, "private/secret"), []byte("S3CRET\n"), 0o600) // same size, new bytes
			os.Remove(filepath.Join(tree, "dangling"))
			os.Symlink("elsewhere", filepath.Join(tree, "dangling")) // target
			os.Chmod(filepath.Join(tree, "db/nested"), 0o700)        // mode
			os.Remove(filepath.Join(tree, "link-rel"))
			os.Mkdir(filepath.Join(tree, "link-rel"), 0o755) // type
			os.WriteFile(filepath.Join(tree, "db/CURRENT"), []byte("longer content\n"), 0o644)
			os.Remove(filepath.Join(tree, "a.txt"))
			if err := syscall.Mkfifo(filepath.Join(tree, "a.txt"), 0o644); err != nil { // a file's type
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(tree, "db/000002.sst"), 0o600) // a file's mode
			owner := ""
			if os.Geteuid() == 0 {
				os.Lchown(filepath.Join(tree, "with space ü.txt"), 4321, 4321) // a file's owner
				owner = "with space ü.txt owner"
			}
			vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]string{}
			for _, p := range vr.Problems {
				kinds[p.Path+" "+p.Kind] = p.Detail
			}
			for _, want := range []string{
				"db/MANIFEST-000001 missing", "db/extra extra", "private/secret modified", "private/secret hash",
				"dangling target", "db/nested mode", "link-rel type", "db/CURRENT size", "db/CURRENT hash",
				"a.txt type", "db/000002.sst mode", owner,
			} {
				if _, ok := kinds[want]; !ok && want != "" {
					t.Errorf("problem %q not reported; got %v", want, vr.Problems)
				}
			}
			wantN := 11
			if owner != "" {
				wantN++
			}
			if len(vr.Problems) != wantN {
				t.Errorf("%d problems, want one each: %v", len(vr.Problems), vr.Problems)
			}
			if !errors.Is(vr.Err(), ErrVerifyFailed) {
				t.Fatal("Err must wrap ErrVerifyFailed")
			}
			// --fast sees every stat difference, and no hash.
			fast, _ := Verify(context.Background(), l, res.ID, VerifyOptions{Fast: true})
			var got, want []string
			for _, p := range fast.Problems {
				if p.Kind == manifest.ProblemHash {
					t.Fatal("--fast must not hash")
				}
				got = append(got, p.Path+" "+p.Kind)
			}
			for _, p := range vr.Problems {
				if p.Kind != manifest.ProblemHash {
					want = append(want, p.Path+" "+p.Kind)
				}
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("--fast found %v, want %v", got, want)
			}
		})
	}
}

// TestList_NeverRecovers: a read-only command never acts on state files;
// the next mutating command (here recover) cleans up.
func TestList_NeverRecovers(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	mustCreate(t, l, CreateOptions{})
	stale := filepath.Join(l.stagingDir(), "2026-01-01T00.00.00Z_crashed", "data", "ro")
	os.MkdirAll(stale, 0o755)
	os.Chmod(stale, 0o500)
	infos, err := List(context.Background(), l, nil)
	if err != nil || len(infos) != 1 {
		t.Fatalf("list: %v %v", infos, err)
	}
	if !exists(stale) {
		t.Fatal("list removed a leftover: read-only commands must not recover")
	}
	if _, err := Recover(context.Background(), l, nil); err != nil {
		t.Fatal(err)
	}
	assertClean(t, l)
}

func TestCreate_EmptyDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(dir, 0o755)
	l := newLayout(t, dir)
	res := mustCreate(t, l, CreateOptions{})
	if res.Files != 0 {
		t.Fatalf("%+v", res)
	}
	if vr, err := Verify(context.Background(), l, res.ID, VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("verify empty snapshot: %v %v", err, vr)
	}
	os.WriteFile(filepath.Join(dir, "later"), []byte("x"), 0o644)
	if _, err := Restore(context.Background(), l, res.ID, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, "later")) {
		t.Fatal("restore of an empty snapshot must empty the data dir")
	}
	assertClean(t, l)
}
