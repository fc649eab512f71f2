package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "put a snapshot back as the data dir, after proving it (seal, every file, compatibility)",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(),
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
		}, quiesceFlags()...)...),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			if c.IsSet("target") {
				for _, f := range []string{"dry-run", "stop-cmd", "start-cmd", "no-failsafe", "fast-verify", "quiesce"} {
					if c.IsSet(f) {
						return usageError{fmt.Errorf("--%s does not go with --target (no lock, no swap: every file is copied and re-hashed)", f)}
					}
				}
				res, err := snapshot.Extract(c.Context, l, id, c.String("target"), snapshot.ExtractOptions{Include: c.StringSlice("include")})
				if err != nil {
					return err
				}
				e.result(res, func(w io.Writer) {
					fmt.Fprintf(w, "restored %d files, %d dirs, %d symlinks (%s) of %s into %s, every file re-hashed; took %.0f ms\n",
						res.Files, res.Dirs, res.Symlinks, humanBytes(res.Bytes), res.ID, res.Target, res.DurationMs)
				})
				return nil
			}
			q, closeQ, err := snapshot.NewQuiescer(c.Context, l, quiesceConfig(c), false)
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
				Logger: e.log, Progress: e.progressFor(),
			})
			if err != nil {
				return err
			}
			e.result(res, func(w io.Writer) { printRestore(w, res) })
			return nil
		},
	}
}

func printRestore(w io.Writer, res *snapshot.RestoreResult) {
	p := res.Plan
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", fsutil.QuoteText(warn))
	}
	if res.DryRun {
		fmt.Fprintf(w, "dry run: restoring %s (verified: %s) would add %d, remove %d and change %d entries (+%s, -%s); nothing was changed\n",
			res.ID, res.Verified, len(p.Added), len(p.Removed), len(p.Changed), humanBytes(p.AddedBytes), humanBytes(p.RemovedBytes))
		list := func(sign string, paths []string) {
			for i, path := range paths {
				if i == 20 {
					fmt.Fprintf(w, "  %s ... %d more\n", sign, len(paths)-20)
					return
				}
				fmt.Fprintf(w, "  %s %s\n", sign, fsutil.Quote(path))
			}
		}
		list("+", p.Added)
		list("-", p.Removed)
		list("~", p.Changed)
		return
	}
	what := res.ID
	if len(res.Include) > 0 {
		what = fmt.Sprintf("the entries of %s matching %s", res.ID, strings.Join(res.Include, " "))
	}
	fmt.Fprintf(w, "restored %s (verified: %s): %d files, %s\n", what, res.Verified, res.Files, humanBytes(res.Bytes))
	fmt.Fprintf(w, "  %d added, %d removed, %d changed; swap %.1f ms, writes held %.1f ms, took %.0f ms\n",
		len(p.Added), len(p.Removed), len(p.Changed), res.SwapMs, res.LockHeldMs, res.DurationMs)
	if res.Failsafe != "" {
		fmt.Fprintf(w, "  the previous state is kept in %s until the next restore\n", res.Failsafe)
	}
}
