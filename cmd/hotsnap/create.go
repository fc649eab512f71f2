package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/freezer"
)

func quiesceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "quiesce", Value: "flock", EnvVars: []string{"HOTSNAP_QUIESCE"}, Usage: "how writes are stopped: flock (the write-gate protocol), freeze (a cgroup), signal (SIGSTOP a process tree), exec, http, or none"},
		&cli.StringFlag{Name: "cgroup", EnvVars: []string{"HOTSNAP_CGROUP"}, Usage: "with --quiesce freeze: the application's cgroup (a directory in the cgroup mount, or a path as /proc/PID/cgroup shows it)"},
		&cli.StringFlag{Name: "unit", EnvVars: []string{"HOTSNAP_UNIT"}, Usage: "with --quiesce freeze: a systemd unit whose cgroup is frozen"},
		&cli.StringFlag{Name: "pid-file", EnvVars: []string{"HOTSNAP_PID_FILE"}, Usage: "with --quiesce signal: pid file of the application's main process (it and its descendants get SIGSTOP)"},
		&cli.StringFlag{Name: "lock-url", EnvVars: []string{"HOTSNAP_LOCK_URL"}, Usage: "with --quiesce http: URL to POST to stop writes (200 ok; 409, 423, 503 retry)"},
		&cli.StringFlag{Name: "unlock-url", EnvVars: []string{"HOTSNAP_UNLOCK_URL"}, Usage: "with --quiesce http: URL to POST to resume writes"},
		&cli.StringFlag{Name: "lock-token-file", EnvVars: []string{"HOTSNAP_LOCK_TOKEN_FILE"}, Usage: "with --quiesce http: file holding a bearer token for the lock URLs"},
		&cli.StringFlag{Name: "lock-cmd", Usage: "with --quiesce exec: command that stops writes (exit 0 ok, 75 retry, other fail)"},
		&cli.StringFlag{Name: "unlock-cmd", Usage: "with --quiesce exec: command that resumes writes"},
		&cli.DurationFlag{Name: "max-wait-for-lock", Value: defaults.MaxWaitForLock, Usage: "total time to try stopping writes"},
		&cli.DurationFlag{Name: "lock-period", Value: defaults.LockPeriod, Usage: "first attempt's period; each retry is 10% longer"},
		&cli.BoolFlag{Name: "allow-inconsistent", Usage: "on lock timeout, snapshot anyway and flag it potentiallyInconsistent"},
		&cli.BoolFlag{Name: "force", Usage: "ask the application to abort long write transactions (exec: HOTSNAP_FORCE=1; flock: .hotsnap/force-requested)"},
	}
}

