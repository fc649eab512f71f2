package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
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
		&cli.BoolFlag{Name: "force", Usage: "ask the application to abort long write transactions (exec: HOTSNAP_FORCE=1; flock: .hotsnap/force-requested)"},
	}
}

// quiesceConfig is the quiescer the --quiesce flags ask for.
func quiesceConfig(c *cli.Context) quiesce.Config {
	return quiesce.Config{Mode: c.String("quiesce"), Cgroup: c.String("cgroup"), Unit: c.String("unit"), PidFile: c.String("pid-file"),
		LockURL: c.String("lock-url"), UnlockURL: c.String("unlock-url"), LockTokenFile: c.String("lock-token-file"),
		LockCmd: c.String("lock-cmd"), UnlockCmd: c.String("unlock-cmd"), Force: c.Bool("force")}
}

// lockPolicy is the retry loop the --max-wait-for-lock and --lock-period
// flags ask for.
func lockPolicy(c *cli.Context) quiesce.Policy {
	return quiesce.Policy{MaxWait: c.Duration("max-wait-for-lock"), InitialPeriod: c.Duration("lock-period")}
}

// captureFlags are what a create records and how it captures: create's,
// run's and the agent's (which passes them to every create).
func captureFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "copy", Usage: "glob of files the application rewrites in place: captured as copies (repeatable)"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "glob of entries to leave out (repeatable)"},
		&cli.StringFlag{Name: "link-mode", Value: "link", Usage: "link, reflink (FICLONE every file) or auto (reflink where supported)"},
		&cli.StringFlag{Name: "app-version", EnvVars: []string{"HOTSNAP_APP_VERSION"}, Usage: "the application's major.minor.patch version, checked at restore"},
		&cli.StringFlag{Name: "app-engine", EnvVars: []string{"HOTSNAP_APP_ENGINE"}, Usage: "the storage engine that writes the data (e.g. rocksdb, pebble, sqlite): recorded; a restore under another engine is refused"},
		&cli.StringFlag{Name: "encryption-key-id", EnvVars: []string{"HOTSNAP_ENCRYPTION_KEY_ID"}, Usage: "id of the key the application encrypts its data with, checked at restore"},
	}
}

// createOptions is the create the capture and quiesce flags ask for.
func createOptions(c *cli.Context, e *env, q quiesce.Quiescer) snapshot.CreateOptions {
	return snapshot.CreateOptions{
		Label: c.String("label"), Quiescer: q, Lock: lockPolicy(c), AllowInconsistent: c.Bool("allow-inconsistent"),
		Copy: c.StringSlice("copy"), Exclude: c.StringSlice("exclude"), LinkMode: c.String("link-mode"),
		AppVersion: c.String("app-version"), AppEngine: c.String("app-engine"), EncryptionKeyID: c.String("encryption-key-id"),
		NodeID: c.String("node-id"), Logger: e.log, Progress: e.Progress(),
	}
}

// allowInconsistentFlag is create's and run's escape from a lock timeout.
func allowInconsistentFlag() cli.Flag {
	return &cli.BoolFlag{Name: "allow-inconsistent", Usage: "on lock timeout, snapshot anyway and flag it potentiallyInconsistent"}
}

// flagGroups joins flag groups into one list.
func flagGroups(groups ...[]cli.Flag) []cli.Flag {
	var all []cli.Flag
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

func createCommand() *cli.Command {
	flags := flagGroups([]cli.Flag{nodeIDFlag("this node's id, recorded in the topology"), allowInconsistentFlag(),
		&cli.StringFlag{Name: "label", Usage: "id suffix: letters, digits, '.', '_', '-' (default: a random UUID)"},
	}, captureFlags(), quiesceFlags())
	return localCmd("create", "take a snapshot of the data dir under a brief write lock", false, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
			procsForDisk()
			q, closeQ, err := l.NewQuiescer(c.Context, quiesceConfig(c), false)
			if err != nil {
				return err
			}
			defer closeQ()
			res, err := snapshot.Create(c.Context, l, createOptions(c, e, q))
			return show(e, res, err, report.Create)
		})
}
