package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// RecoverResult says what Recover cleaned up.
type RecoverResult struct {
	// Removed lists leftovers of crashed commands that were deleted.
	Removed []string `json:"removed"`
	// Restore says what happened to an interrupted restore, if any.
	Restore string `json:"restore,omitempty"`
}

// Recover brings the data dir back to a clean state after a crash: an
// interrupted restore is rolled forward (or back, when it cannot be
// finished), so the data dir is either the old state or the restored one,
// never a mix; half-built snapshots (staging), half-deleted ones (trash) and
// half-built restore trees (restoring) are removed. It takes the operation lock.
func Recover(ctx context.Context, l *Layout, log *slog.Logger) (*RecoverResult, error) {
	op, err := l.lockOp(ctx, DefaultOpLockWait)
	if err != nil {
		return nil, err
	}
	defer op.release()
	return l.recoverLocked(ctx, log)
}

// recoverLocked does the work of Recover; the caller holds the operation lock.
func (l *Layout) recoverLocked(ctx context.Context, log *slog.Logger) (*RecoverResult, error) {
	res := &RecoverResult{Removed: []string{}}
	msg, err := l.recoverJournal(log)
	if err != nil {
		return nil, err
	}
	res.Restore = msg
	for _, dir := range []string{l.stagingDir(), l.trashDir(), l.restoringDir()} {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if strings.HasSuffix(p, stageLockSuffix) {
				// A lock file whose tree is gone: remove it unless held.
				if base := strings.TrimSuffix(p, stageLockSuffix); !exists(base) {
					if l, err := lockStage(base); err == nil {
						os.Remove(p)
						l.release()
					}
				}
				continue
			}
			// A staging tree whose builder still runs (a long download)
			// holds its lock: it is not a leftover.
			lock, busy := tryStageLock(p)
			if busy {
				continue
			}
			if err := removeTree(p); err != nil {
				lock.release()
				return nil, err
			}
			lock.release()
			os.Remove(p + stageLockSuffix)
			res.Removed = append(res.Removed, p)
			logger(log).Info("removed leftover of an interrupted command", "path", p)
		}
	}
	return res, nil
}

// stageLockSuffix names the lock file beside a staging tree built outside
// the operation lock: its builder holds it exclusively while it works.
const stageLockSuffix = ".lock"

type stageLock struct{ lf *fsutil.LockFile }

// lockStage takes the lock of the staging tree at p, creating the lock file.
func lockStage(p string) (*stageLock, error) {
	lf, err := fsutil.OpenLock(p + stageLockSuffix)
	if err != nil {
		return nil, err
	}
	if err := lf.TryLock(true); err != nil {
		lf.Close()
		return nil, fmt.Errorf("staging %s is in use: %w", p, err)
	}
	return &stageLock{lf}, nil
}

// tryStageLock reports busy when a live builder holds the lock of p.
func tryStageLock(p string) (*stageLock, bool) {
	if _, err := os.Lstat(p + stageLockSuffix); err != nil {
		return nil, false // no lock file: built under the operation lock
	}
	l, err := lockStage(p)
	if err != nil {
		return nil, true
	}
	return l, false
}

func (s *stageLock) release() {
	if s != nil {
		s.lf.Close()
	}
}

// needsRecovery reports whether any leftover exists, without writing.
func (l *Layout) needsRecovery() bool {
	if exists(l.journalPath()) {
		return true
	}
	for _, dir := range []string{l.stagingDir(), l.trashDir(), l.restoringDir()} {
		if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

// recoverIfIdle is what read-only commands do first: clean up leftovers
// when no other command is running, and stay silent when that is impossible
// (another command runs, or the data dir is read-only to this user).
func (l *Layout) recoverIfIdle(ctx context.Context, log *slog.Logger) {
	if !l.needsRecovery() {
		return
	}
	op, ok := l.tryLockOp()
	if !ok {
		return
	}
	defer op.release()
	if _, err := l.recoverLocked(ctx, log); err != nil {
		logger(log).Warn("could not clean up leftovers of an interrupted command", "err", err)
	}
}

// removeTree removes a tree that hotsnap made. Its directories may carry the
// captured data's permission bits (0500, say), so they are made writable
// first; files are never chmodded, since a file may be a hard link shared
// with live data.
func removeTree(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	// WalkDir visits a directory before it reads it, so each one is opened up
	// before its entries are needed.
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			unix.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
