// Package testtree builds the fixture data dirs the tests share: nested
// dirs, relative and dangling symlinks, hard links inside the tree, empty
// files, a 0700 dir, names with spaces and UTF-8.
package testtree

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
)

// Fixture is the standard sample tree, described as Go values.
var Fixture = []Node{
	{Path: "a.txt", Data: []byte("hello\n")},
	{Path: "empty", Data: []byte{}},
	{Path: "with space ü.txt", Data: []byte("unicode name\n")},
	{Path: "db", Dir: true},
	{Path: "db/000001.sst", Random: 300_000},
	{Path: "db/000002.sst", Random: 40_000},
	{Path: "db/CURRENT", Data: []byte("MANIFEST-000001\n")},
	{Path: "db/MANIFEST-000001", Random: 1_000},
	{Path: "db/nested", Dir: true},
	{Path: "db/nested/deeper", Dir: true},
	{Path: "db/nested/deeper/leaf.log", Data: []byte("log line\n")},
	{Path: "db/hardlink-of-sst", HardlinkOf: "db/000002.sst"},
	{Path: "private", Dir: true, Mode: 0o700},
	{Path: "private/secret", Data: []byte("s3cret\n"), Mode: 0o600},
	{Path: "link-rel", Symlink: "db/CURRENT"},
	{Path: "db/nested/link-up", Symlink: "../../a.txt"},
	{Path: "dangling", Symlink: "does/not/exist"},
	{Path: "abs-link", Symlink: "/etc/hostname"},
	{Path: "readonly-dir", Dir: true, Mode: 0o555},
}

// Node is one entry of a fixture.
type Node struct {
	Path       string
	Dir        bool
	Data       []byte
	Random     int // bytes of random content
	Symlink    string
	HardlinkOf string
	Mode       os.FileMode // 0: 0644 files, 0755 dirs
}

// Build creates nodes under root (which must exist). Dirs get their mode
// after everything is created, so read-only dirs can still be filled.
func Build(t testing.TB, root string, nodes []Node) {
	t.Helper()
	var dirModes []Node
	for _, n := range nodes {
		p := filepath.Join(root, filepath.FromSlash(n.Path))
		var err error
		switch {
		case n.Dir:
			err = os.MkdirAll(p, 0o755)
			if n.Mode != 0 {
				dirModes = append(dirModes, n)
			}
		case n.Symlink != "":
			err = os.Symlink(n.Symlink, p)
		case n.HardlinkOf != "":
			err = os.Link(filepath.Join(root, filepath.FromSlash(n.HardlinkOf)), p)
		default:
			data := n.Data
			if n.Random > 0 {
				data = make([]byte, n.Random)
				rand.Read(data)
			}
			mode := n.Mode
			if mode == 0 {
				mode = 0o644
			}
			err = os.WriteFile(p, data, mode)
			if err == nil {
				err = os.Chmod(p, mode)
			}
		}
		if err != nil {
			t.Fatalf("build fixture %s: %v", n.Path, err)
		}
	}
	for i := len(dirModes) - 1; i >= 0; i-- {
		if err := os.Chmod(filepath.Join(root, dirModes[i].Path), dirModes[i].Mode); err != nil {
			t.Fatal(err)
		}
	}
}

// New makes a fresh data dir holding the standard fixture.
func New(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	Build(t, root, Fixture)
	return root
}

// Entry is what Snapshot records of one entry.
type Entry struct {
	Mode    os.FileMode
	Data    []byte // files
	Target  string // symlinks
	MtimeNs int64  // files
	Ino     uint64
}

// Snapshot reads a tree into a map from slash path to entry, skipping the
// top-level names in skip. Use it to compare two trees exactly.
func Snapshot(t testing.TB, root string, skip ...string) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	skipSet := map[string]bool{}
	for _, s := range skip {
		skipSet[s] = true
	}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if skipSet[rel] {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		e := Entry{Mode: fi.Mode()}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			e.Target, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			e.Data, err = os.ReadFile(p)
			e.MtimeNs = fi.ModTime().UnixNano()
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Replace is old with the entries at and below each of tops replaced by
// those of from: what a partial restore of tops makes of old.
func Replace(old, from map[string]Entry, tops ...string) map[string]Entry {
	under := func(p string) bool {
		for _, t := range tops {
			if p == t || strings.HasPrefix(p, t+"/") {
				return true
			}
		}
		return false
	}
	out := map[string]Entry{}
	for p, e := range old {
		if !under(p) {
			out[p] = e
		}
	}
	for p, e := range from {
		if under(p) {
			out[p] = e
		}
	}
	return out
}

// Diff describes how two Snapshot maps differ ("" when equal).
func Diff(a, b map[string]Entry) string {
	var out bytes.Buffer
	for p, ea := range a {
		eb, ok := b[p]
		switch {
		case !ok:
			out.WriteString("only in first: " + p + "\n")
		case ea.Mode != eb.Mode:
			out.WriteString("mode differs: " + p + " " + ea.Mode.String() + " vs " + eb.Mode.String() + "\n")
		case !bytes.Equal(ea.Data, eb.Data):
			out.WriteString("content differs: " + p + "\n")
		case ea.Target != eb.Target:
			out.WriteString("target differs: " + p + "\n")
		case ea.MtimeNs != eb.MtimeNs:
			out.WriteString("mtime differs: " + p + "\n")
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out.WriteString("only in second: " + p + "\n")
		}
	}
	return out.String()
}

// Settle waits until the kernel's ctime clock is past the newest ctime
// under root, so that a ctime floor read after it (fsutil.CtimeFloor) is
// above every change made so far: a capture's first pass begun after it
// finds every entry unchanged, and a locked pass ended after it knows that
// nothing changed since. It waits on the clock; nothing is asserted about
// how long that takes.
func Settle(t testing.TB, root string) {
	t.Helper()
	var newest int64
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if st, err := fsutil.Lstat(p); err == nil {
			newest = max(newest, st.CtimeNs)
		}
		return nil
	})
	probe := filepath.Join(filepath.Dir(root), ".settle")
	for range 5000 {
		os.WriteFile(probe, nil, 0o600)
		st, err := fsutil.Lstat(probe)
		os.Remove(probe)
		if err == nil && st.CtimeNs > newest {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the ctime clock did not move in 5 s")
}
