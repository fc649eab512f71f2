// Package freezer stops and resumes an application's processes without
// its cooperation: a whole cgroup through the kernel's freezer (cgroup v2
// cgroup.freeze, or the v1 freezer's freezer.state), or a process tree
// with SIGSTOP and SIGCONT sent through pidfds. Package quiesce's Freeze
// and Signal quiescers are built on it (docs/DESIGN.md, "Quiescers that
// stop processes"); it keeps no records of what it stopped (they do).
package freezer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned when the processes did not all stop in time
// (they were let go again).
var ErrTimeout = errors.New("processes did not stop in time")

// Cgroup is a cgroup to freeze: Dir is its directory in a cgroup2 mount,
// or in a v1 freezer mount when V1.
type Cgroup struct {
	Dir string
	V1  bool
}

// Kind is "cgroup2" or "cgroup1".
func (c Cgroup) Kind() string {
	if c.V1 {
		return "cgroup1"
	}
	return "cgroup2"
}

// mounts are the cgroup2 mount point and the v1 freezer's, from
// /proc/self/mountinfo ("" when absent).
type mounts struct{ v2, v1 string }

// mountInfoPath is where the mounts are read from.
var mountInfoPath = "/proc/self/mountinfo"

func findMounts() (mounts, error) {
	b, err := os.ReadFile(mountInfoPath)
	if err != nil {
		return mounts{}, fmt.Errorf("read %s: %w", mountInfoPath, err)
	}
	return parseMountInfo(b), nil
}

// parseMountInfo reads mountinfo lines: "ID PARENT MAJ:MIN ROOT MOUNTPOINT
// OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
func parseMountInfo(b []byte) mounts {
	var m mounts
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		mp := unescapeMount(f[4])
		switch {
		case g[0] == "cgroup2" && m.v2 == "":
			m.v2 = mp
		case g[0] == "cgroup" && m.v1 == "" && hasOpt(g[2], "freezer"):
			m.v1 = mp
		}
	}
	return m
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Find resolves a cgroup given as a directory in a cgroup mount
// (/sys/fs/cgroup/unified/app) or as a path from a cgroup root as
// /proc/PID/cgroup shows it (/system.slice/app.service). cgroup v2 is
// used where mounted and the cgroup exists there, else the v1 freezer.
// It refuses the root cgroup and any cgroup hotsnap itself runs in.
func Find(path string) (Cgroup, error) {
	if path == "" {
		return Cgroup{}, errors.New("no cgroup given")
	}
	m, err := findMounts()
	if err != nil {
		return Cgroup{}, err
	}
	if m.v2 == "" && m.v1 == "" {
		return Cgroup{}, errors.New("cgroup v2 is not mounted and there is no v1 freezer (no cgroup2 or cgroup freezer line in /proc/self/mountinfo): use --quiesce signal --pid-file instead")
	}
	clean := filepath.Clean("/" + path)
	var tried []string
	try := func(mount string, v1 bool) (Cgroup, bool, error) {
		if mount == "" {
			return Cgroup{}, false, nil
		}
		dir := filepath.Join(mount, clean)
		if rel, err := filepath.Rel(mount, clean); err == nil && filepath.IsAbs(path) && !strings.HasPrefix(rel, "..") {
			dir = clean // already a directory in this mount
		}
		if dir == filepath.Clean(mount) {
			return Cgroup{}, false, fmt.Errorf("%s is the root cgroup: it cannot be frozen; give the application's own cgroup", dir)
		}
		ctl := "cgroup.freeze"
		if v1 {
			ctl = "freezer.state"
		}
		tried = append(tried, dir)
		st, err := os.Lstat(dir)
		if err != nil || !st.IsDir() {
			return Cgroup{}, false, nil
		}
		if _, err := os.Stat(filepath.Join(dir, ctl)); err != nil {
			if v1 {
				return Cgroup{}, false, nil
			}
			return Cgroup{}, false, fmt.Errorf("%s has no cgroup.freeze (the kernel's cgroup v2 freezer needs Linux 5.2 or later)", dir)
		}
		return Cgroup{Dir: dir, V1: v1}, true, nil
	}
	for _, c := range []struct {
		mount string
		v1    bool
	}{{m.v2, false}, {m.v1, true}} {
		cg, ok, err := try(c.mount, c.v1)
		if err != nil {
			return Cgroup{}, err
		}
		if ok {
			if err := notOurs(cg, c.mount); err != nil {
				return Cgroup{}, err
			}
			return cg, nil
		}
	}
	return Cgroup{}, fmt.Errorf("cgroup %s does not exist (looked for %s)", path, strings.Join(tried, " and "))
}

