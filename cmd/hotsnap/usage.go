package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/snapshot"
)

func usageCommand() *cli.Command {
	return &cli.Command{
		Name:  "usage",
		Usage: "what snapshots cost on disk (hard-link aware, each inode counted once)",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag()),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			u, err := snapshot.Usage(c.Context, l, e.log)
			if err != nil {
				return err
			}
			e.result(u, func(w io.Writer) {
				fmt.Fprintf(w, "live data:                   %s\n", humanBytes(u.LiveBytes))
				fmt.Fprintf(w, "pinned by snapshots only:    %s (freed if every snapshot were deleted)\n", humanBytes(u.PinnedBytes))
				if u.StateBytes > 0 {
					fmt.Fprintf(w, "held by .hotsnap (failsafe): %s\n", humanBytes(u.StateBytes))
				}
				if u.ExternalBytes > 0 {
					fmt.Fprintf(w, "linked from outside too:     %s (not freed by deleting snapshots)\n", humanBytes(u.ExternalBytes))
				}
				fmt.Fprintf(w, "filesystem free:             %s of %s\n", humanBytes(int64(u.Filesystem.FreeBytes)), humanBytes(int64(u.Filesystem.TotalBytes)))
				for _, fi := range u.Failsafes {
					fmt.Fprintf(w, "failsafe %s: %s (the state restore of %s replaced; hotsnap failsafe drop frees it)\n", fi.Name, humanBytes(fi.Bytes), fi.Restored)
				}
				if len(u.Snapshots) > 0 {
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tONLY IT HOLDS\tREFERENCES")
					for _, s := range u.Snapshots {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", s.ID, humanBytes(s.ExclusiveBytes), humanBytes(s.TotalBytes))
					}
					tw.Flush()
				}
			})
			return nil
		},
	}
}
