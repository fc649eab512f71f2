package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

func restoreCommand() *cli.Command {
	flags := append([]cli.Flag{
		&cli.StringFlag{Name: "app-version", EnvVars: []string{"HOTSNAP_APP_VERSION"}, Usage: "the running application's major.minor.patch version"},
		&cli.StringFlag{Name: "app-engine", EnvVars: []string{"HOTSNAP_APP_ENGINE"}, Usage: "the storage engine the application runs; a snapshot of another engine is refused (exit 5)"},
		&cli.StringFlag{Name: "encryption-key-id", EnvVars: []string{"HOTSNAP_ENCRYPTION_KEY_ID"}, Usage: "id of the key the application encrypts its data with"},
		nodeIDFlag("this node's id (the target topology)"),
		&cli.BoolFlag{Name: "ignore-version", Usage: "restore even when the version rule refuses (said in the output)"},
		&cli.StringFlag{Name: "stop-cmd", Usage: "command that stops the application before the swap; must succeed"},
		&cli.StringFlag{Name: "start-cmd", Usage: "command that starts the application after the swap"},
		&cli.DurationFlag{Name: "hook-timeout", Value: defaults.HookTimeout, Usage: "time limit of --stop-cmd and --start-cmd"},
		fastVerifyFlag("check the snapshot's files by stat only instead of re-hashing them"),
		&cli.BoolFlag{Name: "no-failsafe", Usage: "do not keep the previous state in .hotsnap/failsafe/"},
		&cli.BoolFlag{Name: "dry-run", Usage: "check everything and print what would change; change nothing"},
		&cli.StringFlag{Name: "target", Usage: "copy the snapshot (or the --include entries) into this new directory instead; the data dir and the application are left alone"},
		&cli.StringSliceFlag{Name: "include", Usage: "glob of the entries to restore (the --copy rules; a directory brings its subtree; repeatable): each replaces the live entry at its path, the rest of the data dir is left alone"},
	}, quiesceFlags()...)
	return localCmd("restore", "put a snapshot back as the data dir, after proving it (seal, every file, compatibility)", true, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, id string) error {
			if c.IsSet("target") {
				for _, f := range []string{"dry-run", "stop-cmd", "start-cmd", "no-failsafe", "fast-verify", "quiesce"} {
					if c.IsSet(f) {
						return usageError{fmt.Errorf("--%s does not go with --target (no lock, no swap: every file is copied and re-hashed)", f)}
					}
				}
				res, err := snapshot.Extract(c.Context, l, id, c.String("target"), snapshot.ExtractOptions{Include: c.StringSlice("include")})
				return show(e, res, err, report.Extract)
			}
			q, closeQ, err := l.NewQuiescer(c.Context, quiesceConfig(c), false)
			if err != nil {
				return err
			}
			defer closeQ()
			res, err := snapshot.Restore(c.Context, l, id, snapshot.RestoreOptions{
				AppVersion: c.String("app-version"), AppEngine: c.String("app-engine"), EncryptionKeyID: c.String("encryption-key-id"),
				NodeID: c.String("node-id"), IgnoreVersion: c.Bool("ignore-version"), Include: c.StringSlice("include"),
				FastVerify: c.Bool("fast-verify"), NoFailsafe: c.Bool("no-failsafe"), DryRun: c.Bool("dry-run"),
				Quiescer: q, Lock: lockPolicy(c),
				StopCmd: c.String("stop-cmd"), StartCmd: c.String("start-cmd"), HookTimeout: c.Duration("hook-timeout"),
				Logger: e.log, Progress: e.Progress(),
			})
			return show(e, res, err, report.Restore)
		})
}
