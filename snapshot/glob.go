package snapshot

import (
	"fmt"
	"path"
	"strings"

	"github.com/hotsnap/hotsnap/fstree"
)

// globSet matches slash paths relative to the data dir. A pattern without
// '/' matches an entry's name at any depth ("*.log", "CURRENT"); a pattern
// with '/' matches the whole relative path ("db/MANIFEST-*"). Patterns use
// path.Match syntax (*, ?, [...]); '*' does not cross '/'.
type globSet []string

func newGlobSet(what string, patterns []string) (globSet, error) {
	for _, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("%w: empty %s pattern", ErrInvalid, what)
		}
		if _, err := path.Match(strings.TrimPrefix(p, "/"), ""); err != nil {
			return nil, fmt.Errorf("%w: bad %s pattern %q: %v", ErrInvalid, what, p, err)
		}
	}
	return globSet(patterns), nil
}

func (g globSet) match(rel string) bool { return fstree.MatchAny(g, rel) }
