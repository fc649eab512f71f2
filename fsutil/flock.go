package fsutil

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is returned by TryLock when another open file description
// holds a conflicting lock.
var ErrWouldBlock = errors.New("lock is held by another process")

// LockFile is an open file used only for flock(2). Each LockFile is its own
// open file description, so two LockFiles on the same path conflict even
// inside one process.
type LockFile struct {
	f *os.File
}

// OpenLock opens (creating when missing, mode 0666 before umask so writers
// running as other users can share it) the lock file at path.
func OpenLock(path string) (*LockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	return &LockFile{f: f}, nil
}

// NewLockFile uses the open file f for flock(2); the LockFile owns it.
func NewLockFile(f *os.File) *LockFile { return &LockFile{f: f} }

// Path is the lock file's path.
func (l *LockFile) Path() string { return l.f.Name() }

// TryLock takes the lock without waiting: exclusive or shared. It returns
// ErrWouldBlock when a conflicting lock is held.
func (l *LockFile) TryLock(exclusive bool) error {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(l.f.Fd()), how|unix.LOCK_NB)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EWOULDBLOCK {
			return ErrWouldBlock
		}
		if err != nil {
			return &os.PathError{Op: "flock", Path: l.f.Name(), Err: err}
		}
		return nil
	}
}

// LockUntil polls TryLock until it succeeds, the deadline passes (ErrWouldBlock)
// or ctx ends. Polling starts at 50µs and grows to 2ms, so a lock freed by a
// short writer is taken within about a millisecond.
func (l *LockFile) LockUntil(ctx context.Context, exclusive bool, deadline time.Time) error {
	sleep := 50 * time.Microsecond
	for {
		err := l.TryLock(exclusive)
		if err != ErrWouldBlock {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := time.Now()
		if !now.Before(deadline) {
			return ErrWouldBlock
		}
		d := sleep
		if rest := deadline.Sub(now); d > rest {
			d = rest
		}
		time.Sleep(d)
		if sleep < 2*time.Millisecond {
			sleep *= 2
		}
	}
}

// Lock takes the lock, waiting as long as needed; it can be cancelled through ctx.
func (l *LockFile) Lock(ctx context.Context, exclusive bool) error {
	return l.LockUntil(ctx, exclusive, time.Now().Add(100*365*24*time.Hour))
}

// Unlock releases the lock (the file stays open for reuse).
func (l *LockFile) Unlock() error {
	return unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
}

// Close releases any lock and closes the file.
func (l *LockFile) Close() error {
	return l.f.Close()
}
