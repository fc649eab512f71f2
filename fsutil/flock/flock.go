// Package flock is flock(2) on a file of its own: the primitive of the
// write-gate protocol (snapshot/writegate) and of hotsnap's own locks. A
// leaf on the standard library alone (syscall.Flock, not x/sys): an
// application that imports the write gate pulls in nothing else.
package flock

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// ErrWouldBlock is returned by TryLock when another open file description
// holds a conflicting lock.
var ErrWouldBlock = errors.New("lock is held by another process")

// File is an open file used only for flock(2). Each File is its own
// open file description, so two Files on the same path conflict even
// inside one process.
type File struct {
	f *os.File
}

// Open opens (creating when missing, mode 0666 before umask so writers
// running as other users can share it) the lock file at path.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	return &File{f: f}, nil
}

// New uses the open file f for flock(2); the File owns it.
func New(f *os.File) *File { return &File{f: f} }

// Path is the lock file's path.
func (l *File) Path() string { return l.f.Name() }

// TryLock takes the lock without waiting: exclusive or shared. It returns
// ErrWouldBlock when a conflicting lock is held.
func (l *File) TryLock(exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(l.f.Fd()), how|syscall.LOCK_NB)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EWOULDBLOCK {
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
func (l *File) LockUntil(ctx context.Context, exclusive bool, deadline time.Time) error {
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
func (l *File) Lock(ctx context.Context, exclusive bool) error {
	return l.LockUntil(ctx, exclusive, time.Now().Add(100*365*24*time.Hour))
}

// Unlock releases the lock (the file stays open for reuse).
func (l *File) Unlock() error {
	return syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
}

// Close releases any lock and closes the file.
func (l *File) Close() error {
	return l.f.Close()
}
