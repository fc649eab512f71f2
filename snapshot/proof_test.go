package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// imported makes a data dir holding an imported copy of a fresh snapshot
// of the fixture (as a download makes it), and returns its layout and id.
func imported(t *testing.T) (*Layout, string) {
	t.Helper()
	ls := newLayout(t, testtree.New(t))
	res := mustCreate(t, ls, CreateOptions{})
	l := newLayout(t, testtree.New(t))
	if err := l.Import(context.Background(), res.ID, []byte(`{}`), copySource{l: ls, id: res.ID}, nil); err != nil {
		t.Fatal(err)
	}
	return l, res.ID
}

// TestRestore_ProofOfDownload: the restore right after an import checks the
// tree by stat under its proof; any change to an entry since (content
// rewritten in place with its mtime put back, a chmod), an old proof, a
// proof with two links, or a backups dir others may write make it re-hash,
// which still finds the damage.
func TestRestore_ProofOfDownload(t *testing.T) {
	l, id := imported(t)
	rr, err := Restore(context.Background(), l, id, RestoreOptions{DryRun: true})
	if err != nil || rr.Verified != "proof" {
		t.Fatalf("restore after an import: verified %q, %v", rr.Verified, err)
	}
	// Too old, or from a clock ahead of ours: no proof.
	for _, now := range []time.Time{time.Now().Add(proofMaxAge + time.Minute), time.Now().Add(-time.Hour)} {
		rr, err = Restore(context.Background(), l, id, RestoreOptions{DryRun: true, Now: func() time.Time { return now }})
		if err != nil || rr.Verified != "full" {
			t.Fatalf("restore at %v: verified %q, %v", now, rr.Verified, err)
		}
	}
	// A chmod and back: the content is the same, the ctime moved.
	p := filepath.Join(l.TreeDir(id), "db/CURRENT")
	os.Chmod(p, 0o600)
	os.Chmod(p, 0o644)
	rr, err = Restore(context.Background(), l, id, RestoreOptions{DryRun: true})
	if err != nil || rr.Verified != "full" {
		t.Fatalf("restore after a chmod: verified %q, %v", rr.Verified, err)
	}

	// The restore itself: its build checks each file under the proof as
	// it links it, finds the chmod'ed one not covered, and the snapshot
	// is re-hashed beside a new build; the data dir is the snapshot's.
	live := testtree.Snapshot(t, l.TreeDir(id))
	os.WriteFile(filepath.Join(l.DataDir, "db", "CURRENT"), []byte("changed since"), 0o644)
	rr, err = Restore(context.Background(), l, id, RestoreOptions{})
	if err != nil || rr.Verified != "full" {
		t.Fatalf("restore after a chmod: verified %q, %v", rr.Verified, err)
	}
	if d := testtree.Diff(live, testtree.Snapshot(t, l.DataDir, "backups", ".hotsnap")); d != "" {
		t.Fatalf("restored after falling back to the re-hash: %s", d)
	}

	// Content rewritten in place, size and mtime put back: only a hash
	// sees it, and the moved ctime makes the restore take one, in a dry
	// run and in the restore, which changes nothing.
	l2, id2 := imported(t)
	p = filepath.Join(l2.TreeDir(id2), "db/000002.sst")
	fi, _ := os.Stat(p)
	b, _ := os.ReadFile(p)
	b[0] ^= 0xff
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt(b[:1], 0)
	f.Close()
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	if _, err := Restore(context.Background(), l2, id2, RestoreOptions{DryRun: true}); !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("restore of a tree damaged after its proof: %v", err)
	}
	live = testtree.Snapshot(t, l2.DataDir, "backups", ".hotsnap")
	if _, err := Restore(context.Background(), l2, id2, RestoreOptions{}); !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("restore of a tree damaged after its proof: %v", err)
	}
	if d := testtree.Diff(live, testtree.Snapshot(t, l2.DataDir, "backups", ".hotsnap")); d != "" {
		t.Fatalf("a refused restore changed the data dir: %s", d)
	}
	if names, _ := os.ReadDir(filepath.Join(l2.PrivateDir, restoringName)); len(names) != 0 {
		t.Fatalf("a refused restore left its tree: %v", names)
	}

	// A proof file with two links is not trusted; nor is any proof where
	// others may write the backups dir.
	l3, id3 := imported(t)
	pf := filepath.Join(l3.BackupsDir, id3, proofName)
	os.Link(pf, pf+".2")
	rr, err = Restore(context.Background(), l3, id3, RestoreOptions{DryRun: true})
	if err != nil || rr.Verified != "full" {
		t.Fatalf("restore under a proof with two links: verified %q, %v", rr.Verified, err)
	}
	os.Remove(pf + ".2")
	l3.AllowSharedBackups = true
	if rr, err = Restore(context.Background(), l3, id3, RestoreOptions{DryRun: true}); err != nil || rr.Verified != "full" {
		t.Fatalf("restore under a proof in a shared backups dir: verified %q, %v", rr.Verified, err)
	}
	l3.AllowSharedBackups = false
	// The restore itself links the snapshot's files: the next one re-hashes.
	if rr, err = Restore(context.Background(), l3, id3, RestoreOptions{}); err != nil || rr.Verified != "proof" {
		t.Fatalf("restore: verified %q, %v", rr.Verified, err)
	}
	if rr, err = Restore(context.Background(), l3, id3, RestoreOptions{DryRun: true}); err != nil || rr.Verified != "full" {
		t.Fatalf("second restore: verified %q, %v", rr.Verified, err)
	}
}

