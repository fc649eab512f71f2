package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// outside makes a tree outside root that no operation beneath root may reach.
func outside(t *testing.T) string {
	t.Helper()
	o := filepath.Join(t.TempDir(), "outside")
	os.MkdirAll(filepath.Join(o, "sub"), 0o755)
	os.WriteFile(filepath.Join(o, "secret"), []byte("secret"), 0o600)
	return o
}

// eachResolver runs fn with openat2 (where the kernel has it) and with the
// per-component fallback.
func eachResolver(t *testing.T, fn func(t *testing.T)) {
	for _, fallback := range []bool{false, true} {
		name := "openat2"
		if fallback {
			name = "per-component"
		}
		t.Run(name, func(t *testing.T) {
			old := forceComponentWalk
			forceComponentWalk = fallback
			defer func() { forceComponentWalk = old }()
			fn(t)
		})
	}
}

func TestDir_NeverFollowsSymlinks(t *testing.T) {
	eachResolver(t, func(t *testing.T) {
		root := t.TempDir()
		out := outside(t)
		os.MkdirAll(filepath.Join(root, "real"), 0o755)
		os.WriteFile(filepath.Join(root, "real", "f"), []byte("in"), 0o644)
		os.Symlink(out, filepath.Join(root, "link"))                           // a dir swapped for a symlink
		os.Symlink(filepath.Join(out, "secret"), filepath.Join(root, "flink")) // a file swapped for one
		d, err := OpenDir(root)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for _, rel := range []string{"link/secret", "link/sub", "flink"} {
			if f, err := d.OpenFile(rel, os.O_RDONLY, 0); err == nil {
				f.Close()
				t.Errorf("OpenFile(%s) followed a symlink", rel)
			} else if !errors.Is(err, ErrSymlink) {
				t.Errorf("OpenFile(%s): %v, want ErrSymlink", rel, err)
			}
		}
		if _, err := d.OpenDir("link"); !errors.Is(err, ErrSymlink) {
			t.Errorf("OpenDir(link): %v, want ErrSymlink", err)
		}
		if _, err := d.OpenDir("link/sub"); err == nil {
			t.Error("OpenDir went through a symlink")
		}
		if err := d.Mkdir("link/new", 0o755); err == nil {
			t.Error("Mkdir went through a symlink")
		}
		if f, err := d.Create("link/new-file", 0o644); err == nil {
			f.Close()
			t.Error("Create went through a symlink")
		}
		if err := d.Rename("real/f", d, "link/f", true); err == nil {
			t.Error("Rename went through a symlink")
		}
		if _, _, err := d.OpenRegular("flink"); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenRegular(flink): %v, want ErrNotRegular", err)
		}
		for _, bad := range []string{"../x", "/etc/passwd", "real/../../x", ""} {
			if _, err := d.OpenFile(bad, os.O_RDONLY, 0); err == nil {
				t.Errorf("OpenFile(%q) accepted", bad)
			}
		}
		if f, err := d.OpenFile("real/f", os.O_RDONLY, 0); err != nil {
			t.Errorf("a plain path failed: %v", err)
		} else {
			f.Close()
		}
		if ents, _ := os.ReadDir(out); len(ents) != 2 {
			t.Fatalf("the outside tree changed: %v", ents)
		}
	})
}

func TestDir_OpenRegularRefusesOthers(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "any", true: "own"}[own], func(t *testing.T) { testOpenRegular(t, own) })
	}
}

// testOpenRegular: below any dir (O_PATH open, check, reopen) and below an
// Own dir (one non-blocking open, then the check) alike, only a regular
// file opens; a fifo never blocks, a symlink is never followed.
func testOpenRegular(t *testing.T, own bool) {
	root := t.TempDir()
	syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644)
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644)
	os.Symlink("file", filepath.Join(root, "link"))
	d, _ := OpenDir(root)
	defer d.Close()
	if own {
		d.Own()
	}
	if _, _, err := d.OpenRegular("link"); !errors.Is(err, ErrSymlink) && !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenRegular(link): %v", err)
	}
	// A fifo would block an open for reading: it must be refused unopened.
	for _, rel := range []string{"fifo", "dir"} {
		if _, _, err := d.OpenRegular(rel); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenRegular(%s): %v", rel, err)
		}
	}
	if os.Geteuid() == 0 {
		// A device node (a hard link to one is what an attacker could plant).
		if err := unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
			if _, _, err := d.OpenRegular("null"); !errors.Is(err, ErrNotRegular) {
				t.Errorf("OpenRegular(device): %v", err)
			}
		}
	}
	f, st, err := d.OpenRegular("file")
	if err != nil || st.Size != 1 {
		t.Fatalf("%v %+v", err, st)
	}
	f.Close()
}

