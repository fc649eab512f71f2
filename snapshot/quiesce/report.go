package quiesce

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// Report says what a create's quiescer stopped: its mode, how many
// processes it held (flock: those that had the write gate open; freeze
// and signal: those frozen or stopped), and for exec and http the command
// or URL that answered. The JSON form is create's `quiesced`.
type Report struct {
	Mode      string `json:"mode"`
	Processes int    `json:"processes"`
	Target    string `json:"target,omitempty"`
}

// Reporter is a Quiescer that says what it stopped; call Report after a
// successful Quiesce (and Resume: it may look around then, so as not to
// lengthen the pause).
type Reporter interface {
	Report() Report
}

// Report implements Reporter: the processes, other than this one, that
// have the gate or write lock open now (a writer using the gate keeps both
// open). As another user than root only that user's processes are seen.
func (q *Flock) Report() Report {
	r := Report{Mode: "flock"}
	if q.state == nil {
		return r
	}
	want := map[[2]uint64]bool{}
	for _, name := range []string{writegate.GateLockName, writegate.WriteLockName} {
		if st, err := q.state.Lstat(name); err == nil {
			want[[2]uint64{st.Dev, st.Ino}] = true
		}
	}
	r.Processes = processesWithOpen(want)
	return r
}

// processesWithOpen counts the processes other than this one that hold a
// descriptor of one of the files want names (dev, ino), from /proc.
func processesWithOpen(want map[[2]uint64]bool) int {
	if len(want) == 0 {
		return 0
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			var st unix.Stat_t
			if unix.Stat(dir+fd.Name(), &st) == nil && want[[2]uint64{uint64(st.Dev), st.Ino}] {
				n++
				break
			}
		}
	}
	return n
}

// Report implements Reporter.
func (q *Exec) Report() Report {
	return Report{Mode: "exec", Target: q.LockCmd}
}

// Report implements Reporter.
func (q *HTTP) Report() Report {
	return Report{Mode: "http", Target: q.LockURL}
}

// Report implements Reporter.
func (q *Freeze) Report() Report {
	return Report{Mode: "freeze", Processes: q.held, Target: q.Cgroup.Dir}
}

// Report implements Reporter.
func (q *Signal) Report() Report {
	return Report{Mode: "signal", Processes: q.held, Target: q.PidFile}
}

// Report implements Reporter.
func (None) Report() Report { return Report{Mode: "none"} }
