package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/fsutil"
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

func failsafeCommand() *cli.Command {
	return &cli.Command{
		Name:  "failsafe",
		Usage: "show or drop the states restores replaced (kept in .hotsnap/private/failsafe until the next restore)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "the failsafes, with the bytes only each holds",
				Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag()),
				Action: func(c *cli.Context) error {
					e, l, _, err := prologue(c, false)
					if err != nil {
						return err
					}
					all, err := snapshot.Failsafes(c.Context, l, e.log)
					if err != nil {
						return err
					}
					e.result(all, func(w io.Writer) {
						if len(all) == 0 {
							fmt.Fprintln(w, "no failsafes")
						}
						for _, fi := range all {
							fmt.Fprintf(w, "%s\t%s\t(replaced by the restore of %s)\n", fi.Name, humanBytes(fi.Bytes), fi.Restored)
						}
					})
					return nil
				},
			},
			{
				Name:  "drop",
				Usage: "drop failsafes: --name N, --older-than D, or --all",
				Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag(),
					&cli.StringFlag{Name: "name", Usage: "the failsafe to drop (as failsafe list names it)"},
					&cli.DurationFlag{Name: "older-than", Usage: "drop those older than this"},
					&cli.BoolFlag{Name: "all", Usage: "drop every failsafe"}),
				Action: func(c *cli.Context) error {
					e, l, _, err := prologue(c, false)
					if err != nil {
						return err
					}
					n := 0
					for _, f := range []string{"name", "older-than", "all"} {
						if c.IsSet(f) {
							n++
						}
					}
					if n != 1 {
						return usageError{errors.New("failsafe drop takes one of --name, --older-than, --all")}
					}
					now := time.Now()
					name, age, all := c.String("name"), c.Duration("older-than"), c.Bool("all")
					dropped, err := snapshot.DropFailsafes(c.Context, l, func(fi snapshot.FailsafeInfo) bool {
						return all || fi.Name == name || c.IsSet("older-than") && !fi.CreatedAt.IsZero() && now.Sub(fi.CreatedAt) > age
					}, e.log)
					if err != nil {
						return err
					}
					if name != "" && len(dropped) == 0 {
						return fmt.Errorf("failsafe %s: %w", fsutil.Quote(name), snapshot.ErrNotFound)
					}
					e.result(map[string]any{"dropped": dropped}, func(w io.Writer) {
						for _, fi := range dropped {
							fmt.Fprintf(w, "dropped failsafe %s (%s)\n", fi.Name, humanBytes(fi.Bytes))
						}
						if len(dropped) == 0 {
							fmt.Fprintln(w, "no failsafe dropped")
						}
					})
					return nil
				},
			},
		},
	}
}
