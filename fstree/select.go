package fstree

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
// directories above them. No patterns select everything.
//
// Path order is byte order of whole paths, so a directory's subtree does
// not always follow it at once: "a", "a-b", "a/c" is in order ('-' sorts
// before '/'). A directory stays on the stack until the entries can no
// longer be below it; memory is one frame per pending directory, at most a
// few per level of depth.
type Selector struct {
	patterns []string
	stack    []frame
	top      bool
}

// frame is a directory whose subtree may still come.
type frame struct {
	e        manifest.Entry
	selected bool // its subtree is selected
	made     bool // returned as a parent or selected itself
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
	return &Selector{patterns: patterns}, nil
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
	// Drop the directories whose subtrees are behind: p sorts after every
	// path below them.
	for n := len(s.stack); n > 0; n = len(s.stack) {
		d := string(s.stack[n-1].e.Path) + "/"
		if strings.HasPrefix(p, d) || p < d {
			break
		}
		s.stack = s.stack[:n-1]
	}
	underSelected := false
	for i := range s.stack {
		if strings.HasPrefix(p, string(s.stack[i].e.Path)+"/") && s.stack[i].selected {
			underSelected = true
		}
	}
	selected = len(s.patterns) == 0 || underSelected || s.match(p)
	s.top = selected && !underSelected
	if selected {
		for i := range s.stack {
			f := &s.stack[i]
			if !f.made && strings.HasPrefix(p, string(f.e.Path)+"/") {
				f.made = true
				parents = append(parents, f.e)
			}
		}
	}
	if e.Type == manifest.TypeDir {
		s.stack = append(s.stack, frame{e: *e, selected: selected, made: selected})
	}
	return parents, selected
}

// Top reports whether the entry Next last selected is the top of what is
// selected there: not below a selected directory. A partial restore swaps
// each top in whole.
func (s *Selector) Top() bool { return s.top }
