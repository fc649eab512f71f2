package snapshot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
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
	if abs, err := filepath.Abs(target); err == nil && (abs == l.DataDir || strings.HasPrefix(abs, l.DataDir+"/")) {
		return nil, fmt.Errorf("%w: target %s is inside the data dir: restore into the data dir is a swap (restore without --target)", ErrInvalid, abs)
	}
	x, err := fstree.NewExtraction(target, o.Include)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	err = l.readTree(ctx, nil, id, func(s *session, tree *fsutil.Dir, mf *ManifestFile) error {
		if len(o.Include) == 0 { // a whole tree: all its bytes are written
			h, err := mf.Header()
			if err != nil {
				return err
			}
			if pd, err := fsutil.OpenDir(filepath.Dir(x.Target)); err == nil {
				err = enoughSpace(pd, h.Totals.Bytes, "restore "+id+" --target")
				pd.Close()
				if err != nil {
					return err
				}
			}
		}
		_, err := mf.Each(func(e *manifest.Entry) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return x.Add(e, func(dst *fsutil.Dir, e *manifest.Entry) error {
				read := *e
				read.Capture = manifest.CaptureCopy // open it for reading, whatever its capture
				f, _, err := fstree.OpenChecked(tree, &read)
				if err != nil {
					return fmt.Errorf("%w: %v", ErrVerifyFailed, err)
				}
				defer f.Close()
				sum, err := fstree.Copy(f, dst, e, true)
				if err == nil && sum != e.BLAKE3 {
					err = fmt.Errorf("%w: %s in snapshot %s hashes to %s, the manifest says %s", ErrVerifyFailed, e.Path, id, sum, e.BLAKE3)
				}
				return err
			})
		})
		if err != nil {
			return err
		}
		// The top gets the data dir's owner and mode (its own entry is not in
		// manifests).
		top, err := s.data.Stat()
		if err != nil {
			return err
		}
		if err := x.Publish(ctx, top.UID, top.GID, top.Perm()); err != nil {
			return fmt.Errorf("snapshot %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ExtractResult{ID: id, Target: x.Target, Files: x.Files, Dirs: x.Dirs, Symlinks: x.Symlinks, Bytes: x.Bytes,
		DurationMs: ms(time.Since(start))}, nil
}
