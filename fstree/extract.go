package fstree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// Extraction builds the entries a Selector picks from a manifest (read in
// path order) into a new directory, target, which must not exist: in a
// hidden directory beside it, renamed to target by Publish only when
// whole. Close removes what an unpublished extraction built, so on any
// error there is no target. Restore --target and download --target both
// use it; they differ only in where a file's bytes come from.
type Extraction struct {
	Target string // absolute
	// Counts of what was built.
	Files, Dirs, Symlinks, Bytes int64

	sel       *Selector
	parent    *fsutil.Dir
	dst       *fsutil.Dir
	tmp       string
	dirs      []manifest.Entry
	owned     []string
	published bool
}

// NewExtraction checks the patterns and the target and makes the hidden
// directory. The target's parent is the invoking user's choice (a flag),
// opened once; everything below it goes through its descriptor.
func NewExtraction(target string, include []string) (*Extraction, error) {
	sel, err := NewSelector(include)
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, fmt.Errorf("%w: no target dir", errs.ErrInvalid)
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(abs); err == nil {
		return nil, fmt.Errorf("%w: target %s exists: give a path that does not (hotsnap creates it)", errs.ErrConflict, abs)
	}
	parent, err := fsutil.OpenDir(filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("target's parent: %w", err)
	}
	x := &Extraction{Target: abs, sel: sel, parent: parent,
		tmp: fmt.Sprintf(".%s.hotsnap-tmp-%08x", filepath.Base(abs), fsutil.RandUint32())}
	if err := parent.Mkdir(x.tmp, 0o700); err != nil {
		parent.Close()
		return nil, err
	}
	if x.dst, err = parent.OpenDir(x.tmp); err != nil {
		parent.RemoveAll(x.tmp)
		parent.Close()
		return nil, err
	}
	return x, nil
}

// Add takes the next manifest entry. A selected one is made, with the
// directories above it not yet made; for a regular file, file creates
// e.Path below the given root with its content and attributes (and is
// not called for anything else).
func (x *Extraction) Add(e *manifest.Entry, file func(root *fsutil.Dir, e *manifest.Entry) error) error {
	parents, selected := x.sel.Next(e)
	if !selected {
		return nil
	}
	for i := range parents {
		if err := x.mkdir(&parents[i]); err != nil {
			return err
		}
	}
	switch e.Type {
	case manifest.TypeDir:
		return x.mkdir(e)
	case manifest.TypeSymlink:
		x.Symlinks++
		return MakeDirOrSymlink(x.dst, e)
	}
	if err := file(x.dst, e); err != nil {
		return err
	}
	x.owned = append(x.owned, string(e.Path))
	x.Files++
	x.Bytes += e.Size
	return nil
}

func (x *Extraction) mkdir(e *manifest.Entry) error {
	if err := MakeDirOrSymlink(x.dst, e); err != nil {
		return err
	}
	x.dirs = append(x.dirs, *e)
	x.owned = append(x.owned, string(e.Path))
	x.Dirs++
	return nil
}

// Publish finishes the directories (owners, modes, mtimes), makes the tree
// durable, gives the top uid, gid and mode (fsutil.SetOwnerMode) and
// renames it to the target. An extraction that selected nothing is an
// error wrapping errs.ErrNotFound, and is not published.
func (x *Extraction) Publish(ctx context.Context, uid, gid, mode uint32) error {
	if x.Files+x.Dirs+x.Symlinks == 0 {
		return fmt.Errorf("%w: no entry matches --include", errs.ErrNotFound)
	}
	if err := FinishDirs(x.dst, x.dirs); err != nil {
		return err
	}
	if err := Sync(ctx, x.dst, x.owned, 0); err != nil {
		return err
	}
	if err := fsutil.SetOwnerMode(x.dst.Fd(), uid, gid, mode); err != nil {
		return err
	}
	if err := x.parent.Rename(x.tmp, x.parent, filepath.Base(x.Target), true); err != nil {
		return fmt.Errorf("publish %s: %w", x.Target, err)
	}
	x.published = true
	return x.parent.Sync()
}

// Close releases the extraction, removing the hidden directory unless it
// was published.
func (x *Extraction) Close() {
	x.dst.Close()
	if !x.published {
		x.parent.RemoveAll(x.tmp)
	}
	x.parent.Close()
}
