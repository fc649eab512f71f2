package freezer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/internal/proc"
)

// Ident names one process for good: its pid and its start time (field 22
// of /proc/PID/stat, in clock ticks since boot), so a pid the kernel has
// given to another process is never signalled.
type Ident struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Proc is a process held by a pidfd: signals sent through it reach that
// process or none, never one that reused its pid.
type Proc struct {
	Ident
	fd int
}

// OpenProc opens the process pid; with start > 0 it must be the process
// that started then (else the error wraps os.ErrNotExist).
func OpenProc(pid int, start uint64) (*Proc, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("process %d: %w", pid, os.ErrNotExist)
		}
		return nil, fmt.Errorf("process %d: pidfd_open: %w", pid, err)
	}
	// Read the start time after the pidfd is open: if it is the one
	// expected, the pidfd holds that process.
	st, err := proc.ReadStat(pid)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("process %d: %w", pid, os.ErrNotExist)
	}
	if start != 0 && st.Start != start {
		unix.Close(fd)
		return nil, fmt.Errorf("process %d: another process now has its pid: %w", pid, os.ErrNotExist)
	}
	return &Proc{Ident: Ident{Pid: pid, Start: st.Start}, fd: fd}, nil
}

// Signal sends sig to the process; a process that has exited is not an error.
func (p *Proc) Signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(p.fd, sig, nil, 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %v to process %d: %w", sig, p.Pid, err)
	}
	return nil
}

// Close closes the pidfd.
func (p *Proc) Close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

// stopped reports whether the process has stopped (or is gone).
func (p *Proc) stopped() bool {
	st, err := proc.ReadStat(p.Pid)
	if err != nil || st.Start != p.Start {
		return true // gone
	}
	switch st.State {
	case 'T', 't', 'Z', 'X', 'x':
		return true
	}
	return false
}

// children maps every process to its children (each with its start
// time, so a pid reused after the scan is not taken for the child), from
// /proc.
func children() (map[int][]Ident, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	m := make(map[int][]Ident)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := proc.ReadStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		m[st.PPid] = append(m[st.PPid], Ident{Pid: pid, Start: st.Start})
	}
	return m, nil
}

// Tree stops a process and all its descendants with SIGSTOP and resumes
// them with SIGCONT, for hosts without a cgroup freezer. Descendants of
// another user than the root process's (a setuid program it ran) are left
// running: only the application's own processes are stopped.
type Tree struct {
	Root  int
	procs []*Proc
	seen  map[int]bool
	uid   uint32 // the root process's
}

// Stopped lists the processes Stop stopped.
func (t *Tree) Stopped() []Ident {
	ids := make([]Ident, len(t.procs))
	for i, p := range t.procs {
		ids[i] = p.Ident
	}
	return ids
}

// Stop sends SIGSTOP to the root, then to its descendants, scanning again
// until a scan finds none it has not stopped (a process can fork until
// its parent is stopped), and waits until every one has stopped. Before
// it signals new processes it calls record with all it is about to have
// stopped, so that a crash leaves a record of them. Past deadline it
// resumes them all and returns ErrTimeout.
func (t *Tree) Stop(ctx context.Context, deadline time.Time, record func([]Ident) error) (err error) {
	defer func() {
		if err != nil {
			t.Cont()
		}
	}()
	t.seen = map[int]bool{}
	root, err := OpenProc(t.Root, 0)
	if err != nil {
		return err
	}
	if t.uid, err = UID(t.Root); err != nil {
		root.Close()
		return fmt.Errorf("process %d: %w", t.Root, err)
	}
	pending := []*Proc{root}
	for len(pending) > 0 {
		t.procs = append(t.procs, pending...)
		for _, p := range pending {
			t.seen[p.Pid] = true
		}
		if err := record(t.Stopped()); err != nil {
			return err
		}
		for _, p := range pending {
			if err := p.Signal(unix.SIGSTOP); err != nil {
				return err
			}
		}
		// Wait for them to stop: only a stopped parent cannot fork.
		if err := t.wait(ctx, deadline, pending); err != nil {
			return err
		}
		if pending, err = t.newDescendants(); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) wait(ctx context.Context, deadline time.Time, ps []*Proc) error {
	pause := 50 * time.Microsecond
	for _, p := range ps {
		for !p.stopped() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !time.Now().Before(deadline) {
				return ErrTimeout
			}
			time.Sleep(min(pause, time.Until(deadline)))
			pause = min(2*pause, 2*time.Millisecond)
		}
	}
	return nil
}

// newDescendants opens the descendants of the stopped processes not yet seen.
func (t *Tree) newDescendants() ([]*Proc, error) {
	kids, err := children()
	if err != nil {
		return nil, err
	}
	var out []*Proc
	queue := make([]int, 0, len(t.procs))
	for _, p := range t.procs {
		queue = append(queue, p.Pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range kids[pid] {
			if t.seen[c.Pid] {
				continue
			}
			t.seen[c.Pid] = true
			queue = append(queue, c.Pid)
			p, err := OpenProc(c.Pid, c.Start) // the very process the scan saw, or none
			if err != nil {
				continue // exited
			}
			if !sameUser(c.Pid, t.uid) {
				p.Close() // another user's (a setuid program), or gone: not ours to stop
				continue
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Cont sends SIGCONT to every stopped process, children first, and
// closes their pidfds.
func (t *Tree) Cont() error {
	var errs []error
	for i := len(t.procs) - 1; i >= 0; i-- {
		errs = append(errs, t.procs[i].Signal(unix.SIGCONT))
		t.procs[i].Close()
	}
	t.procs = nil
	return errors.Join(errs...)
}

// Parent is the pid of pid's parent.
func Parent(pid int) (int, error) {
	st, err := proc.ReadStat(pid)
	return st.PPid, err
}

// UID is the real uid of process pid (the Uid line of /proc/PID/status).
func UID(pid int) (uint32, error) {
	ids, err := uids(pid)
	return ids[0], err
}

// uids are the real, effective, saved and filesystem uids of process pid.
func uids(pid int) ([4]uint32, error) {
	var ids [4]uint32
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ids, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) != 4 {
				break
			}
			for i := range f {
				u, err := strconv.ParseUint(f[i], 10, 32)
				if err != nil {
					return ids, fmt.Errorf("/proc/%d/status: bad Uid line", pid)
				}
				ids[i] = uint32(u)
			}
			return ids, nil
		}
	}
	return ids, fmt.Errorf("/proc/%d/status: no Uid line", pid)
}

// sameUser reports whether every uid of process pid (real, effective,
// saved, filesystem) is uid: a setuid program the application ran is not.
func sameUser(pid int, uid uint32) bool {
	ids, err := uids(pid)
	return err == nil && ids == [4]uint32{uid, uid, uid, uid}
}
