package hardlink

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
)

// dirs opens src and makes an empty dst for Build.
func dirs(t *testing.T, src string) (*fsutil.Dir, *fsutil.Dir, string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := fsutil.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := fsutil.OpenDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); d.Close() })
	return s, d, dst
}

func TestBuild_Fixture(t *testing.T) {
	src := testtree.New(t)
	syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644)
	sd, dd, dst := dirs(t, src)
	res, err := Build(context.Background(), sd, dd, Options{
		Copy: func(rel string) bool {
			return strings.HasSuffix(rel, "000002.sst") || strings.HasSuffix(rel, "hardlink-of-sst")
		},
		Skip: func(rel string, isDir bool) bool { return rel == "private" },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Item{}
	for i, it := range res.Items {
		if i > 0 && res.Items[i-1].Rel >= it.Rel {
			t.Fatal("items not sorted")
		}
		got[it.Rel] = it
	}
	if _, ok := got["private"]; ok {
		t.Fatal("skipped dir captured")
	}
	if _, ok := got["private/secret"]; ok {
		t.Fatal("entry under a skipped dir captured")
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Rel != "fifo" {
		t.Fatalf("warnings: %+v", res.Warnings)
	}
	srcIno := func(rel string) uint64 {
		st, _ := fsutil.Lstat(filepath.Join(src, rel))
		return st.Ino
	}
	if it := got["db/000001.sst"]; it.Capture != CaptureLink || it.Ino != srcIno("db/000001.sst") || it.SrcNlink != 1 {
		t.Fatalf("linked file: %+v", it)
	}
	// The two names of one inode, both copied, share one private copy.
	a, b := got["db/000002.sst"], got["db/hardlink-of-sst"]
	if a.Capture != CaptureCopy || a.Ino != b.Ino || a.Ino == srcIno("db/000002.sst") || a.SrcNlink != 2 {
		t.Fatalf("copied link group: %+v %+v", a, b)
	}
	if it := got["dangling"]; it.Target != "does/not/exist" {
		t.Fatalf("symlink: %+v", it)
	}
	// Modes come later (the caller's FinishDirs): the read-only dir is
	// still writable now, and its captured mode is recorded.
	fi, _ := os.Stat(filepath.Join(dst, "readonly-dir"))
	if fi.Mode().Perm() != 0o700 || got["readonly-dir"].Perm() != 0o555 {
		t.Fatalf("readonly-dir mode %v, recorded %o", fi.Mode(), got["readonly-dir"].Perm())
	}
}

func TestBuild_BadInput(t *testing.T) {
	src := testtree.New(t)
	sd, dd, dst := dirs(t, src)
	if _, err := Build(context.Background(), sd, dd, Options{LinkMode: "teleport"}); err == nil {
		t.Fatal("unknown link mode accepted")
	}
	os.WriteFile(filepath.Join(dst, "x"), nil, 0o600)
	if _, err := Build(context.Background(), sd, dd, Options{}); err == nil {
		t.Fatal("a destination that is not empty accepted")
	}
	// reflink on ext4/tmpfs fails clearly; auto falls back to links.
	sd, dd, _ = dirs(t, src)
	if _, err := Build(context.Background(), sd, dd, Options{LinkMode: LinkModeReflink}); err == nil {
		t.Log("this filesystem supports reflinks")
	} else if !strings.Contains(err.Error(), "link-mode") {
		t.Fatalf("reflink failure must suggest another link mode: %v", err)
	}
	sd, dd, _ = dirs(t, src)
	res, err := Build(context.Background(), sd, dd, Options{LinkMode: LinkModeAuto})
	if err != nil || len(res.Items) == 0 {
		t.Fatalf("auto mode: %v", err)
	}
}

// TestBuild_ForeignLinks: where the kernel lets users hard-link files they
// cannot read, a link in the data dir to another owner's file is left out
// unopened: the outside inode is neither read nor linked (its link count
// and ctime stay).
func TestBuild_ForeignLinks(t *testing.T) {
	testuser.RequireRoot(t) // another owner's file needs chown
	src := testtree.New(t)
	victim := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(victim, []byte("secret"), 0o600)
	if err := os.Link(victim, filepath.Join(src, "planted")); err != nil {
		t.Fatal(err)
	}
	os.Lchown(filepath.Join(src, "planted"), testuser.UID, testuser.GID) // another owner than the tree's
	before, _ := fsutil.Lstat(victim)
	owner := uint32(os.Geteuid())
	for _, copyAll := range []bool{false, true} {
		sd, dd, _ := dirs(t, src)
		res, err := Build(context.Background(), sd, dd, Options{ForeignLinksOf: &owner, Copy: func(string) bool { return copyAll }})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range res.Items {
			if it.Rel == "planted" {
				t.Fatalf("a foreign hard link was captured (copy=%v)", copyAll)
			}
		}
		if len(res.Warnings) != 1 || res.Warnings[0].Rel != "planted" {
			t.Fatalf("warnings: %+v", res.Warnings)
		}
	}
	after, _ := fsutil.Lstat(victim)
	if after.Nlink != before.Nlink || after.CtimeNs != before.CtimeNs {
		t.Fatalf("the outside inode was touched: %+v -> %+v", before, after)
	}
}
