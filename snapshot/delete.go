package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hotsnap/hotsnap/fsutil"
)

func errNoSnapshot(id string) error {
	return fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// Delete removes snapshot id. It first moves the snapshot out of the backups
// dir in one rename (so it leaves listings at once, whole), then removes it;
// a crash in between leaves trash that the next command removes. Deleting
// links never touches live data.
func Delete(ctx context.Context, l *Layout, id string, log *slog.Logger) error {
	if err := validID(id); err != nil {
		return err
	}
	op, err := l.lockOp(ctx, DefaultOpLockWait)
	if err != nil {
		return err
	}
	defer op.release()
	if _, err := l.recoverLocked(ctx, log); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	src := l.SnapshotDir(id)
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return errNoSnapshot(id)
	}
	if err := fsutil.MkdirAllSync(l.trashDir(), 0o755); err != nil {
		return err
	}
	dst := filepath.Join(l.trashDir(), id)
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := fsutil.SyncDir(l.BackupsDir); err != nil {
		return err
	}
	crashPoint("delete.trashed")
	if err := removeTree(dst); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	logger(log).Info("snapshot deleted", "id", id)
	return nil
}
