package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hotsnap/hotsnap/fsutil/flock"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// RecoverResult says what Recover cleaned up.
type RecoverResult struct {
	// Removed lists leftovers of crashed commands that were deleted.
	Removed []string `json:"removed"`
	// Restore says what happened to an interrupted restore, if any.
	Restore string `json:"restore,omitempty"`
	// Thawed lists processes a killed hotsnap had stopped (the freeze and
	// signal quiescers) and that were let go again.
	Thawed []string `json:"thawed,omitempty"`
}

// Recover brings the data dir back to a clean state after a crash: an
// interrupted restore is rolled forward (or back, when it cannot be
// finished), so the data dir is either the old state or the restored one,
// never a mix; half-built snapshots (staging), half-deleted ones (trash),
// half-built restore trees (restoring) and temp files are removed.
//
// Only commands that change the data dir or its snapshots recover (create,
// delete, prune, restore, revert, download, recover), each under the
// operation lock and from hotsnap's private state dir alone. Read-only
// commands (list, verify, usage, restore --dry-run, upload) never do.
func Recover(ctx context.Context, l *Layout, log *slog.Logger) (*RecoverResult, error) {
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.recovered, nil
}

// recoverLocked does the work of Recover; the session holds the operation lock.
func (s *session) recoverLocked(ctx context.Context) (*RecoverResult, error) {
	res := &RecoverResult{Removed: []string{}}
	msg, err := s.recoverJournal()
	if err != nil {
		return nil, err
	}
	res.Restore = msg
	if res.Thawed, err = quiesce.RecoverThaws(s.priv, s.log); err != nil {
		return nil, err
	}
	names, err := s.priv.Names(".")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if fsutil.IsTempName(n) {
			if err := s.priv.Remove(n); err != nil {
				return nil, err
			}
			res.Removed = append(res.Removed, s.priv.Join(n))
		}
	}
	for _, dir := range []string{stagingName, trashName, restoringName} {
		ents, err := s.priv.Names(dir)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rel := dir + "/" + e
			if strings.HasSuffix(e, stageLockSuffix) {
				// A lock file whose tree is gone: remove it unless held.
				if base := strings.TrimSuffix(rel, stageLockSuffix); !s.priv.Exists(base) {
					if sl, err := s.lockStage(base); err == nil {
						s.priv.Remove(rel)
						sl.release()
					}
				}
				continue
			}
			// A staging tree whose builder still runs (a long download)
			// holds its lock: it is not a leftover.
			lock, busy := s.tryStageLock(rel)
			if busy {
				continue
			}
			err := s.priv.RemoveAll(rel)
			lock.release()
			if err != nil {
				return nil, err
			}
			s.priv.Remove(rel + stageLockSuffix)
			res.Removed = append(res.Removed, s.priv.Join(rel))
			s.log.Info("removed leftover of an interrupted command", "path", s.priv.Join(rel))
		}
	}
	s.recovered = res
	return res, nil
}

// stageLockSuffix names the lock file beside a staging tree built outside
// the operation lock: its builder holds it exclusively while it works.
const stageLockSuffix = ".lock"

type stageLock struct{ lf *flock.File }

// lockStage takes the lock of the staging tree rel (in the private state
// dir), creating the lock file.
func (s *session) lockStage(rel string) (*stageLock, error) {
	f, err := s.priv.OpenFile(rel+stageLockSuffix, unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		return nil, err
	}
	lf := flock.New(f)
	if err := lf.TryLock(true); err != nil {
		lf.Close()
		return nil, fmt.Errorf("staging %s is in use: %w", s.priv.Join(rel), err)
	}
	return &stageLock{lf}, nil
}

// tryStageLock reports busy when a live builder holds the lock of rel.
func (s *session) tryStageLock(rel string) (*stageLock, bool) {
	if !s.priv.Exists(rel + stageLockSuffix) {
		return nil, false // no lock file: built under the operation lock
	}
	l, err := s.lockStage(rel)
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

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
