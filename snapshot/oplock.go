package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
)

// DefaultOpLockWait is how long a mutating command waits for another one on
// the same data dir to finish before failing with ErrBusy.
var DefaultOpLockWait = 60 * time.Second

// opLock serialises mutating commands on one data dir. The holder's pid is
// written into the file for the busy message.
type opLock struct {
	lf *fsutil.LockFile
}

func (l *Layout) lockOp(ctx context.Context, wait time.Duration) (*opLock, error) {
	if err := os.MkdirAll(l.StateDir, 0o755); err != nil {
		return nil, err
	}
	lf, err := fsutil.OpenLock(filepath.Join(l.StateDir, opLockName))
	if err != nil {
		return nil, err
	}
	if err := lf.LockUntil(ctx, true, time.Now().Add(wait)); err != nil {
		lf.Close()
		if err == fsutil.ErrWouldBlock {
			holder, _ := os.ReadFile(filepath.Join(l.StateDir, opLockName))
			return nil, fmt.Errorf("%w (waited %s; holder pid %s)", ErrBusy, wait, strings.TrimSpace(string(holder)))
		}
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(l.StateDir, opLockName), os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		f.Close()
	}
	return &opLock{lf: lf}, nil
}

// tryLockOp takes the operation lock only if it is free at once.
func (l *Layout) tryLockOp() (*opLock, bool) {
	lf, err := fsutil.OpenLock(filepath.Join(l.StateDir, opLockName))
	if err != nil {
		return nil, false
	}
	if lf.TryLock(true) != nil {
		lf.Close()
		return nil, false
	}
	return &opLock{lf: lf}, true
}

func (o *opLock) release() {
	if o != nil && o.lf != nil {
		o.lf.Close()
	}
}