// quiescerFromFlags builds the Quiescer the flags ask for; force (or
// --force) asks the application to abort long write transactions.
func quiescerFromFlags(c *cli.Context, l *snapshot.Layout, force bool) (snapshot.Quiescer, func(), error) {
	force = force || c.Bool("force")
	dataDir := l.DataDir
	mode := c.String("quiesce")
	if (c.IsSet("cgroup") || c.IsSet("unit")) && mode != "freeze" {
		return nil, nil, usageError{errors.New("--cgroup and --unit need --quiesce freeze")}
	}
	if c.IsSet("pid-file") && mode != "signal" {
		return nil, nil, usageError{errors.New("--pid-file needs --quiesce signal")}
	}
	switch mode {
	case "freeze":
		var cg freezer.Cgroup
		var err error
		switch {
		case c.String("cgroup") != "" && c.String("unit") != "":
			return nil, nil, usageError{errors.New("give --cgroup or --unit, not both")}
		case c.String("cgroup") != "":
			cg, err = freezer.Find(c.String("cgroup"))
		case c.String("unit") != "":
			cg, err = freezer.FromUnit(c.Context, c.String("unit"))
		default:
			return nil, nil, usageError{errors.New("--quiesce freeze needs --cgroup PATH or --unit NAME")}
		}
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--quiesce freeze: %w", err)}
		}
		return &snapshot.FreezeQuiescer{Layout: l, Cgroup: cg}, func() {}, nil
	case "signal":
		if c.String("pid-file") == "" {
			return nil, nil, usageError{errors.New("--quiesce signal needs --pid-file FILE")}
		}
		return &snapshot.SignalQuiescer{Layout: l, PidFile: c.String("pid-file")}, func() {}, nil
	case "flock":
		if c.IsSet("lock-cmd") || c.IsSet("unlock-cmd") {
			return nil, nil, usageError{errors.New("--lock-cmd and --unlock-cmd need --quiesce exec")}
		}
		q := &snapshot.FlockQuiescer{DataDir: dataDir, Force: force}
		return q, func() { q.Close() }, nil
	case "exec":
		if c.String("lock-cmd") == "" || c.String("unlock-cmd") == "" {
			return nil, nil, usageError{errors.New("--quiesce exec needs both --lock-cmd and --unlock-cmd")}
		}
		return &snapshot.ExecQuiescer{LockCmd: c.String("lock-cmd"), UnlockCmd: c.String("unlock-cmd"), DataDir: dataDir, Force: force}, func() {}, nil
	case "http":
		if c.String("lock-url") == "" || c.String("unlock-url") == "" {
			return nil, nil, usageError{errors.New("--quiesce http needs both --lock-url and --unlock-url")}
		}
		q := &snapshot.HTTPQuiescer{LockURL: c.String("lock-url"), UnlockURL: c.String("unlock-url"), DataDir: dataDir, Force: force}
		if f := c.String("lock-token-file"); f != "" {
			b, err := fsutil.ReadSecretFile(f, "lock token file")
			if err != nil {
				return nil, nil, err
			}
			q.Token = strings.TrimSpace(string(b))
		}
		return q, func() {}, nil
	case "none":
		return snapshot.NoQuiescer{}, func() {}, nil
	}
	return nil, nil, usageError{fmt.Errorf("--quiesce %q: want flock, freeze, signal, exec, http or none", mode)}
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name:  "create",
		Usage: "take a snapshot of the data dir under a brief write lock",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(),
			&cli.StringFlag{Name: "label", Usage: "id suffix: letters, digits, '.', '_', '-' (default: a random UUID)"},
			&cli.StringSliceFlag{Name: "copy", Usage: "glob of files the application rewrites in place: captured as copies (repeatable)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "glob of entries to leave out (repeatable)"},
			&cli.StringFlag{Name: "link-mode", Value: "link", Usage: "link, reflink (FICLONE every file) or auto (reflink where supported)"},
			&cli.StringFlag{Name: "app-version", EnvVars: []string{"HOTSNAP_APP_VERSION"}, Usage: "the application's major.minor.patch version, checked at restore"},
			&cli.StringFlag{Name: "app-engine", EnvVars: []string{"HOTSNAP_APP_ENGINE"}, Usage: "the storage engine that writes the data (e.g. rocksdb, pebble, sqlite): recorded; a restore under another engine is refused"},
			&cli.StringFlag{Name: "encryption-key-id", EnvVars: []string{"HOTSNAP_ENCRYPTION_KEY_ID"}, Usage: "id of the key the application encrypts its data with, checked at restore"},
			&cli.StringFlag{Name: "node-id", Value: snapshot.DefaultNodeID, EnvVars: []string{"HOTSNAP_NODE_ID"}, Usage: "this node's id, recorded in the topology"},
		}, quiesceFlags()...)...),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			q, closeQ, err := quiescerFromFlags(c, l, false)
			if err != nil {
				return err
			}
			defer closeQ()
			res, err := snapshot.Create(c.Context, l, snapshot.CreateOptions{
				Label: c.String("label"), Quiescer: q,
				Lock:              snapshot.LockPolicy{MaxWait: c.Duration("max-wait-for-lock"), InitialPeriod: c.Duration("lock-period")},
				AllowInconsistent: c.Bool("allow-inconsistent"),
				Copy:              c.StringSlice("copy"), Exclude: c.StringSlice("exclude"),
				LinkMode: c.String("link-mode"), AppVersion: c.String("app-version"), AppEngine: c.String("app-engine"),
				EncryptionKeyID: c.String("encryption-key-id"), NodeID: c.String("node-id"),
				Logger: e.log,
			})
			if err != nil {
				return err
			}
			e.result(res, func(w io.Writer) {
				fmt.Fprintf(w, "created %s\n", res.ID)
				fmt.Fprintf(w, "  %d files, %d dirs, %d symlinks, %s\n", res.Files, res.Dirs, res.Symlinks, humanBytes(res.Bytes))
				fmt.Fprintf(w, "  writes paused %.1f ms (%d lock attempt(s)); took %.0f ms; hashed %s, reused %d hashes\n",
					res.LockHeldMs, res.LockAttempts, res.DurationMs, humanBytes(res.HashedBytes), res.ReusedHashes)
				if q := res.Quiesced; q != nil {
					fmt.Fprintf(w, "  quiesced: %s, %d process(es) held", q.Mode, q.Processes)
					if q.Target != "" {
						fmt.Fprintf(w, " (%s)", fsutil.Quote(q.Target))
					}
					fmt.Fprintln(w)
				}
				if res.PotentiallyInconsistent {
					fmt.Fprintln(w, "  WARNING: potentiallyInconsistent: writes were not stopped")
				}
				for _, warn := range res.Warnings {
					fmt.Fprintf(w, "  warning: %s\n", fsutil.QuoteText(warn))
				}
			})
			return nil
		},
	}
}
