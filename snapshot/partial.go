package snapshot

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/manifest"
)

// A partial restore (restore --include without --target) puts back only
// the entries the patterns select, with the same proof, lock and journaled
// swap as a whole restore (docs/DESIGN.md, Partial restore). Its unit is a
// top: a selected entry not below a selected directory. Each top replaces
// the live entry at its path whole (a directory with its subtree); live
// entries the snapshot does not hold are left alone outside the tops.

// partialMarker names a partial restore's failsafe (after its time), which
// holds only the entries it replaced: Revert refuses it.
const partialMarker = "_partial"

// selection is what the patterns pick in a snapshot: its tops, and the
// directories above them.
type selection struct {
	tops  map[string]bool
	above map[string]bool
	list  []string // the tops in path order
	files int64
	bytes int64
}

// selectTops reads the manifest once through a Selector.
func selectTops(ctx context.Context, mf *ManifestFile, include []string) (*selection, error) {
	sel, err := fstree.NewSelector(include)
	if err != nil {
		return nil, err
	}
	s := &selection{tops: map[string]bool{}, above: map[string]bool{}}
	_, err = mf.Each(func(e *manifest.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, ok := sel.Next(e); !ok {
			return nil
		}
		if e.Type == manifest.TypeFile {
			s.files++
			s.bytes += e.Size
		}
		if sel.Top() {
			p := string(e.Path)
			s.tops[p] = true
			s.list = append(s.list, p)
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				s.above[d] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(s.list) == 0 {
		return nil, fmt.Errorf("%w: no entry of the snapshot matches --include %s; nothing was changed", ErrNotFound, strings.Join(include, " "))
	}
	return s, nil
}

// Where a path lies relative to a selection.
const (
	scopeOut   = iota // neither selected nor above a top: left alone
	scopeIn           // a top or below one: replaced
	scopeAbove        // a directory above a top: made if missing, else kept
)

func (s *selection) scope(rel string) int {
	if s == nil {
		return scopeIn
	}
	if s.above[rel] {
		return scopeAbove
	}
	for p := rel; p != "."; p = path.Dir(p) {
		if s.tops[p] {
			return scopeIn
		}
	}
	return scopeOut
}

// partialUnits decides, under the write lock, what the swap moves: each
// top, or, where the live data dir lacks a directory above it, the
// highest missing one (which the restored tree holds with only the
// selected entries below it). in are the units, out those of them that
// exist in the data dir. A live entry above a top that is not a directory
// (a file, a symlink) is refused: the restore would have to replace it,
// and that was not asked.
func (s *session) partialUnits(sel *selection) (out, in []string, err error) {
	seen := map[string]bool{}
	isDir := map[string]bool{} // live directories above tops, each stat-ed once
	for _, top := range sel.list {
		parts := strings.Split(top, "/")
		for i := range parts {
			p := strings.Join(parts[:i+1], "/")
			if p != top && isDir[p] {
				continue
			}
			st, lerr := s.data.Lstat(p)
			if lerr != nil {
				if !isNotExist(lerr) {
					return nil, nil, lerr
				}
				if !seen[p] {
					seen[p] = true
					in = append(in, p)
				}
				break
			}
			if p == top {
				if !seen[p] {
					seen[p] = true
					in = append(in, p)
					out = append(out, p)
				}
				break
			}
			if !st.IsDir() {
				return nil, nil, fmt.Errorf("%w: %s is a %s in the data dir where the snapshot has a directory quiesce.Hold %s; include %s itself to replace it; nothing was changed",
					ErrConflict, p, st.TypeName(), top, p)
			}
			isDir[p] = true
		}
	}
	sort.Strings(in)
	sort.Strings(out)
	return out, in, nil
}

// parentDirs are the distinct parent directories of paths ("." for the
// top level), for the fsyncs after moving them.
func parentDirs(paths []string) []string {
	seen := map[string]bool{}
	var dirs []string
	for _, p := range paths {
		if d := path.Dir(p); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return dirs
}
