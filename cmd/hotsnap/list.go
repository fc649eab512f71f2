package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the data dir's snapshots",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag()),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			infos, err := snapshot.List(c.Context, l, e.log)
			if err != nil {
				return err
			}
			e.result(infos, func(w io.Writer) {
				if len(infos) == 0 {
					fmt.Fprintln(w, "no snapshots")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCREATED\tAPP\tFILES\tSIZE\tNODES\tINCONSISTENT")
				for _, i := range infos {
					if i.Seal == snapshot.SealDamaged {
						fmt.Fprintf(tw, "%s\tDAMAGED (%s)\t\t\t\t\t\n", i.ID, fsutil.QuoteText(i.Error))
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%v\n", i.ID, i.CreatedAt.Format("2006-01-02 15:04:05Z"),
						dash(i.AppVersion), i.Files, humanBytes(i.Bytes), i.Nodes, i.PotentiallyInconsistent)
				}
				tw.Flush()
			})
			return nil
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "delete one snapshot",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag()),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			if err := snapshot.Delete(c.Context, l, id, e.log); err != nil {
				return err
			}
			e.result(map[string]any{"id": id, "deleted": true}, func(w io.Writer) { fmt.Fprintf(w, "deleted %s\n", id) })
			return nil
		},
	}
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "compare a snapshot's tree with its sealed manifest (re-hashes every file unless --fast)",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(),
			&cli.BoolFlag{Name: "fast", Usage: "check stat only (type, size, mtime, mode, symlink target)"}),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			res, err := snapshot.Verify(c.Context, l, id, snapshot.VerifyOptions{Fast: c.Bool("fast"), Logger: e.log})
			if err != nil {
				return err
			}
			out := struct {
				ID string `json:"id"`
				OK bool   `json:"ok"`
				*manifest.VerifyResult
			}{id, res.OK(), res}
			if res.Problems == nil {
				res.Problems = []manifest.Problem{}
			}
			e.result(out, func(w io.Writer) {
				for _, p := range res.Problems {
					fmt.Fprintf(w, "%s\n", p)
				}
				if res.OK() {
					fmt.Fprintf(w, "ok: %s matches its manifest (%d entries, %s hashed)\n", id, res.Entries, humanBytes(res.BytesHashed))
				}
			})
			if !res.OK() {
				err := res.Err()
				if e.json {
					// The result object already says what differs; exit 4 without a second object.
					return silentError{err}
				}
				return err
			}
			return nil
		},
	}
}

func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "clean up after a crashed hotsnap command (every command does this first)",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag()),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			res, err := snapshot.Recover(c.Context, l, e.log)
			if err != nil {
				return err
			}
			e.result(res, func(w io.Writer) {
				if len(res.Removed) == 0 && res.Restore == "" && len(res.Thawed) == 0 {
					fmt.Fprintln(w, "nothing to recover")
				}
				for _, t := range res.Thawed {
					fmt.Fprintf(w, "resumed processes a killed hotsnap had stopped: %s\n", t)
				}
				for _, p := range res.Removed {
					fmt.Fprintf(w, "removed %s\n", p)
				}
				if res.Restore != "" {
					fmt.Fprintf(w, "restore: %s\n", res.Restore)
				}
			})
			return nil
		},
	}
}
