package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// originName marks a snapshot that was not taken here (downloaded): its
// manifest's inode numbers describe another filesystem, so Create never
// reuses hashes from it.
const originName = "origin.json"

// Import publishes a snapshot whose tree is built by fill, the way Create
// publishes its own: under the operation lock, after recovery, in staging,
// then one atomic rename. manifestBytes is stored as manifest.json byte for
// byte (its seal is checked first); origin is stored as origin.json. On any
// error nothing is left behind.
func Import(ctx context.Context, l *Layout, manifestBytes []byte, origin []byte, fill func(ctx context.Context, tree string) error, log *slog.Logger) (err error) {
	m, err := manifest.Decode(manifestBytes)
	if err != nil {
		return err
	}
	id := m.ID
	if err := validID(id); err != nil {
		return err
	}
	if err := l.checkFilesystems(); err != nil {
		return err
	}
	// The operation lock is held only to clean up and to publish, not while
	// fill works (a download can take hours): the staging tree has its own
	// lock, so another command's recovery leaves it alone.
	op, err := l.lockOp(ctx, DefaultOpLockWait)
	if err != nil {
		return err
	}
	if _, err := l.recoverLocked(ctx, log); err != nil {
		op.release()
		return fmt.Errorf("recover: %w", err)
	}
	if exists(l.SnapshotDir(id)) {
		op.release()
		return fmt.Errorf("snapshot %s: %w (delete it first)", id, ErrExists)
	}
	for _, d := range []string{l.BackupsDir, l.stagingDir()} {
		if err := fsutil.MkdirAllSync(d, 0o755); err != nil {
			op.release()
			return err
		}
	}
	stage := filepath.Join(l.stagingDir(), id)
	sl, err := lockStage(stage)
	if err != nil {
		op.release()
		return fmt.Errorf("%w: another download of %s is running", ErrBusy, id)
	}
	defer func() {
		sl.release()
		os.Remove(stage + stageLockSuffix)
	}()
	err = os.Mkdir(stage, 0o755)
	op.release()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeTree(stage)
		}
	}()
	tree := filepath.Join(stage, dataName)
	if err := os.Mkdir(tree, 0o700); err != nil {
		return err
	}
	if err := fill(ctx, tree); err != nil {
		return err
	}
	crashPoint("import.filled")
	if err := FinishDirs(tree, m.Entries); err != nil {
		return err
	}
	if err := fsutil.WriteFileSync(filepath.Join(stage, manifestName), manifestBytes, 0o644); err != nil {
		return err
	}
	if err := fsutil.WriteFileSync(filepath.Join(stage, originName), origin, 0o644); err != nil {
		return err
	}
	// Every file here was written by fill (nothing is shared with live
	// data), so every file is fsynced, not only the copies as at create.
	if err := syncTree(ctx, tree, m.Entries, 0, true); err != nil {
		return err
	}
	if err := fsutil.SyncDir(stage); err != nil {
		return err
	}
	if op, err = l.lockOp(ctx, DefaultOpLockWait); err != nil {
		return err
	}
	defer op.release()
	if err := unix.Renameat2(unix.AT_FDCWD, stage, unix.AT_FDCWD, l.SnapshotDir(id), unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("snapshot %s: %w", id, ErrExists)
		}
		return err
	}
	return fsutil.SyncDir(l.BackupsDir)
}

// MakeDirOrSymlink creates the directory (0700 until FinishDirs gives it
// its mode) or the symlink (never followed; its owner where permitted) that
// e describes at p. Files are the caller's business; it ignores them.
func MakeDirOrSymlink(p string, e *manifest.Entry) error {
	switch e.Type {
	case manifest.TypeDir:
		return os.Mkdir(p, 0o700)
	case manifest.TypeSymlink:
		if err := os.Symlink(string(e.Target), p); err != nil {
			return err
		}
		_ = os.Lchown(p, int(e.UID), int(e.GID))
	}
	return nil
}

// FinishDirs gives the directories of a tree built from entries their
// modes, owners (where permitted) and mtimes, deepest first.
func FinishDirs(root string, entries []manifest.Entry) error {
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
		p := filepath.Join(root, filepath.FromSlash(string(e.Path)))
		_ = os.Lchown(p, int(e.UID), int(e.GID))
		if err := unix.Chmod(p, e.Mode); err != nil {
			return err
		}
		if err := fsutil.SetMtime(p, e.MtimeNs); err != nil {
			return err
		}
	}
	return nil
}

// LocalContent maps a file content's BLAKE3 to a file holding it in one of
// the local snapshots, for download to take instead of fetching.
type LocalContent struct {
	Path    string // in a snapshot's tree
	Capture string
	Entry   manifest.Entry
}

// LocalContents indexes the files of every readable local snapshot by hash.
func LocalContents(l *Layout) map[string]LocalContent {
	out := map[string]LocalContent{}
	ids, _ := l.ids()
	for _, id := range ids {
		m, err := manifest.Read(l.ManifestPath(id))
		if err != nil {
			continue
		}
		for _, e := range m.Entries {
			if e.Type == manifest.TypeFile {
				if _, ok := out[e.BLAKE3]; !ok {
					out[e.BLAKE3] = LocalContent{Path: filepath.Join(l.TreeDir(id), filepath.FromSlash(string(e.Path))), Capture: e.Capture, Entry: e}
				}
			}
		}
	}
	return out
}
