package tree

import (
	"fmt"
	"path"
	"strings"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/manifest"
)

// Selector picks the entries of a manifest, read in path order, that a
// partial restore or download brings back: those that match a pattern
// (the --copy rules: a pattern without '/' matches a name at any depth, one
// with '/' the whole path; path.Match syntax), everything below a matching
// directory, and, so the selected entries have somewhere to be, the
// directories above them. No patterns select everything. Memory is one
// directory entry per level of depth.
type Selector struct {
	patterns []string
	stack    []manifest.Entry // the directories above the current entry
	made     map[string]bool
	inMatch  string // a selected directory: its subtree is selected
}

// NewSelector checks the patterns.
func NewSelector(patterns []string) (*Selector, error) {
	for _, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("%w: empty --include pattern", errs.ErrInvalid)
		}
		if _, err := path.Match(strings.TrimPrefix(p, "/"), ""); err != nil {
			return nil, fmt.Errorf("%w: bad --include pattern %q: %v", errs.ErrInvalid, p, err)
		}
	}
	return &Selector{patterns: patterns, made: map[string]bool{}}, nil
}

// MatchAny reports whether rel (a slash path relative to the data dir)
// matches one of the patterns: a pattern without '/' matches the entry's
// name at any depth ("*.log", "CURRENT"), one with '/' the whole path
// ("db/MANIFEST-*"); path.Match syntax, '*' does not cross '/'. It is the
// rule of --copy, --exclude and --include.
func MatchAny(patterns []string, rel string) bool {
	for _, p := range patterns {
		if strings.Contains(p, "/") {
			if ok, _ := path.Match(strings.TrimPrefix(p, "/"), rel); ok {
				return true
			}
		} else if ok, _ := path.Match(p, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

func (s *Selector) match(rel string) bool { return MatchAny(s.patterns, rel) }

// Next takes the next entry in path order. When it is selected, Next
// returns true and, first, the directories above it not yet returned
// (to be made before it, in order).
func (s *Selector) Next(e *manifest.Entry) (parents []manifest.Entry, selected bool) {
	p := string(e.Path)
	for len(s.stack) > 0 && !strings.HasPrefix(p, string(s.stack[len(s.stack)-1].Path)+"/") {
		s.stack = s.stack[:len(s.stack)-1]
	}
	if s.inMatch != "" && !strings.HasPrefix(p, s.inMatch+"/") {
		s.inMatch = ""
	}
	selected = len(s.patterns) == 0 || s.inMatch != "" || s.match(p)
	if selected {
		for _, d := range s.stack {
			if !s.made[string(d.Path)] {
				s.made[string(d.Path)] = true
				parents = append(parents, d)
			}
		}
	}
	if e.Type == manifest.TypeDir {
		s.stack = append(s.stack, *e)
		if selected {
			s.made[p] = true
			if s.inMatch == "" {
				s.inMatch = p
			}
		}
	}
	return parents, selected
}
