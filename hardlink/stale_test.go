package hardlink

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// TestBatch_StaleListing: a file its directory's listing called regular is
// linked without a stat first; whatever stands at the name by the time of
// the link decides what is captured, exactly as the stat-first way
// captures it. Every name is listed as a regular file here, as if each had
// been one when listed and was swapped (for a dir, a symlink, a fifo, a
// file left out by Skip or Copy) or removed before it was reached.
func TestBatch_StaleListing(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "file"), []byte("bytes"), 0o640)
	os.WriteFile(filepath.Join(src, "copied"), []byte("copy me"), 0o600)
	os.WriteFile(filepath.Join(src, "skipped"), []byte("leave me"), 0o600)
	os.Mkdir(filepath.Join(src, "dir"), 0o750)
	os.WriteFile(filepath.Join(src, "dir", "inner"), []byte("inner"), 0o600)
	os.Symlink("file", filepath.Join(src, "sym"))
	os.Symlink("/etc/passwd", filepath.Join(src, "outside"))
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"copied", "dir", "fifo", "file", "gone", "outside", "skipped", "sym"}
	opts := Options{
		Skip: func(rel string, isDir bool) bool { return rel == "skipped" },
		Copy: func(rel string) bool { return rel == "copied" },
	}
	capture := func(types []uint32) ([]Item, []Warning, map[string]testtree.Entry) {
		t.Helper()
		sd, dd, dst := dirs(t, src)
		o, err := checkOptions(opts)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := sd.Stat()
		b := &builder{ctx: context.Background(), src: sd, dst: dd, dev: st.Dev, opts: o,
			sem: make(chan struct{}, 2), copies: map[inodeKey]*copyOnce{}}
		if !b.linkOnly() {
			t.Fatal("a link-mode build without copies by inode takes the long way")
		}
		pair, _, _, _, err := b.openPair("", false)
		if err != nil {
			t.Fatal(err)
		}
		err = b.batch(pair, "", names, types)
		pair.release()
		if err != nil {
			t.Fatal(err)
		}
		items, warnings, err := b.run()
		if err != nil {
			t.Fatal(err)
		}
		return items, warnings, testtree.Snapshot(t, dst)
	}
	stale := make([]uint32, len(names))
	for i := range stale {
		stale[i] = unix.S_IFREG
	}
	items, warnings, tree := capture(stale)
	wantItems, wantWarnings, wantTree := capture(nil)
	rels := func(items []Item) (out []string) {
		for _, it := range items {
			out = append(out, it.Rel+" "+it.Capture+" "+fsutil.Stat{Mode: it.Mode}.TypeName())
		}
		return out
	}
	if !slices.Equal(rels(items), rels(wantItems)) {
		t.Errorf("items from a stale listing %v, from stats %v", rels(items), rels(wantItems))
	}
	for _, it := range items {
		if it.Rel == "file" && (it.Capture != CaptureLink || it.Size != 5 || it.Perm() != 0o640 || it.SrcNlink != 1) {
			t.Errorf("file: %+v", it)
		}
	}
	if !slices.Equal(warnings, wantWarnings) {
		t.Errorf("warnings from a stale listing %v, from stats %v", warnings, wantWarnings)
	}
	if d := testtree.Diff(wantTree, tree); d != "" {
		t.Errorf("trees differ: %s", d)
	}
	// What was captured: the file and the symlinks as themselves, the dir
	// (its contents by its own task), the fifo and the vanished name left
	// out with a word, the copy left for the locked pass (this is not one).
	for _, rel := range []string{"file", "sym", "outside", "dir", "dir/inner", "copied"} {
		if !slices.ContainsFunc(items, func(it Item) bool { return it.Rel == rel }) {
			t.Errorf("%s not captured: %v", rel, rels(items))
		}
	}
	if len(warnings) != 2 {
		t.Errorf("warnings %v, want the fifo's and the vanished name's", warnings)
	}
	if l, err := os.Readlink(filepath.Join(src, "outside")); err != nil || l != "/etc/passwd" {
		t.Fatalf("source changed: %q, %v", l, err)
	}
}
