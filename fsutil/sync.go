package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// SyncDir fsyncs a directory so that the creation, removal or rename of an
// entry inside it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// MkdirAllSync creates dir and any missing parents, fsyncing each parent
// whose content changed.
func MkdirAllSync(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAllSync(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !os.IsExist(err) {
		return err
	}
	return SyncDir(parent)
}

// Writeback starts the writeback of a filesystem's dirty data in the
// background while a caller still writes to it, so that the syncfs that
// makes its work durable at the end finds little left. A tree of small
// files written into the page cache is otherwise written out only then
// (the kernel's own writeback waits for far more dirty memory than a
// download of a few hundred megabytes makes, or for half a minute), with
// the CPUs idle while the disk works.
type Writeback struct {
	fd   int
	mu   sync.Mutex
	busy bool
	done chan struct{}
}

// NewWriteback returns a Writeback of the filesystem that holds d; d must
// stay open until Wait returns.
func NewWriteback(d *Dir) *Writeback { return &Writeback{fd: d.fd} }

// Kick starts a syncfs of the filesystem in the background unless one is
// already running. Its error is dropped: the caller's own syncfs at the
// end reports what fails.
func (w *Writeback) Kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy {
		return
	}
	w.busy, w.done = true, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		_ = unix.Syncfs(w.fd)
		w.mu.Lock()
		w.busy = false
		w.mu.Unlock()
	}(w.done)
}

// Wait waits for the running syncfs, if any.
func (w *Writeback) Wait() {
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}
