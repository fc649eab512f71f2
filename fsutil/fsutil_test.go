package fsutil

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestValidRelPath(t *testing.T) {
	for _, c := range []struct {
		p  string
		ok bool
	}{
		{"a", true}, {"a/b/c", true}, {"a b/ü", true}, {"..a", true}, {"a..", true},
		{"", false}, {"/a", false}, {".", false}, {"..", false}, {"../a", false}, {"a/../b", false},
		{"a/..", false}, {"a//b", false}, {"a/./b", false}, {"a/", false}, {"a\x00b", false},
	} {
		if err := ValidRelPath(c.p); (err == nil) != c.ok {
			t.Errorf("ValidRelPath(%q) = %v, want ok=%v", c.p, err, c.ok)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		root, p string
		ok      bool
	}{{"/a", "/a", true}, {"/a", "/a/b", true}, {"/a", "/ab", false}, {"/a/b", "/a", false}, {"/", "/x", true}} {
		if Within(c.root, c.p) != c.ok {
			t.Errorf("Within(%q, %q) != %v", c.root, c.p, c.ok)
		}
	}
}

// TestCleanRel: the fast check agrees with path.Clean on every relative
// path over a small alphabet, up to six bytes (and, stricter, refuses a
// ".." component, which Clean keeps at the front).
func TestCleanRel(t *testing.T) {
	alphabet := []byte{'a', '.', '/'}
	var walk func(p []byte)
	walk = func(p []byte) {
		if len(p) > 0 && p[0] != '/' {
			s := string(p)
			dotdot := slices.Contains(strings.Split(s, "/"), "..")
			if got, want := cleanRel(s), path.Clean(s) == s && s != "." && !dotdot; got != want {
				t.Fatalf("cleanRel(%q) = %v, path.Clean says %v", s, got, want)
			}
		}
		if len(p) == 6 {
			return
		}
		for _, c := range alphabet {
			walk(append(p, c))
		}
	}
	walk(nil)
}

// TestWriteback: a kick starts one syncfs at a time in the background, a
// kick while one runs starts none, and Wait returns once none runs (the
// caller may then close the directory): run under -race.
func TestWriteback(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriteback(d)
	w.Wait() // none started: returns at once
	for i := range 50 {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		w.Kick()
	}
	w.Wait()
	w.mu.Lock()
	busy := w.busy
	w.mu.Unlock()
	if busy {
		t.Fatal("a syncfs still runs after Wait")
	}
	w.Kick()
	w.Wait()
	d.Close()
}
