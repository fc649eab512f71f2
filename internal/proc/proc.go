// Package proc reads what hotsnap needs of /proc: a process's parent,
// state and start time, and a holder's identity (host, boot, pid
// namespace, pid, start time) that tells a lock or registration whose
// holder died from one whose holder still runs. It is not a process
// manager: it signals nothing (snapshot/freezer does).
package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Stat is what hotsnap reads of /proc/PID/stat.
type Stat struct {
	PPid  int
	State byte   // R, S, D, T, t, Z, X, ...
	Start uint64 // field 22: start time in clock ticks since boot
}

// ReadStat parses /proc/PID/stat: "pid (comm) state ppid ... starttime".
// A pid that does not exist is an error wrapping os.ErrNotExist.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return Stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return Stat{PPid: ppid, State: f[0][0], Start: start}, nil
}

// Holder names a process for good, wherever it ran: a lock or a
// registration records its holder so that another process can tell a
// holder that died from one that still runs.
type Holder struct {
	Host  string `json:"host"`
	Boot  string `json:"boot,omitempty"`  // the kernel's boot id: a reboot makes every earlier holder of this host dead
	PidNS uint64 `json:"pidns,omitempty"` // the pid namespace's inode: pids of another namespace say nothing here
	Pid   int    `json:"pid"`
	Start uint64 `json:"start,omitempty"` // the pid's start time: a reused pid is another process
}

var (
	selfOnce sync.Once
	self     Holder
)

// Self is this process.
func Self() Holder {
	selfOnce.Do(func() {
		self = here()
		self.Pid = os.Getpid()
		if st, err := ReadStat(self.Pid); err == nil {
			self.Start = st.Start
		}
	})
	return self
}

// here is this host's identity, without a pid.
func here() Holder {
	h := Holder{}
	h.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.Boot = strings.TrimSpace(string(b))
	}
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &st) == nil {
		h.PidNS = st.Ino
	}
	return h
}

// Local reports whether h ran on this host, in this boot and this pid
// namespace: only then does its pid say anything here.
func (h Holder) Local() bool {
	me := Self()
	return h.Host != "" && h.Host == me.Host && h.Boot != "" && h.Boot == me.Boot && h.PidNS != 0 && h.PidNS == me.PidNS
}

// Dead reports whether h is known to have ended: it ran here (Local) and
// its pid is gone, or now belongs to a process that started at another
// time. A holder of another host, or one recorded without the fields to
// tell, is never called dead: only its lease or expiry ends it.
func (h Holder) Dead() bool {
	if !h.Local() || h.Pid <= 0 || h.Start == 0 {
		return false
	}
	st, err := ReadStat(h.Pid)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
	}
	return st.Start != h.Start || st.State == 'Z' || st.State == 'X'
}

// String is "pid P on HOST".
func (h Holder) String() string {
	return fmt.Sprintf("pid %d on %s", h.Pid, h.Host)
}
