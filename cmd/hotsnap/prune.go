package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/retention"
	"github.com/hotsnap/hotsnap/snapshot"
)

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
	for _, fi := range res.FailsafesDropped {
		fmt.Fprintf(w, "%s failsafe %s (%s)\n", verb, fi.Name, humanBytes(fi.Bytes))
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
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(),
			&cli.DurationFlag{Name: "failsafe-older-than", Usage: "also drop the failsafes of restores older than this (e.g. 72h); alone, prunes no snapshot"}}, keepFlags()...)...),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			res := &snapshot.PruneResult{DryRun: c.Bool("dry-run"), Keep: []retention.Decision{}, Remove: []retention.Decision{}}
			kp, now := keepPolicy(c), time.Now()
			if kp != (retention.KeepPolicy{}) || !c.IsSet("failsafe-older-than") {
				if res, err = snapshot.Prune(c.Context, l, kp, c.Bool("dry-run"), now, e.log); err != nil {
					return err
				}
			}
			res.FailsafesDropped = []snapshot.FailsafeInfo{}
			if age := c.Duration("failsafe-older-than"); c.IsSet("failsafe-older-than") {
				old := func(fi snapshot.FailsafeInfo) bool { return !fi.CreatedAt.IsZero() && now.Sub(fi.CreatedAt) > age }
				if c.Bool("dry-run") {
					all, err := snapshot.Failsafes(c.Context, l, e.log)
					if err != nil {
						return err
					}
					for _, fi := range all {
						if old(fi) {
							res.FailsafesDropped = append(res.FailsafesDropped, fi)
						}
					}
				} else if res.FailsafesDropped, err = snapshot.DropFailsafes(c.Context, l, old, e.log); err != nil {
					return err
				}
			}
			e.result(res, func(w io.Writer) { printPrune(w, res) })
			return nil
		},
	}
}
