package quiesce

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil/flock"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot/freezer"
)

// Thaw records (docs/DESIGN.md, "Quiescers that stop processes"): the
// freeze and signal quiescers stop the application's processes, and a
// hotsnap killed while they are stopped would leave them stopped for
// good. So before it stops anything such a quiescer writes what it is
// about to stop to <private>/thaw.<pid>.<n>.json and holds an exclusive
// flock on that file until it has resumed them and removed it. Recover
// (run by `hotsnap recover` and at the start of every command that
// changes things) thaws what a record names whose lock nobody holds: its
// writer is dead. A record lives in the private state dir, which only
// the invoking user may write, so it is never another user's say-so.

const thawPrefix = "thaw."

// ThawRecord names what a quiescer stopped.
type ThawRecord struct {
	// Kind is "cgroup2" (Path/cgroup.freeze), "cgroup1" (Path/freezer.state)
	// or "signal" (Procs got SIGSTOP).
	Kind  string          `json:"kind"`
	Path  string          `json:"path,omitempty"`
	Procs []freezer.Ident `json:"procs,omitempty"`
}

// thawLog is a quiescer's record file, locked while it exists.
type thawLog struct {
	lf   *flock.File
	f    *os.File
	priv *fsutil.Dir
	name string
}

// openThawLog creates a new, locked record file in the state dir.
func openThawLog(state StateDir) (*thawLog, error) {
	if state == nil {
		return nil, fmt.Errorf("%w: a quiescer that stops processes needs a state dir (for its thaw record)", errs.ErrInvalid)
	}
	priv, err := state()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s%d.%08x.json", thawPrefix, os.Getpid(), fsutil.RandUint32())
	f, err := priv.OpenFile(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		priv.Close()
		return nil, err
	}
	lf := flock.New(f)
	if err := lf.TryLock(true); err != nil {
		lf.Close()
		priv.Remove(name)
		priv.Close()
		return nil, err
	}
	return &thawLog{lf: lf, f: f, priv: priv, name: name}, nil
}

// write replaces the record's content, durably, before the caller stops
// what it names.
func (t *thawLog) write(r ThawRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := t.f.Truncate(0); err != nil {
		return err
	}
	if _, err := t.f.WriteAt(b, 0); err != nil {
		return err
	}
	if err := t.f.Sync(); err != nil {
		return err
	}
	return t.priv.Sync()
}

// done removes the record (everything it names runs again) and unlocks it.
func (t *thawLog) done() error {
	if t == nil {
		return nil
	}
	err := t.priv.Remove(t.name)
	t.lf.Close()
	t.priv.Close()
	return err
}

// RecoverThaws thaws what the records of dead quiescers in the state dir
// priv name, and removes them. It returns a line per record thawed.
func RecoverThaws(priv *fsutil.Dir, log *slog.Logger) ([]string, error) {
	names, err := priv.Names(".")
	if err != nil {
		return nil, err
	}
	var thawed []string
	for _, n := range names {
		if !strings.HasPrefix(n, thawPrefix) || !strings.HasSuffix(n, ".json") {
			continue
		}
		f, _, err := priv.OpenRegular(n)
		if err != nil {
			return nil, fmt.Errorf("thaw record %s: %w", priv.Join(n), err)
		}
		lf := flock.New(f)
		if lf.TryLock(true) != nil {
			lf.Close() // a live quiescer holds it
			continue
		}
		b, err := io.ReadAll(io.LimitReader(f, 1<<20))
		var r ThawRecord
		if err == nil && len(b) > 0 {
			err = json.Unmarshal(b, &r)
		}
		if err == nil && len(b) > 0 {
			if terr := r.thaw(); terr != nil {
				lf.Close()
				return thawed, fmt.Errorf("thaw what a killed hotsnap stopped (record %s): %w", priv.Join(n), terr)
			}
			thawed = append(thawed, r.String())
			log.Warn("resumed processes that a killed hotsnap had stopped", "what", r.String())
		}
		// An empty or torn record was never acted on: it is written and
		// synced before anything is stopped.
		priv.Remove(n)
		lf.Close()
	}
	return thawed, nil
}

func (r ThawRecord) String() string {
	switch r.Kind {
	case "signal":
		pids := make([]string, len(r.Procs))
		for i, p := range r.Procs {
			pids[i] = strconv.Itoa(p.Pid)
		}
		return "SIGCONT to pid " + strings.Join(pids, ",")
	default:
		return r.Kind + " " + r.Path
	}
}

// thaw resumes what r names. Processes gone, or pids reused, are skipped.
func (r ThawRecord) thaw() error {
	switch r.Kind {
	case "cgroup2", "cgroup1":
		return freezer.Cgroup{Dir: r.Path, V1: r.Kind == "cgroup1"}.Thaw()
	case "signal":
		var errs []error
		for _, p := range r.Procs {
			pr, err := freezer.OpenProc(p.Pid, p.Start)
			if err != nil {
				continue // gone: nothing to resume
			}
			errs = append(errs, pr.Signal(unix.SIGCONT))
			pr.Close()
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("unknown kind %q", r.Kind)
}
