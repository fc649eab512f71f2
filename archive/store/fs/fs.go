// Package fs is the archive store in a plain directory (remote file:///path):
// one file per key, written atomically (temp file, fsync, rename, fsync dir).
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

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fsutil"
)

// Store keeps objects under Root.
type Store struct {
	Root string
}

var _ store.Store = (*Store)(nil)

// New returns a store rooted at root, creating the directory if needed.
func New(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file:// remote needs an absolute path, got %q", root)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	return &Store{Root: filepath.Clean(root)}, nil
}

func (s *Store) String() string { return "file://" + s.Root }

func (s *Store) path(key string) (string, error) {
	if err := store.ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.Root, filepath.FromSlash(key)), nil
}

func notFound(err error, key string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return err
}

func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	return b, notFound(err, key)
}

func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(err, key)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("read %s [%d, +%d): past the end of the object", key, off, n)
		}
		return nil, err
	}
	return b, nil
}

func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, notFound(err, key)
	}
	return fi.Size(), nil
}

func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(p, data, 0o644)
}

func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *Store) List(ctx context.Context, prefix string, fn func(string, int64) error) error {
	// Walk the deepest directory the prefix names, then filter.
	dir := s.Root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = filepath.Join(s.Root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") { // temp files of WriteFileAtomic start with "."
			return nil
		}
		rel, _ := filepath.Rel(s.Root, p)
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(key, fi.Size())
	})
	return err
}
