package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/fsutil"
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
			e.result(map[string]any{"snapshots": infos}, func(w io.Writer) {
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
