package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	treepkg "github.com/hotsnap/hotsnap/tree"
)

// originName marks a snapshot that was not taken here (downloaded): its
// manifest's inode numbers describe another filesystem, so Create never
// reuses hashes from it.
const originName = "origin.json"

// Import publishes a snapshot whose tree is built by fill, the way Create
// publishes its own: under the operation lock, after recovery, in staging
// (in the private state dir), then one atomic rename. fill gets the empty
// tree as an open directory and must create everything below it through
// it. manifestBytes is stored as manifest.json byte for byte (its seal is
// checked first); origin is stored as origin.json. On any error nothing is
// left behind.
func Import(ctx context.Context, l *Layout, manifestBytes []byte, origin []byte, fill func(ctx context.Context, tree *fsutil.Dir) error, log *slog.Logger) (err error) {
	m, err := manifest.Decode(manifestBytes)
	if err != nil {
		return err
	}
	id := m.ID
	if err := validID(id); err != nil {
		return err
	}
	// The operation lock is held only to clean up and to publish, not while
	// fill works (a download can take hours): the staging tree has its own
	// lock, so another command's recovery leaves it alone.
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return err
	}
	defer s.close()
	if s.backups.Exists(id) {
		return fmt.Errorf("snapshot %s: %w (delete it first)", id, ErrExists)
	}
	if err := s.mkdirPriv(stagingName); err != nil {
		return err
	}
	stage := stagingName + "/" + id
	sl, err := s.lockStage(stage)
	if err != nil {
		return fmt.Errorf("%w: another download of %s is running", ErrBusy, id)
	}
	defer func() {
		sl.release()
		s.priv.Remove(stage + stageLockSuffix)
	}()
	err = s.priv.Mkdir(stage, 0o700)
	s.op.release()
	s.op = nil
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.priv.RemoveAll(stage)
		}
	}()
	treeRel := stage + "/" + dataName
	if err := s.priv.Mkdir(treeRel, 0o700); err != nil {
		return err
	}
	tree, err := s.priv.OpenDir(treeRel)
	if err != nil {
		return err
	}
	defer tree.Close()
	if err := fill(ctx, tree); err != nil {
		return err
	}
	crashPoint("import.filled")
	if err := treepkg.FinishDirs(tree, m.Entries); err != nil {
		return err
	}
	if err := writeNew(s.priv, stage+"/"+manifestName, manifestBytes); err != nil {
		return err
	}
	if err := writeNew(s.priv, stage+"/"+originName, origin); err != nil {
		return err
	}
	// Every file here was written by fill (nothing is shared with live
	// data), so every file is fsynced, not only the copies as at create.
	if err := treepkg.Sync(ctx, tree, m.Entries, 0, true); err != nil {
		return err
	}
	if s.op, err = lockOp(ctx, s.priv, DefaultOpLockWait); err != nil {
		return err
	}
	return s.publish(stage, id)
}

// LocalContent is a file of a local snapshot, found by its content, for a
// download to take instead of fetching.
type LocalContent struct {
	ID    string // the snapshot holding it
	Entry manifest.Entry
}

// LocalFiles finds the files of the local snapshots by content. Close it.
type LocalFiles struct {
	s      *session
	byHash map[string]LocalContent
}

// OpenLocalFiles indexes the files of every readable local snapshot by
// their BLAKE3.
func OpenLocalFiles(ctx context.Context, l *Layout) (*LocalFiles, error) {
	s, err := l.openSession(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	lf := &LocalFiles{s: s, byHash: map[string]LocalContent{}}
	ids, _ := s.ids()
	for _, id := range ids {
		m, _, err := s.readManifest(id)
		if err != nil {
			continue
		}
		for _, e := range m.Entries {
			if e.Type == manifest.TypeFile {
				if _, ok := lf.byHash[e.BLAKE3]; !ok {
					lf.byHash[e.BLAKE3] = LocalContent{ID: id, Entry: e}
				}
			}
		}
	}
	return lf, nil
}

// Lookup finds a local file holding the content hash.
func (lf *LocalFiles) Lookup(hash string) (LocalContent, bool) {
	c, ok := lf.byHash[hash]
	return c, ok
}

// Open opens the local file c (a regular file, never through a symlink)
// for reading. The caller proves its content before using it.
func (lf *LocalFiles) Open(c LocalContent) (*os.File, fsutil.Stat, error) {
	t, err := lf.s.openTree(c.ID)
	if err != nil {
		return nil, fsutil.Stat{}, err
	}
	defer t.Close()
	return t.OpenRegular(string(c.Entry.Path))
}

// Close releases the snapshots' directories.
func (lf *LocalFiles) Close() { lf.s.close() }
