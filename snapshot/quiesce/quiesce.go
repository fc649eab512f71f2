package quiesce

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil/flock"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// Quiescer stops an application's writes for the moment a snapshot is taken.
type Quiescer interface {
	// Quiesce blocks new writes and waits for in-flight ones to finish, for
	// at most wait. It returns errs.ErrLockTimeout when writes could not be
	// drained in time, having released everything so that writes continue;
	// any other error is a failure that retrying will not fix.
	Quiesce(ctx context.Context, wait time.Duration) error
	// Resume lets writes continue. It is called once after a successful Quiesce.
	Resume(ctx context.Context) error
}

// None is for data that is already quiet (a stopped application).
type None struct{}

func (None) Quiesce(context.Context, time.Duration) error { return nil }
func (None) Resume(context.Context) error                 { return nil }

// Flock is the snapshot's side of the write-gate protocol (see
// package writegate): gate.lock exclusively, then write.lock exclusively.
//
// The lock files live in <data-dir>/.hotsnap, where the application's
// user may write: they are reached through the data dir's descriptor
// with no symlink followed, opened read-only (flock needs no more) and
// only if they are regular files with one link. Lock files hotsnap
// creates get the data dir's owner and group and mode 0660, so the
// application's writers can take their shared locks; an existing one is
// never chowned or chmodded (it might be someone's hard link).
type Flock struct {
	DataDir string
	// Force leaves <state-dir>/force-requested while waiting, which writers
	// can check (Tx.AbortRequested) to abort long transactions.
	Force bool

	state       *fsutil.Dir
	gate, write *flock.File
}

var _ Quiescer = (*Flock)(nil)

func (q *Flock) open() error {
	if q.gate != nil {
		return nil
	}
	data, err := fsutil.OpenDir(q.DataDir)
	if err != nil {
		return err
	}
	defer data.Close()
	owner, err := data.Stat()
	if err != nil {
		return err
	}
	state, err := OpenStateDir(data, true)
	if err != nil {
		return err
	}
	g, err := openGateLock(state, writegate.GateLockName, owner)
	if err != nil {
		state.Close()
		return err
	}
	w, err := openGateLock(state, writegate.WriteLockName, owner)
	if err != nil {
		g.Close()
		state.Close()
		return err
	}
	q.state, q.gate, q.write = state, g, w
	return nil
}

