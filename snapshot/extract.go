package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	treepkg "github.com/hotsnap/hotsnap/tree"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// Include lists globs (the --copy rules) of the entries to extract; a
	// matching directory brings its whole subtree. Empty means everything.
	Include []string
	Workers int
}

// ExtractResult reports an Extract. The JSON form is `restore --target`'s.
type ExtractResult struct {
	ID         string  `json:"id"`
	Target     string  `json:"target"`
	Files      int64   `json:"files"`
	Dirs       int64   `json:"dirs"`
	Symlinks   int64   `json:"symlinks"`
	Bytes      int64   `json:"bytes"`
	DurationMs float64 `json:"durationMs"`
}

// Extract copies the entries of snapshot id that Include selects (with
// the directories above them) into target, a directory that must not
// exist yet, leaving the data dir and the application alone: no lock, no
// swap. Every file is copied (never linked: the target is outside
// hotsnap's care), hashed on the way and compared with the manifest; the
// entries get the recorded owners (where permitted), modes and mtimes.
// The tree is built in a hidden directory beside target and renamed to
// target only when whole and the manifest's seal is proven: on any error
// target does not exist.
func Extract(ctx context.Context, l *Layout, id, target string, o ExtractOptions) (*ExtractResult, error) {
	start := time.Now()
	sel, err := treepkg.NewSelector(o.Include)
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, fmt.Errorf("%w: no target dir", ErrInvalid)
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(abs); err == nil {
		return nil, fmt.Errorf("%w: target %s exists: give a path that does not (hotsnap creates it)", ErrExists, abs)
	}
	if abs == l.DataDir || strings.HasPrefix(abs, l.DataDir+"/") {
		return nil, fmt.Errorf("%w: target %s is inside the data dir: restore into the data dir is a swap (restore without --target)", ErrInvalid, abs)
	}
	parent, err := fsutil.OpenDir(filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("target's parent: %w", err)
	}
	defer parent.Close()
	s, err := l.openSession(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	tree, mf, err := s.treeOf(id)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	defer mf.Close()

	tmp := fmt.Sprintf(".%s.hotsnap-tmp-%08x", filepath.Base(abs), fsutil.RandUint32())
	if err := parent.Mkdir(tmp, 0o700); err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			parent.RemoveAll(tmp)
		}
	}()
	dst, err := parent.OpenDir(tmp)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	res := &ExtractResult{ID: id, Target: abs}
	var (
		dirs  []manifest.Entry
		owned []string
	)
	mkdir := func(e *manifest.Entry) error {
		if err := treepkg.MakeDirOrSymlink(dst, e); err != nil {
			return err
		}
		dirs = append(dirs, *e)
		owned = append(owned, string(e.Path))
		res.Dirs++
		return nil
	}
	_, err = mf.Each(func(e *manifest.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := string(e.Path)
		parents, selected := sel.Next(e)
		if !selected {
			return nil
		}
		for i := range parents {
			if err := mkdir(&parents[i]); err != nil {
				return err
			}
		}
		switch e.Type {
		case manifest.TypeDir:
			return mkdir(e)
		case manifest.TypeSymlink:
			res.Symlinks++
			return treepkg.MakeDirOrSymlink(dst, e)
		}
		read := *e
		read.Capture = manifest.CaptureCopy // open it for reading, whatever its capture
		f, _, err := treepkg.OpenChecked(tree, &read)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrVerifyFailed, err)
		}
		defer f.Close()
		sum, err := treepkg.Copy(f, dst, e, true)
		if err != nil {
			return err
		}
		if sum != e.BLAKE3 {
			return fmt.Errorf("%w: %s in snapshot %s hashes to %s, the manifest says %s", ErrVerifyFailed, p, id, sum, e.BLAKE3)
		}
		owned = append(owned, p)
		res.Files++
		res.Bytes += e.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Files+res.Dirs+res.Symlinks == 0 {
		return nil, fmt.Errorf("%w: no entry of snapshot %s matches --include %s", ErrNotFound, id, strings.Join(o.Include, " "))
	}
	if err := treepkg.FinishDirs(dst, dirs); err != nil {
		return nil, err
	}
	if err := treepkg.Sync(ctx, dst, owned, o.Workers); err != nil {
		return nil, err
	}
	// The top itself gets the data dir's owner and mode (its own entry is
	// not in manifests).
	if st, err := s.data.Stat(); err == nil {
		if err := fsutil.SetOwnerMode(dst.Fd(), st.UID, st.GID, st.Perm()); err != nil && !errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
	}
	if err := parent.Rename(tmp, parent, filepath.Base(abs), true); err != nil {
		return nil, fmt.Errorf("publish %s: %w", abs, err)
	}
	done = true
	if err := parent.Sync(); err != nil {
		return nil, err
	}
	res.DurationMs = ms(time.Since(start))
	return res, nil
}
