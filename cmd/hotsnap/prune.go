package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/report"
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

func pruneCommand() *cli.Command {
	flags := append([]cli.Flag{&cli.DurationFlag{Name: "failsafe-older-than", Usage: "also drop the failsafes of restores older than this (e.g. 72h); alone, prunes no snapshot"}}, keepFlags()...)
	return localCmd("prune", "remove local snapshots that no keep rule keeps (rules combine; the newest always stays)", false, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
			res := &snapshot.PruneResult{DryRun: c.Bool("dry-run"), Keep: []retention.Decision{}, Remove: []retention.Decision{}}
			kp, now, err := keepPolicy(c), time.Now(), error(nil)
			if kp != (retention.KeepPolicy{}) || !c.IsSet("failsafe-older-than") {
				if res, err = snapshot.Prune(c.Context, l, kp, c.Bool("dry-run"), now, e.log); err != nil {
					return err
				}
			}
			res.FailsafesDropped = []snapshot.FailsafeInfo{}
			if c.IsSet("failsafe-older-than") {
				res.FailsafesDropped, err = snapshot.PruneFailsafes(c.Context, l, c.Duration("failsafe-older-than"), c.Bool("dry-run"), now, e.log)
			}
			return show(e, res, err, report.Prune)
		})
}