// notOurs refuses a cgroup that holds hotsnap itself: freezing it would
// freeze the process that has to thaw it.
func notOurs(cg Cgroup, mount string) error {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		v2line := parts[0] == "0" && parts[1] == ""
		if v2line == cg.V1 || (cg.V1 && !hasOpt(parts[1], "freezer")) {
			continue
		}
		own := filepath.Join(mount, parts[2])
		if own == cg.Dir || strings.HasPrefix(own, cg.Dir+"/") {
			return fmt.Errorf("hotsnap itself runs in cgroup %s: freezing %s would freeze hotsnap too; run hotsnap outside the application's cgroup", own, cg.Dir)
		}
	}
	return nil
}

// FromUnit resolves a systemd unit's cgroup (systemctl show -p ControlGroup).
func FromUnit(ctx context.Context, unit string) (Cgroup, error) {
	if unit == "" {
		return Cgroup{}, errors.New("no unit given")
	}
	out, err := exec.CommandContext(ctx, "systemctl", "show", "--property=ControlGroup", "--value", "--", unit).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Cgroup{}, fmt.Errorf("systemctl show %s: %v: %s", unit, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return Cgroup{}, fmt.Errorf("resolve unit %s: %w (is systemd running here? give --cgroup instead)", unit, err)
	}
	cg := strings.TrimSpace(string(out))
	if cg == "" {
		return Cgroup{}, fmt.Errorf("unit %s has no control group: is it running?", unit)
	}
	return Find(cg)
}

func (c Cgroup) ctl() string {
	if c.V1 {
		return filepath.Join(c.Dir, "freezer.state")
	}
	return filepath.Join(c.Dir, "cgroup.freeze")
}

func writeCtl(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Frozen reports whether every process of the cgroup is frozen.
func (c Cgroup) Frozen() (bool, error) {
	if c.V1 {
		b, err := os.ReadFile(c.ctl())
		return strings.TrimSpace(string(b)) == "FROZEN", err
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "frozen" {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events has no frozen line", c.Dir)
}

// Freeze freezes the cgroup and waits until the kernel reports every
// process frozen, until deadline: then it thaws it again and returns
// ErrTimeout. A process in an uninterruptible wait (inside a write or an
// fsync) is frozen when the wait ends, so a frozen cgroup has no system
// call half done.
func (c Cgroup) Freeze(ctx context.Context, deadline time.Time) error {
	v := "1"
	if c.V1 {
		v = "FROZEN"
	}
	if err := writeCtl(c.ctl(), v); err != nil {
		return fmt.Errorf("freeze %s: %w", c.Dir, err)
	}
	pause := 50 * time.Microsecond
	for {
		frozen, err := c.Frozen()
		if err != nil {
			c.Thaw()
			return fmt.Errorf("freeze %s: %w", c.Dir, err)
		}
		if frozen {
			return nil
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			if terr := c.Thaw(); terr != nil {
				return terr
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrTimeout
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, 2*time.Millisecond)
	}
}

// Thaw lets the cgroup's processes run again.
func (c Cgroup) Thaw() error {
	v := "0"
	if c.V1 {
		v = "THAWED"
	}
	if err := writeCtl(c.ctl(), v); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // the cgroup is gone, and its processes with it
		}
		return fmt.Errorf("thaw %s: %w", c.Dir, err)
	}
	return nil
}

// Mounts returns where the cgroup2 hierarchy and the v1 freezer are
// mounted ("" for one that is not).
func Mounts() (v2, v1 string, err error) {
	m, err := findMounts()
	return m.v2, m.v1, err
}
