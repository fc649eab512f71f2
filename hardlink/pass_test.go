package hardlink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testxfs"
)

// passTree makes 20 dirs of 10 files each, plus a symlink and a nested dir.
func passTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	for d := range 20 {
		for f := range 10 {
			p := filepath.Join(src, fmt.Sprintf("d%02d/f%02d", d, f))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.MkdirAll(filepath.Join(src, "d00/sub/deep"), 0o755)
	os.WriteFile(filepath.Join(src, "d00/sub/deep/x"), []byte("x"), 0o644)
	os.Symlink("d01/f00", filepath.Join(src, "link"))
	testtree.Settle(t, src)
	return src
}

// sameAsSource requires the captured tree to be the source as it is now:
// every entry, its type and bytes (testtree's snapshot), and the items to
// name exactly the captured entries, links sharing the source's inode.
func sameAsSource(t *testing.T, src, dst string, res *Result) {
	t.Helper()
	for _, it := range res.Items {
		if it.IsDir() { // the caller's tree.FinishDirs gives dirs their modes
			os.Chmod(filepath.Join(dst, it.Rel), os.FileMode(it.Perm()))
		}
	}
	if d := testtree.Diff(testtree.Snapshot(t, src), testtree.Snapshot(t, dst)); d != "" {
		t.Fatalf("the capture differs from the source:\n%s", d)
	}
	n := 0
	filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
		if p != dst {
			n++
		}
		return nil
	})
	if len(res.Items) != n {
		t.Fatalf("%d items for %d captured entries", len(res.Items), n)
	}
	for i, it := range res.Items {
		if i > 0 && res.Items[i-1].Rel >= it.Rel {
			t.Fatalf("items not sorted or doubled: %s, %s", res.Items[i-1].Rel, it.Rel)
		}
		// Dirs and symlinks are recorded as the source's; files as the
		// captured inode (the source's own for links).
		at := dst
		if it.IsDir() || it.IsSymlink() {
			at = src
		}
		st, err := fsutil.Lstat(filepath.Join(at, it.Rel))
		if err != nil {
			t.Fatalf("item %s: %v", it.Rel, err)
		}
		if st.Ino != it.Ino || st.Mode&0o170000 != it.Mode&0o170000 {
			t.Fatalf("item %s does not describe the captured entry: %+v vs %+v", it.Rel, it, st)
		}
		if it.Capture == CaptureLink {
			sst, err := fsutil.Lstat(filepath.Join(src, it.Rel))
			if err != nil || sst.Ino != it.Ino || sst.Size != it.Size || sst.MtimeNs != it.MtimeNs {
				t.Fatalf("linked item %s: %+v, source %+v (%v)", it.Rel, it, sst, err)
			}
		}
	}
}

