package fsutil

import (
	"path"
	"slices"
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