func TestDir_RemoveAllStaysInside(t *testing.T) {
	eachResolver(t, func(t *testing.T) {
		root := t.TempDir()
		out := outside(t)
		tree := filepath.Join(root, "tree")
		os.MkdirAll(filepath.Join(tree, "a", "b"), 0o755)
		os.WriteFile(filepath.Join(tree, "a", "b", "f"), []byte("x"), 0o644)
		os.Symlink(out, filepath.Join(tree, "a", "escape"))
		os.Chmod(filepath.Join(tree, "a", "b"), 0o500) // as a captured read-only dir
		os.Chmod(filepath.Join(tree, "a"), 0o500)
		d, _ := OpenDir(root)
		defer d.Close()
		if err := d.RemoveAll("tree"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(tree); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("tree not removed")
		}
		if _, err := os.Stat(filepath.Join(out, "secret")); err != nil {
			t.Fatal("RemoveAll followed a symlink out of the tree")
		}
		if st, _ := os.Stat(out); st.Mode().Perm() != 0o755 {
			t.Fatalf("RemoveAll chmodded outside: %v", st.Mode())
		}
		if err := d.RemoveAll("missing"); err != nil {
			t.Fatalf("a missing tree: %v", err)
		}
	})
}

func TestDir_WalkNeverLeaves(t *testing.T) {
	root := t.TempDir()
	out := outside(t)
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "b", "f"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "a.txt"), nil, 0o644) // between "a" and "a/b" in byte order
	os.Symlink(out, filepath.Join(root, "a", "link"))
	d, _ := OpenDir(root)
	defer d.Close()
	var got []string
	err := d.Walk(context.Background(), func(rel string, st Stat) error {
		got = append(got, rel+":"+st.TypeName())
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "a:dir a.txt:file a/b:dir a/b/f:file a/link:symlink"
	if strings.Join(got, " ") != want {
		t.Fatalf("walk: %v, want %s", got, want)
	}
}

func TestDir_WriteFileAtomicAndLinkFile(t *testing.T) {
	root := t.TempDir()
	d, _ := OpenDir(root)
	defer d.Close()
	if err := d.WriteFileAtomic("j", []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFileAtomic("j", []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "j")); string(b) != "two" {
		t.Fatalf("%q", b)
	}
	names, _ := d.Names(".")
	if len(names) != 1 {
		t.Fatalf("temp files left: %v", names)
	}
	// A symlink where the file goes is replaced by the rename, never written through.
	out := outside(t)
	os.Symlink(filepath.Join(out, "secret"), filepath.Join(root, "s"))
	if err := d.WriteFileAtomic("s", []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "secret")); string(b) != "secret" {
		t.Fatal("WriteFileAtomic wrote through a symlink")
	}
	// LinkFile links the inode that was opened, whatever the name became.
	f, _, err := d.OpenRegular("j")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Rename(filepath.Join(root, "j"), filepath.Join(root, "moved"))
	os.WriteFile(filepath.Join(root, "j"), []byte("impostor"), 0o600)
	if err := LinkFile(f, d, "linked"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "linked")); string(b) != "two" {
		t.Fatalf("LinkFile linked %q", b)
	}
}

