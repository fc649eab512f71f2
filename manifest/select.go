package manifest

import (
	"io"
	"path"
	"strings"
)

// RelPath is a path argument as a clean path relative to the data dir:
// "a/b" for "/a/b", "a/./b" or "a/b/"; "" for the data dir itself.
func RelPath(arg string) string { return path.Clean("/" + arg)[1:] }

// Selection picks entries by path (ls PATH...): those at or below one of
// its paths, every entry when it has none. It remembers which of its
// paths it met as an entry, so that a path no entry is can be reported.
type Selection struct {
	paths []string
	seen  []bool
}

// Select is the selection of the path arguments args (RelPath each);
// one of them naming the data dir selects everything.
func Select(args []string) *Selection {
	s := &Selection{}
	for _, a := range args {
		p := RelPath(a)
		if p == "" {
			return &Selection{}
		}
		s.paths = append(s.paths, p)
	}
	s.seen = make([]bool, len(s.paths))
	return s
}

// Has reports whether the entry at p is selected.
func (s *Selection) Has(p string) bool {
	if len(s.paths) == 0 {
		return true
	}
	for i, q := range s.paths {
		if p == q || strings.HasPrefix(p, q+"/") {
			if p == q {
				s.seen[i] = true
			}
			return true
		}
	}
	return false
}

// Unmet is the first selected path no entry given to Has was, and
// whether there is one.
func (s *Selection) Unmet() (string, bool) {
	for i, ok := range s.seen {
		if !ok {
			return s.paths[i], true
		}
	}
	return "", false
}

// Walk calls fn with every entry next yields that s selects, until next
// returns io.EOF, and returns how many it selected.
func (s *Selection) Walk(next func() (*Entry, error), fn func(*Entry)) (int, error) {
	n := 0
	for {
		e, err := next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if s.Has(string(e.Path)) {
			n++
			fn(e)
		}
	}
}
