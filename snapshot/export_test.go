package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	treepkg "github.com/hotsnap/hotsnap/tree"
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

// fillFrom copies snapshot id of l into root, entry by entry: a stand-in
// for a download's fill.
func fillFrom(ctx context.Context, l *Layout, id string, root *fsutil.Dir) error {
	s, err := l.openSession(ctx, nil, false)
	if err != nil {
		return err
	}
	defer s.close()
	m, _, err := s.readManifest(id)
	if err != nil {
		return err
	}
	snap, err := s.openTree(id)
	if err != nil {
		return err
	}
	defer snap.Close()
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := treepkg.MakeDirOrSymlink(root, e); err != nil {
			return err
		}
		if e.Type != manifest.TypeFile {
			continue
		}
		f, _, err := snap.OpenRegular(string(e.Path))
		if err != nil {
			return err
		}
		_, err = treepkg.Copy(f, root, e, false)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