// OpenStateDir opens the data dir's shared state dir (.hotsnap), where the
// write gate's lock files live, creating it (0755) with create.
func OpenStateDir(data *fsutil.Dir, create bool) (*fsutil.Dir, error) {
	if create {
		err := data.Mkdir(writegate.StateDirName, 0o755)
		if err == nil {
			err = data.Sync()
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	d, err := data.OpenDir(writegate.StateDirName)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return d, nil
}

// openGateLock opens (creating when missing) one lock file of the
// write-gate protocol in the shared state dir.
func openGateLock(state *fsutil.Dir, name string, owner fsutil.Stat) (*flock.File, error) {
	f, err := state.OpenFile(name, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL, 0o660)
	if err == nil {
		// Ours: the data dir's owner and group may open it (owner first,
		// then the mode), others may not.
		if err := fsutil.SetOwnerMode(int(f.Fd()), owner.UID, owner.GID, 0o660); err != nil {
			f.Close()
			return nil, err
		}
		return flock.New(f), nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	f, st, err := state.OpenRegular(name)
	if err != nil {
		return nil, fmt.Errorf("%w: lock file: %v (remove it: hotsnap creates it again)", errs.ErrUntrusted, err)
	}
	if st.Nlink != 1 {
		f.Close()
		return nil, fmt.Errorf("%w: lock file %s has %d links: it may be a hard link to another file; remove it (hotsnap creates it again)", errs.ErrUntrusted, f.Name(), st.Nlink)
	}
	return flock.New(f), nil
}

// Quiesce implements Quiescer.
func (q *Flock) Quiesce(ctx context.Context, wait time.Duration) error {
	if err := q.open(); err != nil {
		if errors.Is(err, errs.ErrUntrusted) {
			return err
		}
		return fmt.Errorf("%w: open lock files: %v", ErrFailed, err)
	}
	if q.Force {
		// Whatever stands at the name is replaced by a new empty file of
		// ours (O_EXCL, never through a symlink).
		if err := q.state.Remove(writegate.ForceName); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		f, err := q.state.OpenFile(writegate.ForceName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		f.Close()
		defer q.state.Remove(writegate.ForceName)
	}
	deadline := time.Now().Add(wait)
	if err := q.gate.LockUntil(ctx, true, deadline); err != nil {
		if err == flock.ErrWouldBlock {
			return errs.ErrLockTimeout
		}
		return err
	}
	if err := q.write.LockUntil(ctx, true, deadline); err != nil {
		q.gate.Unlock()
		if err == flock.ErrWouldBlock {
			return errs.ErrLockTimeout
		}
		return err
	}
	return nil
}

// Resume implements Quiescer: write.lock first, then the gate, so a writer
// let through the gate never finds write.lock still held.
func (q *Flock) Resume(context.Context) error {
	err1 := q.write.Unlock()
	err2 := q.gate.Unlock()
	return errors.Join(err1, err2)
}

// Close closes the lock files.
func (q *Flock) Close() error {
	if q.gate == nil {
		return nil
	}
	q.gate.Close()
	q.write.Close()
	q.state.Close()
	q.gate, q.write, q.state = nil, nil, nil
	return nil
}

// ExitTempFail is the exit status (EX_TEMPFAIL) a lock command uses to say
// "could not drain writes in time, try again with a longer period".
const ExitTempFail = 75

// Exec runs commands (through sh -c) to lock and unlock the
// application. The lock command gets HOTSNAP_LOCK_TIMEOUT_MS (the period),
// HOTSNAP_DATA_DIR and, with Force, HOTSNAP_FORCE=1. It exits 0 when writes
// are stopped, 75 when they could not be stopped within the period (hotsnap
// retries with a longer one), anything else on failure (hotsnap gives up).
// A lock command still running after the period is killed and counts as 75.
type Exec struct {
	LockCmd, UnlockCmd string
	DataDir            string
	Force              bool
	// UnlockTimeout bounds the unlock command; 0 means 30s.
	UnlockTimeout time.Duration
}

var _ Quiescer = (*Exec)(nil)

func (q *Exec) run(ctx context.Context, cmdline string, timeout time.Duration) (ShellResult, error) {
	env := []string{"HOTSNAP_LOCK_TIMEOUT_MS=" + strconv.FormatInt(timeout.Milliseconds(), 10), "HOTSNAP_DATA_DIR=" + q.DataDir}
	if q.Force {
		env = append(env, "HOTSNAP_FORCE=1")
	}
	return Shell(ctx, cmdline, timeout, env, false)
}

// Quiesce implements Quiescer.
func (q *Exec) Quiesce(ctx context.Context, wait time.Duration) error {
	r, err := q.run(ctx, q.LockCmd, wait)
	if err != nil {
		return fmt.Errorf("%w: lock command: %v", ErrFailed, err)
	}
	if r.Code == 0 && !r.TimedOut {
		return nil
	}
	if r.TimedOut || r.Code == ExitTempFail {
		// Whatever the command managed to lock, let it go before retrying.
		q.run(context.WithoutCancel(ctx), q.UnlockCmd, q.unlockTimeout())
		return errs.ErrLockTimeout
	}
	if r.Output != "" {
		return fmt.Errorf("%w: lock command %q exited with status %d: %s", ErrFailed, q.LockCmd, r.Code, r.Output)
	}
	return fmt.Errorf("%w: lock command %q exited with status %d", ErrFailed, q.LockCmd, r.Code)
}

func (q *Exec) unlockTimeout() time.Duration {
	if q.UnlockTimeout > 0 {
		return q.UnlockTimeout
	}
	return 30 * time.Second
}

// Resume implements Quiescer.
func (q *Exec) Resume(ctx context.Context) error {
	r, err := q.run(ctx, q.UnlockCmd, q.unlockTimeout())
	switch {
	case err != nil:
		return fmt.Errorf("%w: unlock command: %v", ErrFailed, err)
	case r.TimedOut:
		return fmt.Errorf("%w: unlock command %q did not finish within %s", ErrFailed, q.UnlockCmd, q.unlockTimeout())
	case r.Code != 0:
		return fmt.Errorf("%w: unlock command %q exited with status %d: %s", ErrFailed, q.UnlockCmd, r.Code, r.Output)
	}
	return nil
}

// Policy is the retry loop around a Quiescer (docs/DESIGN.md, Create).
type Policy struct {
	// MaxWait is the total time spent trying; 0 means defaults.MaxWaitForLock.
	MaxWait time.Duration
	// InitialPeriod is the first attempt's period; each failed attempt
	// grows it by 10 %. 0 means defaults.LockPeriod.
	InitialPeriod time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.MaxWait <= 0 {
		p.MaxWait = defaults.MaxWaitForLock
	}
	if p.InitialPeriod <= 0 {
		p.InitialPeriod = defaults.LockPeriod
	}
	return p
}

// Stats describes how the lock was obtained.
type Stats struct {
	Attempts int
	// Waited is the time spent in failed attempts (writes were blocked at
	// the gate for part of it).
	Waited time.Duration
	// Acquired is when the successful attempt started: writes have been
	// held back since at most this instant.
	Acquired time.Time
}

// Acquire runs q.Quiesce in periods growing by 10 % until it succeeds or
// MaxWait is spent (errs.ErrLockTimeout). Hard failures end it at once. An
// attempt refused before its period ended (a lock command that says "not
// now" at once) waits out the rest of its period before the next, so the
// attempts in MaxWait are bounded by the periods, never a spin.
func Acquire(ctx context.Context, q Quiescer, p Policy) (Stats, error) {
	p = p.withDefaults()
	start := time.Now()
	period := p.InitialPeriod
	var st Stats
	for {
		remaining := p.MaxWait - time.Since(start)
		if remaining <= 0 {
			st.Waited = time.Since(start)
			return st, fmt.Errorf("%w: gave up after %d attempt(s) in %s (--max-wait-for-lock); a long write transaction may be running", errs.ErrLockTimeout, st.Attempts, st.Waited.Round(time.Millisecond))
		}
		try := min(period, remaining)
		st.Attempts++
		at := time.Now()
		err := q.Quiesce(ctx, try)
		if err == nil {
			st.Acquired = at
			st.Waited = at.Sub(start)
			return st, nil
		}
		if !errors.Is(err, errs.ErrLockTimeout) {
			return st, err
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if rest := try - time.Since(at); rest > 0 {
			t := time.NewTimer(rest)
			select {
			case <-ctx.Done():
				t.Stop()
				return st, ctx.Err()
			case <-t.C:
			}
		}
		period = period + period/10
	}
}

// Held resumes a quiesced Quiescer exactly once: where the code says
// so, or, deferred, when the code between panics or returns early, so a
// bug of ours never leaves the application's writes (or its frozen
// processes) stopped.
type Held struct {
	ctx  context.Context
	q    Quiescer
	done bool
}

// Hold is q, quiesced: Resume it once (a deferred Resume after the
// explicit one does nothing). It resumes with ctx's values but without
// its cancellation, so an interrupt still lets writes continue.
func Hold(ctx context.Context, q Quiescer) *Held {
	return &Held{ctx: context.WithoutCancel(ctx), q: q}
}

func (r *Held) Resume() error {
	if r == nil || r.done {
		return nil
	}
	r.done = true
	return r.q.Resume(r.ctx)
}