// TestPass_WindowChanges: everything a writer can do to directory entries
// between the first pass and the lock is found by the locked pass, which
// lists again only the directories that changed.
func TestPass_WindowChanges(t *testing.T) {
	src := passTree(t)
	sd, dd, dst := dirs(t, src)
	p, err := Pre(context.Background(), sd, dd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := func(rel, data string) {
		os.MkdirAll(filepath.Dir(filepath.Join(src, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(src, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The window: writes go on.
	w("d02/new", "added")                                                             // a new file
	must(os.Remove(filepath.Join(src, "d03/f01")))                                    // a file gone
	w("d04/tmp", "renamed over")                                                      // CURRENT-style rename over
	must(os.Rename(filepath.Join(src, "d04/tmp"), filepath.Join(src, "d04/f02")))     //
	must(os.RemoveAll(filepath.Join(src, "d05")))                                     // a dir gone
	must(os.Rename(filepath.Join(src, "d06"), filepath.Join(src, "d07/moved")))       // a dir moved into another
	must(os.RemoveAll(filepath.Join(src, "d00/sub/deep")))                            // a nested dir replaced by a file
	w("d00/sub/deep", "now a file")                                                   //
	must(os.Remove(filepath.Join(src, "d08/f00")))                                    // a file replaced by a dir
	w("d08/f00/inside", "in the new dir")                                             //
	must(os.Remove(filepath.Join(src, "link")))                                       // a symlink replaced
	must(os.Symlink("d09/f09", filepath.Join(src, "link")))                           //
	w("d10/brand/new/tree", "a new subtree")                                          // a new subtree
	must(os.Rename(filepath.Join(src, "d11/f03"), filepath.Join(src, "d11/f03.old"))) // a rename in place
	if err := p.Finish(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	res := p.Result()
	sameAsSource(t, src, dst, res)
	// Listed again: the 9 that changed, the root (link, d05, d06), d00/sub,
	// d02, d03, d04, d07, d08, d10, d11; not d05 and d06 (gone: their
	// parent found that), nor the 12 others of the 23.
	if res.Stats.Dirs != 23 || res.Stats.Rescanned != 9 {
		t.Fatalf("rescanned %d of %d dirs, want the 9 that changed of 23 (stats %+v)", res.Stats.Rescanned, res.Stats.Dirs, res.Stats)
	}
	if len(res.Warnings) != 0 {
		t.Fatalf("warnings: %+v", res.Warnings)
	}
}

// TestPass_ChangeRightAfterListing: a directory changed just after the
// first pass listed it, in the same clock tick or not, is listed again:
// the change is made from inside the first pass (its Skip callback runs
// once the directory's names are read).
func TestPass_ChangeRightAfterListing(t *testing.T) {
	src := passTree(t)
	sd, dd, dst := dirs(t, src)
	done := false
	p, err := Pre(context.Background(), sd, dd, Options{Skip: func(rel string, isDir bool) bool {
		if rel == "d12/f09" && !done { // the last name of d12: the others are linked
			done = true
			os.WriteFile(filepath.Join(src, "d12/late"), []byte("late"), 0o644)
			os.Remove(filepath.Join(src, "d12/f00"))
		}
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "d12/f00")); err != nil {
		t.Fatal("the first pass should have linked d12/f00 before it went: the test did not hit the window")
	}
	if _, err := os.Lstat(filepath.Join(dst, "d12/late")); err == nil {
		t.Fatal("the first pass saw d12/late: the test did not hit the window")
	}
	if err := p.Finish(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameAsSource(t, src, dst, p.Result())
}

// TestPass_CopiesUnderTheLock: files chosen for copying are copied by the
// locked pass, so an in-place rewrite before the lock is in the capture;
// a file the stopped application holds open (copyInode) is copied there
// too, whatever its directory.
func TestPass_CopiesUnderTheLock(t *testing.T) {
	src := passTree(t)
	sd, dd, dst := dirs(t, src)
	p, err := Pre(context.Background(), sd, dd, Options{Copy: func(rel string) bool { return rel == "d13/f00" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "d13/f00")); !os.IsNotExist(err) {
		t.Fatalf("the first pass made the copy: %v", err)
	}
	os.WriteFile(filepath.Join(src, "d13/f00"), []byte("rewritten in place before the lock"), 0o644)
	held, _ := fsutil.Lstat(filepath.Join(src, "d14/f05"))
	if err := p.Finish(context.Background(), func(dev, ino uint64) bool { return ino == held.Ino }); err != nil {
		t.Fatal(err)
	}
	res := p.Result()
	sameAsSource(t, src, dst, res)
	for _, it := range res.Items {
		if (it.Rel == "d13/f00" || it.Rel == "d14/f05") && (it.Capture != CaptureCopy || it.Ino == it.SrcIno) {
			t.Fatalf("%s: want a private copy, got %+v", it.Rel, it)
		}
	}
	if res.Stats.Rescanned != 0 || res.Stats.Recaptured != 2 {
		t.Fatalf("stats %+v: want no dir listed again and the two copies made", res.Stats)
	}
}

// TestPass_ReflinkReclonesChanged: in reflink mode (a real XFS), a file
// rewritten in place between the passes is cloned again under the lock;
// the others keep their first-pass clones.
func TestPass_ReflinkReclonesChanged(t *testing.T) {
	mnt := testxfs.Mount(t, 300<<20)
	src := filepath.Join(mnt, "src")
	os.MkdirAll(filepath.Join(src, "a"), 0o755)
	for i := range 5 {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("a/f%d", i)), []byte(strings.Repeat("v1", 1000)), 0o644)
	}
	testtree.Settle(t, src)
	dstPath := filepath.Join(mnt, "dst")
	os.Mkdir(dstPath, 0o700)
	sd, err := fsutil.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	dd, err := fsutil.OpenDir(dstPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	p, err := Pre(context.Background(), sd, dd, Options{LinkMode: LinkModeReflink})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := fsutil.Lstat(filepath.Join(dstPath, "a/f1"))
	f, _ := os.OpenFile(filepath.Join(src, "a/f3"), os.O_WRONLY, 0)
	f.WriteAt([]byte("v2"), 0) // in place: the directory does not change
	f.Close()
	if err := p.Finish(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	res := p.Result()
	sameAsSource(t, src, dstPath, res)
	if res.Stats.Rescanned != 0 || res.Stats.Recaptured != 1 {
		t.Fatalf("stats %+v: want only a/f3 cloned again", res.Stats)
	}
	if now, _ := fsutil.Lstat(filepath.Join(dstPath, "a/f1")); now.Ino != first.Ino {
		t.Fatal("an unchanged clone was made again")
	}
}