// TestRestore_ProofLinkGroupOutsideName: a link group's inode with a name
// outside the snapshot (more links than the group has names) is not
// covered by the proof, even when the proof's mark was taken after that
// link was made (the race a live name gives). The build learns the
// group's names as it reads the manifest and checks the links it saw
// before the swap: the restore re-hashes ("full"), in a dry run and in the
// restore, whose data dir is still the snapshot's.
func TestRestore_ProofLinkGroupOutsideName(t *testing.T) {
	remark := func(l *Layout, id string) {
		t.Helper()
		d, err := fsutil.OpenDir(l.BackupsDir)
		if err != nil {
			t.Fatal(err)
		}
		mark, err := fsutil.CtimeMark(d)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(proof{Version: proofVersion, ID: id, ProvenAt: time.Now().UTC(), CtimeMarkNs: mark})
		pf := filepath.Join(l.BackupsDir, id, proofName)
		if err := os.WriteFile(pf+".new", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(pf+".new", pf); err != nil {
			t.Fatal(err)
		}
	}
	// The control: the group's own names only, the proof covers it.
	l, id := imported(t)
	remark(l, id)
	if rr, err := Restore(context.Background(), l, id, RestoreOptions{DryRun: true}); err != nil || rr.Verified != "proof" {
		t.Fatalf("restore after an import: verified %q, %v", rr.Verified, err)
	}
	if rr, err := Restore(context.Background(), l, id, RestoreOptions{}); err != nil || rr.Verified != "proof" {
		t.Fatalf("restore after an import: verified %q, %v", rr.Verified, err)
	}

	l, id = imported(t)
	member := filepath.Join(l.TreeDir(id), "db/000002.sst") // linked to db/hardlink-of-sst
	if err := os.Link(member, filepath.Join(t.TempDir(), "outside")); err != nil {
		t.Fatal(err)
	}
	remark(l, id)
	if rr, err := Restore(context.Background(), l, id, RestoreOptions{DryRun: true}); err != nil || rr.Verified != "full" {
		t.Fatalf("dry run with a name outside the group: verified %q, %v", rr.Verified, err)
	}
	want := testtree.Snapshot(t, l.TreeDir(id))
	rr, err := Restore(context.Background(), l, id, RestoreOptions{})
	if err != nil || rr.Verified != "full" {
		t.Fatalf("restore with a name outside the group: verified %q, %v", rr.Verified, err)
	}
	if d := testtree.Diff(want, testtree.Snapshot(t, l.DataDir, "backups", ".hotsnap")); d != "" {
		t.Fatalf("restored after falling back to the re-hash: %s", d)
	}
}

// TestCtimeMark: every change before the mark has a ctime below it, every
// change after has one at or above it, however close in time.
func TestCtimeMark(t *testing.T) {
	dir := t.TempDir()
	d, err := fsutil.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctime := func(p string) int64 {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ctim.Nano()
	}
	for i := range 20 {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte{byte(i)}, 0o644)
		mark, err := fsutil.CtimeMark(d)
		if err != nil {
			t.Fatal(err)
		}
		if c := ctime(p); c >= mark {
			t.Fatalf("a change before the mark has ctime %d >= mark %d", c, mark)
		}
		os.Chmod(p, 0o600)
		if c := ctime(p); c < mark {
			t.Fatalf("a change after the mark has ctime %d < mark %d", c, mark)
		}
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Fatalf("the probe was left: %v", names)
	}
}