func TestSetOwnerMode_SetuidSurvivesOrGoes(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	os.WriteFile(p, nil, 0o600)
	f, _ := os.Open(p)
	defer f.Close()
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if err := SetOwnerMode(int(f.Fd()), uid, gid, 0o4755); err != nil {
		t.Fatal(err)
	}
	st, _ := Lstat(p)
	if st.Perm() != 0o4755 {
		t.Fatalf("chown before chmod must keep setuid: %o", st.Perm())
	}
	if os.Geteuid() != 0 {
		// Another owner cannot be given: the setuid bit must go.
		SetOwnerMode(int(f.Fd()), 0, 0, 0o4755)
		if st, _ := Lstat(p); st.Perm()&0o6000 != 0 {
			t.Fatalf("setuid kept for an owner that could not be set: %o", st.Perm())
		}
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	os.WriteFile(p, []byte("k"), 0o600)
	if b, err := ReadSecretFile(p, "key file"); err != nil || string(b) != "k" {
		t.Fatalf("%q %v", b, err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		os.Chmod(p, mode)
		if _, err := ReadSecretFile(p, "key file"); !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %o: %v", mode, err)
		}
	}
	if err := WriteSecretFile(p, []byte("x")); err == nil {
		t.Fatal("WriteSecretFile overwrote a file")
	}
	q := filepath.Join(dir, "new")
	if err := WriteSecretFile(q, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st, _ := Lstat(q); st.Perm() != 0o600 {
		t.Fatalf("mode %o", st.Perm())
	}
}

// TestDir_WalkEntries: the walk without a stat of every entry visits what
// Walk visits, in its order, with the listing's inode and type, reads
// listings longer than one getdents buffer, and stats an entry only when
// asked, at that moment (one removed after the listing is an ENOENT then).
func TestDir_WalkEntries(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "b", "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "a.txt"), nil, 0o644)
	os.Symlink("a.txt", filepath.Join(root, "a", "link"))
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 200)
	for i := range 600 { // about 130 KiB of listing: several reads
		os.WriteFile(filepath.Join(root, "a", "b", fmt.Sprintf("%s%04d", long, i)), nil, 0o644)
	}
	d, _ := OpenDir(root)
	defer d.Close()
	ctx := context.Background()
	var want []string
	stats := map[string]Stat{}
	if err := d.Walk(ctx, func(rel string, st Stat) error {
		want = append(want, rel)
		stats[rel] = st
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := d.WalkEntries(ctx, func(rel string, e *Entry) error {
		got = append(got, rel)
		st := stats[rel]
		if e.Ino != st.Ino || e.TypeName() != st.TypeName() || e.DirDev != st.Dev || e.IsDir() != st.IsDir() || e.IsRegular() != st.IsRegular() {
			t.Errorf("%s: entry ino %d type %s dev %d, lstat ino %d type %s dev %d", rel, e.Ino, e.TypeName(), e.DirDev, st.Ino, st.TypeName(), st.Dev)
		}
		if s, err := e.Stat(); err != nil || s != st {
			t.Errorf("%s: Stat %+v, %v; Walk's %+v", rel, s, err, st)
		}
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if len(want) != 606 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("WalkEntries visited %d entries, Walk %d:\n%v\n%v", len(got), len(want), got[:5], want[:5])
	}

	// Lazy: the stat is made when asked, and sees the entry as it is then.
	var visited []string
	err := d.WalkEntries(ctx, func(rel string, e *Entry) error {
		visited = append(visited, rel)
		if rel == "a.txt" {
			os.Remove(filepath.Join(root, "fifo"))
		}
		if rel == "fifo" {
			if e.Ino != stats["fifo"].Ino {
				t.Errorf("fifo: listed ino %d, want %d", e.Ino, stats["fifo"].Ino)
			}
			if _, err := e.Stat(); !errors.Is(err, unix.ENOENT) || IgnoreVanished(rel, err) != nil {
				t.Errorf("a vanished entry's Stat: %v", err)
			}
		}
		return nil
	}, nil)
	if err != nil || !slices.Contains(visited, "fifo") {
		t.Fatalf("walk: %v, visited %d", err, len(visited))
	}
	// Walk passes a vanished entry to onErr once and goes on.
	os.WriteFile(filepath.Join(root, "fifo"), nil, 0o644)
	var errs, after []string
	err = d.Walk(ctx, func(rel string, st Stat) error {
		if rel == "a.txt" {
			os.Remove(filepath.Join(root, "fifo"))
		}
		if rel > "fifo" {
			after = append(after, rel)
		}
		return nil
	}, func(rel string, err error) error {
		errs = append(errs, rel)
		return IgnoreVanished(rel, err)
	})
	if err != nil || strings.Join(errs, " ") != "fifo" {
		t.Fatalf("walk: %v, errors for %v", err, errs)
	}
}
