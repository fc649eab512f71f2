package quiesce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot/freezer"
)

// WriterFiles is a Quiescer that stops the application's processes and,
// while they are stopped, can tell which files they can write to: those
// they hold open for writing or have mapped shared and writable (a WAL,
// an SST being flushed, SQLite's database and -shm). Capture copies (or,
// in reflink and auto modes, clones) those instead of linking them,
// whatever their names: the processes will go on writing to them in place
// once resumed, and a hard link would follow those writes.
type WriterFiles interface {
	Quiescer
	WritableFiles() (map[freezer.FileID]bool, error)
}

// Freeze stops every process of a cgroup at once with the
// kernel's freezer, for applications that know nothing of hotsnap: the
// snapshot is then exactly what a power cut at that instant would have
// left, which is what crash-safe storage engines recover from. Before it
// freezes it writes a thaw record (see thaw.go) that `hotsnap recover`
// uses should hotsnap be killed while the cgroup is frozen.
type Freeze struct {
	State  StateDir
	Cgroup freezer.Cgroup

	log  *thawLog
	held int // processes frozen by the last Quiesce
}

var _ WriterFiles = (*Freeze)(nil)

// Quiesce implements Quiescer.
func (q *Freeze) Quiesce(ctx context.Context, wait time.Duration) error {
	t, err := openThawLog(q.State)
	if err != nil {
		return fmt.Errorf("%w: thaw record: %v", ErrFailed, err)
	}
	if err := t.write(ThawRecord{Kind: q.Cgroup.Kind(), Path: q.Cgroup.Dir}); err != nil {
		t.done()
		return fmt.Errorf("%w: thaw record: %v", ErrFailed, err)
	}
	err = q.Cgroup.Freeze(ctx, time.Now().Add(wait))
	if err != nil {
		t.done()
		if errors.Is(err, freezer.ErrTimeout) {
			return errs.ErrLockTimeout
		}
		return fmt.Errorf("%w: %v", ErrFailed, err)
	}
	q.log = t
	if pids, err := q.Cgroup.Pids(); err == nil {
		q.held = len(pids)
	}
	return nil
}

// WritableFiles implements WriterFiles; call it while frozen.
func (q *Freeze) WritableFiles() (map[freezer.FileID]bool, error) {
	pids, err := q.Cgroup.Pids()
	if err != nil {
		return nil, err
	}
	return freezer.WritableFiles(pids)
}

// Resume implements Quiescer.
func (q *Freeze) Resume(context.Context) error {
	if err := q.Cgroup.Thaw(); err != nil {
		return fmt.Errorf("%w: %v (run `hotsnap recover` to try again)", ErrFailed, err)
	}
	err := q.log.done()
	q.log = nil
	return err
}

// Signal stops a process and its descendants with SIGSTOP and
// resumes them with SIGCONT, for hosts without a cgroup freezer. The
// process is named by a pid file. As root, hotsnap only signals a process
// owned by the pid file's owner (or any, when root owns the pid file), so
// a pid file the application's user can write cannot aim it at another
// user's processes; never pid 1 and never hotsnap or its ancestors. A
// process that forks a daemon which leaves the tree (a double fork) is
// not followed: prefer the freeze quiescer where there is a cgroup.
type Signal struct {
	State   StateDir
	PidFile string

	tree *freezer.Tree
	log  *thawLog
	held int // processes stopped by the last Quiesce
}

var _ WriterFiles = (*Signal)(nil)

// ReadPidFile reads a pid file and checks that the process may be stopped
// (see Signal).
func ReadPidFile(path string) (int, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	// No symlink in any component: a directory above the file swapped
	// for a symlink would aim hotsnap at another file.
	f, st, err := fsutil.OpenRegularPath(abs)
	if errors.Is(err, fsutil.ErrSymlink) {
		return 0, fmt.Errorf("%w: pid file %s: a component of its path is a symlink", errs.ErrUntrusted, path)
	}
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	defer f.Close()
	// The file is only as trusted as whoever may replace it: its owner,
	// and the owner of any directory above it.
	owner := st.UID
	dirs, err := fsutil.DirsOwner(abs)
	if err != nil {
		return 0, fmt.Errorf("%w: pid file %s: %v", errs.ErrUntrusted, path, err)
	}
	if owner == 0 {
		owner = dirs
	} else if dirs != 0 && dirs != owner {
		return 0, fmt.Errorf("%w: pid file %s is owned by uid %d in a directory of uid %d", errs.ErrUntrusted, path, owner, dirs)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s does not hold a pid (%q)", path, strings.TrimSpace(string(b)))
	}
	if pid == 1 {
		return 0, fmt.Errorf("pid file %s names pid 1 (init): refusing to stop it", path)
	}
	for p := os.Getpid(); p > 1; {
		if p == pid {
			return 0, fmt.Errorf("pid file %s names hotsnap itself or one of its ancestors (pid %d): refusing to stop it", path, pid)
		}
		if p, err = freezer.Parent(p); err != nil {
			break
		}
	}
	uid, err := freezer.UID(pid)
	if err != nil {
		return 0, fmt.Errorf("pid file %s names pid %d, which is not running", path, pid)
	}
	if owner != 0 && uid != owner {
		return 0, fmt.Errorf("%w: pid file %s can be written by uid %d but names pid %d of uid %d: refusing to stop another user's process", errs.ErrUntrusted, path, owner, pid, uid)
	}
	return pid, nil
}

// Quiesce implements Quiescer. The pid file is read again at every
// attempt: a restarted application has a new pid.
func (q *Signal) Quiesce(ctx context.Context, wait time.Duration) error {
	pid, err := ReadPidFile(q.PidFile)
	if err != nil {
		if errors.Is(err, errs.ErrUntrusted) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrFailed, err)
	}
	t, err := openThawLog(q.State)
	if err != nil {
		return fmt.Errorf("%w: thaw record: %v", ErrFailed, err)
	}
	tree := &freezer.Tree{Root: pid}
	err = tree.Stop(ctx, time.Now().Add(wait), func(ids []freezer.Ident) error {
		return t.write(ThawRecord{Kind: "signal", Procs: ids})
	})
	if err != nil {
		t.done() // Stop resumed whatever it had stopped
		if errors.Is(err, freezer.ErrTimeout) {
			return errs.ErrLockTimeout
		}
		return fmt.Errorf("%w: %v", ErrFailed, err)
	}
	q.tree, q.log, q.held = tree, t, len(tree.Stopped())
	return nil
}

// WritableFiles implements WriterFiles; call it while stopped.
func (q *Signal) WritableFiles() (map[freezer.FileID]bool, error) {
	ids := q.tree.Stopped()
	pids := make([]int, len(ids))
	for i, id := range ids {
		pids[i] = id.Pid
	}
	return freezer.WritableFiles(pids)
}

// Resume implements Quiescer.
func (q *Signal) Resume(context.Context) error {
	err := q.tree.Cont()
	if err != nil {
		return fmt.Errorf("%w: %v (run `hotsnap recover` to try again)", ErrFailed, err)
	}
	err = q.log.done()
	q.tree, q.log = nil, nil
	return err
}
