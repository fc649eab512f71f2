package snapshot

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// Browsing local snapshots without restoring them: one file's bytes (cat)
// and the difference between a snapshot and the live data dir. Diffs of
// two snapshots need only their manifests (manifest.Diff over
// Layout.OpenManifest readers).

// Cat writes the file at path (slash-separated, relative to the data dir)
// of snapshot id to w, and checks what it wrote against the manifest's
// BLAKE3 at the end: an error wrapping ErrVerifyFailed then says w got
// bytes that are not the file's. The file is opened through the
// snapshot's tree with no symlink followed.
func Cat(ctx context.Context, l *Layout, id, path string, w io.Writer) (e *manifest.Entry, err error) {
	err = l.readTree(ctx, nil, id, func(_ *session, tree *fsutil.Dir, mf *ManifestFile) error {
		e, err = catFile(tree, mf, id, path, w)
		return err
	})
	return e, err
}

// catFile is Cat in snapshot id's open tree and manifest.
func catFile(tree *fsutil.Dir, mf *ManifestFile, id, path string, w io.Writer) (*manifest.Entry, error) {
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	for {
		e, err := r.Next()
		if err == io.EOF || (err == nil && string(e.Path) > path) {
			return nil, fmt.Errorf("%s is not in snapshot %s: %w", path, id, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		if string(e.Path) != path {
			continue
		}
		if e.Type != manifest.TypeFile {
			return nil, fmt.Errorf("%w: %s is a %s in snapshot %s, not a file", ErrInvalid, path, e.Type, id)
		}
		f, _, err := tree.OpenRegular(path)
		if err != nil {
			return nil, fmt.Errorf("%s in snapshot %s: %w", path, id, err)
		}
		defer f.Close()
		h := manifest.NewHasher()
		if _, err := io.Copy(io.MultiWriter(w, h), f); err != nil {
			return nil, err
		}
		if sum := h.Sum(); sum != e.BLAKE3 {
			return nil, fmt.Errorf("%w: %s: the bytes written hash to %s, the manifest of %s says %s", manifest.ErrVerifyFailed, path, sum, id, e.BLAKE3)
		}
		return e, nil
	}
}

// LiveDiff calls fn with each difference between snapshot id (the older
// side) and the live data dir (the newer), in path order. Files are
// compared by type, size, mtime, mode and owner (what changed shows as
// content when size or mtime moved); with hash, every file of equal size
// and mtime is also re-hashed. hotsnap's state dir and the backups dir
// are left out.
func LiveDiff(ctx context.Context, l *Layout, id string, hash bool, fn func(manifest.Change) error) (manifest.DiffCounts, error) {
	var n manifest.DiffCounts
	s, err := l.openSession(ctx, nil, false)
	if err != nil {
		return n, err
	}
	defer s.close()
	mf, err := s.openManifest(id)
	if err != nil {
		return n, err
	}
	defer mf.Close()
	r, err := mf.Reader()
	if err != nil {
		return n, err
	}
	backupsTop := ""
	if filepath.Dir(l.BackupsDir) == l.DataDir {
		backupsTop = filepath.Base(l.BackupsDir)
	}
	res, err := manifest.VerifyTree(ctx, s.data, r, manifest.VerifyOptions{
		Fast: !hash,
		Skip: func(rel string) bool { return rel == writegate.StateDirName || (backupsTop != "" && rel == backupsTop) },
	})
	if err != nil {
		return n, err
	}
	// Problems come sorted by path, several per path: one change each.
	for i := 0; i < len(res.Problems); {
		p := res.Problems[i]
		c := manifest.Change{Path: p.Path, Kind: manifest.Modified}
		j := i
		for ; j < len(res.Problems) && res.Problems[j].Path == p.Path; j++ {
			switch k := res.Problems[j].Kind; k {
			case manifest.ProblemMissing:
				c.Kind = manifest.Removed
			case manifest.ProblemExtra:
				c.Kind = manifest.Added
			case manifest.ProblemSize, manifest.ProblemModified, manifest.ProblemHash:
				c.What = appendOnce(c.What, manifest.ChangedContent)
			case manifest.ProblemRead:
				c.What = appendOnce(c.What, "unreadable")
			default:
				c.What = appendOnce(c.What, k)
			}
			if c.Type == "" {
				c.Type = res.Problems[j].Type
			}
		}
		i = j
		if c.Kind != manifest.Modified {
			c.What = nil
		}
		switch c.Kind {
		case manifest.Added:
			n.Added++
		case manifest.Removed:
			n.Removed++
		default:
			n.Modified++
		}
		if err := fn(c); err != nil {
			return n, err
		}
	}
	return n, nil
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
