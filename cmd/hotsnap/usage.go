package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/retention"
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

func keepFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "keep-last", Usage: "keep the N newest"},
		&cli.DurationFlag{Name: "keep-within", Usage: "keep every snapshot newer than this (e.g. 24h)"},
		&cli.IntFlag{Name: "keep-hourly", Usage: "keep the newest of each of the last N hours"},
		&cli.IntFlag{Name: "keep-daily", Usage: "keep the newest of each of the last N days (UTC)"},
		&cli.IntFlag{Name: "keep-weekly", Usage: "keep the newest of each of the last N ISO weeks"},
		&cli.IntFlag{Name: "keep-monthly", Usage: "keep the newest of each of the last N months (UTC)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "say what would be removed; remove nothing"},
	}
}

func keepPolicy(c *cli.Context) retention.KeepPolicy {
	return retention.KeepPolicy{Last: c.Int("keep-last"), Within: c.Duration("keep-within"),
		Hourly: c.Int("keep-hourly"), Daily: c.Int("keep-daily"), Weekly: c.Int("keep-weekly"), Monthly: c.Int("keep-monthly")}
}

func printPrune(w io.Writer, res *snapshot.PruneResult) {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	for _, d := range res.Keep {
		fmt.Fprintf(w, "keep    %s (%s)\n", d.ID, strings.Join(d.Reasons, ", "))
	}
	for _, d := range res.Remove {
		fmt.Fprintf(w, "%s %s\n", verb, d.ID)
	}
	fmt.Fprintf(w, "%d kept, %d %s\n", len(res.Keep), len(res.Remove), verb)
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove local snapshots that no keep rule keeps (rules combine; the newest always stays)",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag()}, keepFlags()...)...),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			res, err := snapshot.Prune(c.Context, l, keepPolicy(c), c.Bool("dry-run"), time.Now(), e.log)
			if err != nil {
				return err
			}
			e.result(res, func(w io.Writer) { printPrune(w, res) })
			return nil
		},
	}
}
