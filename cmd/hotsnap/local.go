package main

// The commands on one data dir's snapshots that need no quiescer: list,
// delete, usage, recover, verify.

import (
	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

func listCommand() *cli.Command {
	return localCmd("list", "list the data dir's snapshots", false, nil, func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
		infos, err := snapshot.List(c.Context, l, e.log)
		if err != nil {
			return err
		}
		e.Result(map[string]any{"snapshots": report.LocalItems(infos)}, report.List(infos))
		return nil
	})
}

func deleteCommand() *cli.Command {
	return localCmd("delete", "delete one snapshot", true, nil, func(c *cli.Context, e *env, l *snapshot.Layout, id string) error {
		node := snapshot.DefaultNodeID // the node whose piece this is, as cluster delete says it
		if h, err := snapshot.ReadHeader(l, id); err == nil && h.Node.ID != "" {
			node = h.Node.ID
		}
		if err := snapshot.Delete(c.Context, l, id, e.log); err != nil {
			return err
		}
		e.Result(map[string]any{"id": id, "deleted": []string{node}, "absent": []string{}}, report.Line("deleted %s", id))
		return nil
	})
}

func usageCommand() *cli.Command {
	return localCmd("usage", "what snapshots cost on disk (hard-link aware, each inode counted once)", false, nil,
		func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
			u, err := snapshot.Usage(c.Context, l, e.log)
			return show(e, u, err, report.Usage)
		})
}

func recoverCommand() *cli.Command {
	return localCmd("recover", "clean up after a crashed hotsnap command (every command does this first)", false, nil,
		func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
			res, err := snapshot.Recover(c.Context, l, e.log)
			return show(e, res, err, report.Recover)
		})
}

func verifyCommand() *cli.Command {
	return localCmd("verify", "compare a snapshot's tree with its sealed manifest (re-hashes every file unless --fast-verify)", true,
		[]cli.Flag{fastVerifyFlag("check stat only (type, size, mtime, mode, symlink target)"), oldFlag("fast", "fast-verify", false)},
		func(c *cli.Context, e *env, l *snapshot.Layout, id string) error {
			procsForDisk()
			res, err := snapshot.Verify(c.Context, l, id, snapshot.VerifyOptions{Fast: boolFlag(c, "fast-verify", "fast"), Logger: e.log, Progress: e.Progress()})
			if err != nil {
				return err
			}
			out := report.NewVerifyResult(id, res)
			e.Result(out, report.Verify(out))
			if !res.OK() && e.JSON {
				// The result object already says what differs; exit 4 without a second object.
				return silentError{res.Err()}
			}
			return res.Err()
		})
}
