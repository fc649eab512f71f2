// Package fs is the archive store in a plain directory (remote file:///path):
// one file per key, written atomically (temp file, fsync, rename, fsync dir).
//
// The archive holds the data, so its directories are created 0700 and its
// objects 0600. Everything below the root is reached through the root's
// directory descriptor with no symlink followed (fsutil.Dir): a symlink
// planted in the archive is an error, never a way out of it.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fsutil"
)

// Store keeps objects under Root.
type Store struct {
	Root string
	dir  *fsutil.Dir
}

var _ store.Store = (*Store)(nil)

// New returns a store rooted at root, creating the directory (0700) if needed.
func New(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file:// remote needs an absolute path, got %q", root)
	}
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	d, err := fsutil.OpenDir(root)
	if err != nil {
		return nil, err
	}
	return &Store{Root: root, dir: d}, nil
}

func (s *Store) String() string { return "file://" + s.Root }

func notFound(err error, key string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return err
}

// open opens the object key for reading: a regular file, never anything
// else in its place.
func (s *Store) open(key string) (*os.File, int64, error) {
	if err := store.ValidKey(key); err != nil {
		return nil, 0, err
	}
	f, st, err := s.dir.OpenRegular(key)
	if err != nil {
		return nil, 0, notFound(err, key)
	}
	return f, st.Size, nil
}

func (s *Store) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	f, size, err := s.open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > max {
		return nil, fmt.Errorf("%s is %d bytes, more than %d: %w", key, size, max, store.ErrTooLarge)
	}
	// The size comes from fstat of the very file read, so the buffer is
	// what the object holds; a file that grows meanwhile is cut there.
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	f, size, err := s.open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if off < 0 || n < 0 || off > size || n > size-off {
		return nil, fmt.Errorf("read %s [%d, +%d): past the end of the object (%d bytes)", key, off, n, size)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("read %s [%d, +%d): past the end of the object", key, off, n)
		}
		return nil, err
	}
	return b, nil
}

func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := store.ValidKey(key); err != nil {
		return store.Info{}, err
	}
	st, err := s.dir.Lstat(key)
	if err != nil {
		return store.Info{}, notFound(err, key)
	}
	if !st.IsRegular() {
		return store.Info{}, fmt.Errorf("object %s is a %s, not a file", key, st.TypeName())
	}
	return info(key, st), nil
}

func info(key string, st fsutil.Stat) store.Info {
	return store.Info{Key: key, Size: st.Size, ModTime: time.Unix(0, st.MtimeNs)}
}

func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := store.ValidKey(key); err != nil {
		return err
	}
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		if err := s.mkdirs(key[:i]); err != nil {
			return err
		}
	}
	return s.dir.WriteFileAtomic(key, data, 0o600)
}

// mkdirs makes the directories of rel that are missing (0700), fsyncing
// each parent that gained one.
func (s *Store) mkdirs(rel string) error {
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		err := s.dir.Mkdir(p, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		parent := "."
		if i > 0 {
			parent = strings.Join(parts[:i], "/")
		}
		if err := s.dir.SyncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.ValidKey(key); err != nil {
		return err
	}
	if err := s.dir.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	// Walk the deepest directory the prefix names, then filter.
	base := "."
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		base = prefix[:i]
		if err := store.ValidKey(base); err != nil {
			return err
		}
	}
	d, err := s.dir.OpenDir(base)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Walk(ctx, func(rel string, st fsutil.Stat) error {
		name := rel[strings.LastIndexByte(rel, '/')+1:]
		if !st.IsRegular() || fsutil.IsTempName(name) {
			return nil // temp files of WriteFileAtomic are not objects
		}
		key := rel
		if base != "." {
			key = base + "/" + rel
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		return fn(info(key, st))
	}, fsutil.IgnoreVanished)
}

// SweepTemp removes the temp files an interrupted Put left (a killed
// upload) whose last change is before olderThanNs: a Put running now
// is never touched. It returns the keys removed.
func (s *Store) SweepTemp(ctx context.Context, olderThanNs int64) ([]string, error) {
	var removed []string
	err := s.dir.Walk(ctx, func(rel string, st fsutil.Stat) error {
		name := rel[strings.LastIndexByte(rel, '/')+1:]
		if st.IsRegular() && fsutil.IsTempName(name) && st.MtimeNs < olderThanNs {
			if err := s.dir.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = append(removed, rel)
		}
		return nil
	}, fsutil.IgnoreVanished)
	return removed, err
}
