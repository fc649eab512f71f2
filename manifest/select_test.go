package manifest

import (
	"io"
	"testing"
)

func TestSelect(t *testing.T) {
	entries := []*Entry{{Path: "a"}, {Path: "a/b"}, {Path: "ab"}, {Path: "c/d"}}
	walk := func(s *Selection) []string {
		i := 0
		var got []string
		n, err := s.Walk(func() (*Entry, error) {
			if i == len(entries) {
				return nil, io.EOF
			}
			i++
			return entries[i-1], nil
		}, func(e *Entry) { got = append(got, string(e.Path)) })
		if err != nil || n != len(got) {
			t.Fatalf("walk: %d, %v", n, err)
		}
		return got
	}
	if got := walk(Select(nil)); len(got) != 4 {
		t.Fatalf("no paths selects all, got %v", got)
	}
	if got := walk(Select([]string{"x", "/"})); len(got) != 4 {
		t.Fatalf("the data dir selects all, got %v", got)
	}
	s := Select([]string{"/a/", "c", "zz"})
	if got := walk(s); len(got) != 3 || got[0] != "a" || got[1] != "a/b" || got[2] != "c/d" {
		t.Fatalf("a and c: got %v (ab is not below a)", got)
	}
	// c has entries below it but is no entry itself; zz is nothing.
	if p, ok := s.Unmet(); !ok || p != "c" {
		t.Fatalf("unmet: %q %v", p, ok)
	}
	if RelPath("a/./b/") != "a/b" || RelPath("/../x") != "x" || RelPath("/") != "" {
		t.Fatal("RelPath")
	}
}
