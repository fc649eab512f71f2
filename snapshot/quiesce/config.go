package quiesce

import (
	"context"
	"fmt"
	"strings"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot/freezer"
)

// Config says how writes are stopped, as the CLI's --quiesce flags
// and an agent's configuration give it.
type Config struct {
	// Mode is flock (the write-gate protocol; the default), freeze (a
	// cgroup: Cgroup or Unit), signal (SIGSTOP the tree of PidFile), exec
	// (LockCmd, UnlockCmd), http (LockURL, UnlockURL, LockTokenFile) or
	// none.
	Mode                              string
	Cgroup, Unit                      string
	PidFile                           string
	LockURL, UnlockURL, LockTokenFile string
	LockCmd, UnlockCmd                string
	// Force asks the application to abort long write transactions.
	Force bool
}

func usage(format string, args ...any) error {
	return errs.New(errs.Usage, fmt.Sprintf(format, args...))
}

// check refuses settings that belong to another mode.
func (c Config) check() error {
	switch {
	case (c.Cgroup != "" || c.Unit != "") && c.Mode != "freeze":
		return usage("--cgroup and --unit need --quiesce freeze")
	case c.PidFile != "" && c.Mode != "signal":
		return usage("--pid-file needs --quiesce signal")
	case (c.LockCmd != "" || c.UnlockCmd != "") && c.Mode == "flock":
		return usage("--lock-cmd and --unlock-cmd need --quiesce exec")
	}
	return nil
}

// New builds the quiescer c asks for over dataDir (a freeze or signal
// quiescer keeps its thaw record in state), and the
// function that releases it. force (or c.Force) asks the application to
// abort long write transactions. A bad configuration is a usage error.
func New(ctx context.Context, dataDir string, state StateDir, c Config, force bool) (Quiescer, func(), error) {
	force = force || c.Force
	if c.Mode == "" {
		c.Mode = "flock"
	}
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	nothing := func() {}
	switch c.Mode {
	case "freeze":
		var cg freezer.Cgroup
		var err error
		switch {
		case c.Cgroup != "" && c.Unit != "":
			return nil, nil, usage("give --cgroup or --unit, not both")
		case c.Cgroup != "":
			cg, err = freezer.Find(c.Cgroup)
		case c.Unit != "":
			cg, err = freezer.FromUnit(ctx, c.Unit)
		default:
			return nil, nil, usage("--quiesce freeze needs --cgroup PATH or --unit NAME")
		}
		if err != nil {
			return nil, nil, usage("--quiesce freeze: %v", err)
		}
		return &Freeze{State: state, Cgroup: cg}, nothing, nil
	case "signal":
		if c.PidFile == "" {
			return nil, nil, usage("--quiesce signal needs --pid-file FILE")
		}
		return &Signal{State: state, PidFile: c.PidFile}, nothing, nil
	case "flock":
		q := &Flock{DataDir: dataDir, Force: force}
		return q, func() { q.Close() }, nil
	case "exec":
		if c.LockCmd == "" || c.UnlockCmd == "" {
			return nil, nil, usage("--quiesce exec needs both --lock-cmd and --unlock-cmd")
		}
		return &Exec{LockCmd: c.LockCmd, UnlockCmd: c.UnlockCmd, DataDir: dataDir, Force: force}, nothing, nil
	case "http":
		if c.LockURL == "" || c.UnlockURL == "" {
			return nil, nil, usage("--quiesce http needs both --lock-url and --unlock-url")
		}
		q := &HTTP{LockURL: c.LockURL, UnlockURL: c.UnlockURL, DataDir: dataDir, Force: force}
		if c.LockTokenFile != "" {
			b, err := fsutil.ReadSecretFile(c.LockTokenFile, "lock token file")
			if err != nil {
				return nil, nil, err
			}
			q.Token = strings.TrimSpace(string(b))
		}
		return q, nothing, nil
	case "none":
		return None{}, nothing, nil
	}
	return nil, nil, usage("--quiesce %q: want flock, freeze, signal, exec, http or none", c.Mode)
}
