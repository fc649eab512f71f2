package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fstree"
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
		&cli.BoolFlag{Name: "from-archive", Usage: "restore the snapshot straight from the archive (--remote): every file checked against its BLAKE3 as it is written into the restore's tree; no local snapshot is kept"},
		&cli.BoolFlag{Name: "allow-setid", Usage: "with --from-archive: as download's --allow-setid"},
	}, flagGroups(quiesceFlags(), remoteFlags())...)
	return localCmd("restore", "put a snapshot back as the data dir, after proving it (seal, every file, compatibility)", true, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, id string) error {
			procsForDisk()
			if c.IsSet("target") {
				for _, f := range []string{"dry-run", "stop-cmd", "start-cmd", "no-failsafe", "fast-verify", "quiesce", "from-archive"} {
					if c.IsSet(f) {
						return usageError{fmt.Errorf("--%s does not go with --target (no lock, no swap: every file is copied and re-hashed)", f)}
					}
				}
				res, err := snapshot.Extract(c.Context, l, id, c.String("target"), snapshot.ExtractOptions{Include: c.StringSlice("include")})
				return show(e, res, err, report.Extract)
			}
			from, done, err := archiveSource(c, e, l, id)
			if err != nil {
				return err
			}
			defer done()
			q, closeQ, err := l.NewQuiescer(c.Context, quiesceConfig(c), false)
			if err != nil {
				return err
			}
			defer closeQ()
			o := snapshot.RestoreOptions{
				AppVersion: c.String("app-version"), AppEngine: c.String("app-engine"), EncryptionKeyID: c.String("encryption-key-id"),
				NodeID: c.String("node-id"), IgnoreVersion: c.Bool("ignore-version"), Include: c.StringSlice("include"),
				FastVerify: c.Bool("fast-verify"), NoFailsafe: c.Bool("no-failsafe"), DryRun: c.Bool("dry-run"),
				Quiescer: q, Lock: lockPolicy(c),
				StopCmd: c.String("stop-cmd"), StartCmd: c.String("start-cmd"), HookTimeout: c.Duration("hook-timeout"),
				Logger: e.log, Progress: e.Progress(), From: from,
			}
			if from != nil {
				o.Progress = nil // the download's progress is shown
			}
			res, err := snapshot.Restore(c.Context, l, id, o)
			done() // the download's last progress line comes before the result
			return show(e, res, err, report.Restore)
		})
}

// archiveSource is restore --from-archive's source (archive.Source), or
// nil without the flag.
func archiveSource(c *cli.Context, e *env, l *snapshot.Layout, id string) (fstree.Source, func(), error) {
	if !c.Bool("from-archive") {
		if c.IsSet("allow-setid") {
			return nil, nil, usageError{errors.New("--allow-setid goes with --from-archive")}
		}
		return nil, func() {}, nil
	}
	for _, f := range []string{"include", "fast-verify"} {
		if c.IsSet(f) {
			return nil, nil, usageError{fmt.Errorf("--%s does not go with --from-archive (download the snapshot first for that)", f)}
		}
	}
	r, err := openRemote(c, false)
	if err != nil {
		return nil, nil, err
	}
	return archive.Source(c.Context, r, l, id, archive.DownloadOptions{Node: c.String("node-id"), Progress: e.Progress(), Logger: e.log, AllowSetID: c.Bool("allow-setid")})
}
