package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/fsutil/flock"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// DefaultOpLockWait is how long a mutating command waits for another one on
// the same data dir to finish before failing with ErrBusy.
var DefaultOpLockWait = 60 * time.Second

// session is one command's hold on a data dir: the directories it works
// through, opened once and checked, and for a command that changes
// anything the operation lock. Nothing below the data dir is ever reached
// by a path string (docs/DESIGN.md, "Paths").
type session struct {
	l    *Layout
	log  *slog.Logger
	data *fsutil.Dir
	// priv is hotsnap's private state dir (nil for a read-only command
	// when it does not exist).
	priv *fsutil.Dir
	// backups is nil for a read-only command when there is no backups dir.
	backups *fsutil.Dir
	op      *opLock
	// recovered is what the session's recovery did (write sessions).
	recovered *RecoverResult
}

// openSession opens the data dir and the backups dir. With write it also
// creates what is missing, opens the private state dir, takes the
// operation lock and recovers from any crashed command: the commands that
// may recover are exactly the ones that change things (see Recover). A
// read-only session opens what exists, never writes, and never looks at
// hotsnap's private state.
func (l *Layout) openSession(ctx context.Context, log *slog.Logger, write bool) (_ *session, err error) {
	s := &session{l: l, log: logger(log)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.data, err = l.openData(); err != nil {
		return nil, err
	}
	if write {
		if err := l.checkFilesystems(); err != nil {
			return nil, err
		}
	}
	if write {
		if s.priv, err = l.openPrivate(s.data, true); err != nil {
			return nil, err
		}
		if err := sameFilesystem(s.data, s.priv, "the private state dir"); err != nil {
			return nil, err
		}
		if s.op, err = lockOp(ctx, s.priv, DefaultOpLockWait); err != nil {
			return nil, err
		}
		if err := checkLegacyState(s.data); err != nil {
			return nil, err
		}
	}
	if s.backups, err = l.openBackups(s.data, write); err != nil {
		if write || !isNotExist(err) {
			return nil, err
		}
		s.backups = nil
	}
	if write {
		if _, err := s.recoverLocked(ctx); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
	}
	return s, nil
}

func (s *session) close() {
	if s == nil {
		return
	}
	s.op.release()
	s.op = nil
	for _, d := range []*fsutil.Dir{s.backups, s.priv, s.data} {
		d.Close()
	}
}

// checkLegacyState refuses a restore journal in the shared state dir,
// where hotsnap 0.1 kept it: hotsnap never acts on state another user
// could have written, but an old hotsnap's interrupted restore must not be
// ignored silently either.
func checkLegacyState(data *fsutil.Dir) error {
	const legacy = ".hotsnap/restore.journal"
	if _, err := data.Lstat(legacy); err == nil {
		return fmt.Errorf("%w: %s exists: hotsnap keeps its restore journal in %s/ since version 0.2 and never acts on state that other users can write; if hotsnap 0.1 was interrupted during a restore, finish it with that version's `hotsnap recover`; otherwise remove the file (it was not used)",
			ErrUntrusted, data.Join(legacy), data.Join(".hotsnap/"+privateName))
	}
	return nil
}

// opLock serialises mutating commands on one data dir. The holder's pid is
// written into the file for the busy message.
type opLock struct {
	lf *flock.File
}

// lockOp takes the operation lock in the private state dir, waiting up to wait.
func lockOp(ctx context.Context, priv *fsutil.Dir, wait time.Duration) (*opLock, error) {
	f, err := priv.OpenFile(opLockName, unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		return nil, err
	}
	lf := flock.New(f)
	if err := lf.LockUntil(ctx, true, time.Now().Add(wait)); err != nil {
		var holder [32]byte
		n, _ := f.ReadAt(holder[:], 0)
		lf.Close()
		if err == flock.ErrWouldBlock {
			return nil, fmt.Errorf("%w (waited %s; holder pid %s)", ErrBusy, wait, strings.TrimSpace(string(holder[:n])))
		}
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &opLock{lf: lf}, nil
}

func (o *opLock) release() {
	if o != nil && o.lf != nil {
		o.lf.Close()
	}
}

// readSmall reads a state file of at most limit bytes: state files are
// parsed as untrusted input, so their size is bounded before reading.
func readSmall(f *os.File, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("larger than any state file hotsnap writes")
	}
	return b, nil
}
