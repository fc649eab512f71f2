package fstree

import (
	"reflect"
	"testing"

	"github.com/hotsnap/hotsnap/manifest"
)

// TestSelector_PathOrder walks entries in the manifest's byte order, where
// a sibling such as "a-b" comes between the directory "a" and its
// children: a selected "a" must still bring "a/c", with "a" as its parent
// only once, and the tops are the entries a partial restore swaps whole.
func TestSelector_PathOrder(t *testing.T) {
	entries := []manifest.Entry{
		{Path: "a", Type: manifest.TypeDir},
		{Path: "a-b", Type: manifest.TypeDir},
		{Path: "a-b/x.log", Type: manifest.TypeFile},
		{Path: "a.txt", Type: manifest.TypeFile},
		{Path: "a/c", Type: manifest.TypeFile},
		{Path: "a/d", Type: manifest.TypeDir},
		{Path: "a/d/e.log", Type: manifest.TypeFile},
		{Path: "b", Type: manifest.TypeDir},
		{Path: "b/c", Type: manifest.TypeDir},
		{Path: "b/c-d", Type: manifest.TypeFile},
		{Path: "b/c/deep.log", Type: manifest.TypeFile},
		{Path: "b/z", Type: manifest.TypeFile},
	}
	type got struct {
		path    string
		parents []string
		top     bool
	}
	run := func(patterns ...string) []got {
		s, err := NewSelector(patterns)
		if err != nil {
			t.Fatal(err)
		}
		var out []got
		for i := range entries {
			parents, ok := s.Next(&entries[i])
			if !ok {
				if len(parents) > 0 {
					t.Fatalf("%s: parents %v for an entry not selected", entries[i].Path, parents)
				}
				continue
			}
			g := got{path: string(entries[i].Path), top: s.Top()}
			for _, p := range parents {
				g.parents = append(g.parents, string(p.Path))
			}
			out = append(out, g)
		}
		return out
	}
	for _, tc := range []struct {
		patterns []string
		want     []got
	}{
		{[]string{"a"}, []got{{"a", nil, true}, {"a/c", nil, false}, {"a/d", nil, false}, {"a/d/e.log", nil, false}}},
		{[]string{"*.log"}, []got{{"a-b/x.log", []string{"a-b"}, true}, {"a/d/e.log", []string{"a", "a/d"}, true}, {"b/c/deep.log", []string{"b", "b/c"}, true}}},
		{[]string{"b/c"}, []got{{"b/c", []string{"b"}, true}, {"b/c/deep.log", nil, false}}},
		{[]string{"a*"}, []got{{"a", nil, true}, {"a-b", nil, true}, {"a-b/x.log", nil, false}, {"a.txt", nil, true}, {"a/c", nil, false}, {"a/d", nil, false}, {"a/d/e.log", nil, false}}},
		{[]string{"a/d/e.log", "b/z"}, []got{{"a/d/e.log", []string{"a", "a/d"}, true}, {"b/z", []string{"b"}, true}}},
	} {
		if g := run(tc.patterns...); !reflect.DeepEqual(g, tc.want) {
			t.Errorf("%v:\n got  %v\n want %v", tc.patterns, g, tc.want)
		}
	}
	if g := run(); len(g) != len(entries) || !g[0].top || g[4].top {
		t.Errorf("no patterns: %v", g)
	}
}
