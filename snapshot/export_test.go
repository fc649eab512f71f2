package snapshot

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

func fsutilSameFS(a, b string) error { return fsutil.SameFilesystem(a, b) }

func readDirNames(d string) ([]string, error) {
	f, err := os.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func (l *Layout) journalPath() string { return filepath.Join(l.PrivateDir, journalName) }

// writeSession opens a write session for a test (it recovers first).
func writeSession(t *testing.T, l *Layout) *session {
	t.Helper()
	s, err := l.openSession(context.Background(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// copySource is an ImportSource that copies a local snapshot of another
// data dir: a stand-in for a download. before, when set, runs first in Fill.
type copySource struct {
	l      *Layout
	id     string
	before func()
	mangle func([]byte) []byte // changes the manifest it gives, when set
}

func (c copySource) WriteManifest(ctx context.Context, w io.Writer) error {
	b, err := os.ReadFile(c.l.ManifestPath(c.id))
	if err != nil {
		return err
	}
	if c.mangle != nil {
		b = c.mangle(b)
	}
	_, err = w.Write(b)
	return err
}

func (c copySource) Fill(ctx context.Context, root *fsutil.Dir, mf *ManifestFile) error {
	if c.before != nil {
		c.before()
	}
	if _, err := mf.Each(func(*manifest.Entry) error { return nil }); err != nil {
		return err // a source reads the manifest through before it builds (fstree.Source)
	}
	s, err := c.l.openSession(ctx, nil, false)
	if err != nil {
		return err
	}
	defer s.close()
	snap, err := s.openTree(c.id)
	if err != nil {
		return err
	}
	defer snap.Close()
	groups := map[int]string{} // link group -> its first name, as a download links them
	_, err = mf.Each(func(e *manifest.Entry) error {
		if err := fstree.MakeDirOrSymlink(root, e); err != nil {
			return err
		}
		if e.Type != manifest.TypeFile {
			return nil
		}
		if first, ok := groups[e.LinkGroup]; ok {
			return root.Link(first, root, string(e.Path))
		}
		if e.LinkGroup != 0 {
			groups[e.LinkGroup] = string(e.Path)
		}
		f, _, err := snap.OpenRegular(string(e.Path))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = fstree.Copy(f, root, e, false)
		return err
	})
	return err
}
