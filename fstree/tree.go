package fstree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// MakeDirOrSymlink creates below root the directory (0700 until FinishDirs
// gives it its mode) or the symlink (never followed; its owner where
// permitted) that e describes. Files are the caller's business; it
// ignores them.
func MakeDirOrSymlink(root *fsutil.Dir, e *manifest.Entry) error {
	switch e.Type {
	case manifest.TypeDir:
		return root.Mkdir(string(e.Path), 0o700)
	case manifest.TypeSymlink:
		if err := root.Symlink(string(e.Target), string(e.Path)); err != nil {
			return err
		}
		root.Lchown(string(e.Path), e.UID, e.GID) // where permitted
	}
	return nil
}

// SetAttrs gives the open file f the entry's owner, mode and mtime: owner
// first, so a setuid or setgid bit the manifest records survives the
// chown; without the right to set the owner, those bits are dropped
// (fsutil.SetOwnerMode). Never call it on a file shared with live data.
func SetAttrs(f *os.File, e *manifest.Entry) error {
	fd := int(f.Fd())
	if err := fsutil.SetOwnerMode(fd, e.UID, e.GID, e.Mode); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := fsutil.SetMtimeFd(fd, e.MtimeNs); err != nil {
		return fmt.Errorf("set mtime %s: %w", f.Name(), err)
	}
	return nil
}

// Copy creates e.Path below root as a private copy of src (a clone where
// the filesystem can, else a kernel copy) with the entry's attributes. It
// returns the BLAKE3 of what it copied when hash is set ("" otherwise), so
// a caller that copies from a place others could change can prove the
// copy. On error the new file is removed.
func Copy(src *os.File, root *fsutil.Dir, e *manifest.Entry, hash bool) (sum string, err error) {
	out, err := root.Create(string(e.Path), 0o600)
	if err != nil {
		return "", err
	}
	defer func() {
		out.Close()
		if err != nil {
			root.Remove(string(e.Path))
		}
	}()
	cloned := !hash && unix.IoctlFileClone(int(out.Fd()), int(src.Fd())) == nil
	if !cloned {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		var r io.Reader = src
		var h *manifest.Hasher
		if hash {
			h = manifest.NewHasher()
			r = io.TeeReader(src, h)
		}
		if _, err := io.Copy(out, r); err != nil {
			return "", fmt.Errorf("copy %s: %w", src.Name(), err)
		}
		if h != nil {
			sum = h.Sum()
		}
	}
	return sum, SetAttrs(out, e)
}

// FinishDirs gives the directories among entries their owners, modes and
// mtimes, deepest first (a mode may forbid writing, and entries made later
// would move an mtime).
func FinishDirs(root *fsutil.Dir, entries []manifest.Entry) error {
	var dirs []*manifest.Entry
	for i := range entries {
		if entries[i].Type == manifest.TypeDir {
			dirs = append(dirs, &entries[i])
		}
	}
	sort.SliceStable(dirs, func(a, b int) bool {
		return strings.Count(string(dirs[a].Path), "/") > strings.Count(string(dirs[b].Path), "/")
	})
	for _, e := range dirs {
		d, err := root.OpenFile(string(e.Path), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = SetAttrs(d, e)
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Sync fsyncs root, then, in parallel, the entries rels below it (the
// directories and files a tree owns: not hard links of live data).
func Sync(ctx context.Context, root *fsutil.Dir, rels []string, workers int) error {
	if err := root.Sync(); err != nil {
		return err
	}
	return par.ForEach(ctx, len(rels), workers, func(ctx context.Context, k int) error {
		f, err := root.OpenFile(rels[k], unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", f.Name(), err)
		}
		return nil
	})
}

// ErrMismatch is returned by OpenChecked when a file differs from its entry.
var ErrMismatch = errors.New("does not match its manifest entry")

// OpenChecked opens the regular file e.Path below root (never through a
// symlink, never anything but a regular file) and checks its stat against
// the entry: size and mtime, and for a file captured by link also owner
// and mode, since linking it hands over that very inode. Restore links and
// copies from the open file, so what was checked is what is used, whatever
// happens to the name meanwhile. A file captured by link is opened O_PATH
// (enough to link it); a copy is opened for reading.
func OpenChecked(root *fsutil.Dir, e *manifest.Entry) (*os.File, fsutil.Stat, error) {
	open := root.OpenRegular
	if e.Capture == manifest.CaptureLink {
		open = root.OpenPath // to be linked, never read: no read access needed
	}
	f, st, err := open(string(e.Path))
	if err != nil {
		return nil, st, err
	}
	if err := CheckStat(root, e, st); err != nil {
		f.Close()
		return nil, st, err
	}
	return f, st, nil
}

// CheckStat requires st, the stat of e.Path below root, to be what the
// entry says: a regular file of its size and mtime and, for a file
// captured by link, of its owner and mode.
func CheckStat(root *fsutil.Dir, e *manifest.Entry, st fsutil.Stat) error {
	var bad string
	switch {
	case !st.IsRegular():
		bad = "not a regular file"
	case st.Size != e.Size:
		bad = fmt.Sprintf("size %d, manifest says %d", st.Size, e.Size)
	case st.MtimeNs != e.MtimeNs:
		bad = fmt.Sprintf("mtime %d, manifest says %d", st.MtimeNs, e.MtimeNs)
	case e.Capture == manifest.CaptureLink && (st.UID != e.UID || st.GID != e.GID):
		bad = fmt.Sprintf("owner %d:%d, manifest says %d:%d", st.UID, st.GID, e.UID, e.GID)
	case e.Capture == manifest.CaptureLink && st.Perm() != e.Mode:
		bad = fmt.Sprintf("mode %04o, manifest says %04o", st.Perm(), e.Mode)
	}
	if bad != "" {
		return fmt.Errorf("%s %w: %s", root.Join(string(e.Path)), ErrMismatch, bad)
	}
	return nil
}

// DirCache keeps the one directory below Root that the entries being made
// are in: a manifest is in byte order of whole paths, so the entries of a
// directory come together, and each is reached from its open parent
// instead of walking its path again (a walk costs an open and a close per
// component).
type DirCache struct {
	Root *fsutil.Dir
	rel  string
	d    *fsutil.Dir
	st   fsutil.Stat
}

// At returns the open directory rel ("" is Root) and its stat.
func (c *DirCache) At(rel string) (*fsutil.Dir, fsutil.Stat, error) {
	if c.d != nil && c.rel == rel {
		return c.d, c.st, nil
	}
	c.Close()
	d := c.Root
	if rel != "" {
		var err error
		if d, err = c.Root.OpenDir(rel); err != nil {
			return nil, fsutil.Stat{}, err
		}
	}
	st, err := d.Stat()
	if err != nil {
		if d != c.Root {
			d.Close()
		}
		return nil, st, err
	}
	c.d, c.rel, c.st = d, rel, st
	return d, st, nil
}

// Close closes the cached directory (never Root).
func (c *DirCache) Close() {
	if c.d != nil && c.d != c.Root {
		c.d.Close()
	}
	c.d = nil
}
