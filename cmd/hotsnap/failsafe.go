package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

func failsafeCommand() *cli.Command {
	return &cli.Command{
		Name:        "failsafe",
		Usage:       "show or drop the states restores replaced (kept in .hotsnap/private/failsafe until the next restore)",
		Subcommands: []*cli.Command{failsafeListCommand(), failsafeDropCommand()},
	}
}

func failsafeListCommand() *cli.Command {
	return localCmd("list", "the failsafes, with the bytes only each holds", false, nil, func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
		all, err := snapshot.Failsafes(c.Context, l, e.log)
		if err != nil {
			return err
		}
		e.Result(map[string]any{"failsafes": all}, report.Failsafes(all))
		return nil
	})
}

func failsafeDropCommand() *cli.Command {
	flags := []cli.Flag{&cli.StringFlag{Name: "name", Usage: "the failsafe to drop (as failsafe list names it)"},
		&cli.DurationFlag{Name: "older-than", Usage: "drop those older than this"},
		&cli.BoolFlag{Name: "all", Usage: "drop every failsafe"}}
	return localCmd("drop", "drop failsafes: --name N, --older-than D, or --all", false, flags, func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
		n := 0
		for _, f := range []string{"name", "older-than", "all"} {
			if c.IsSet(f) {
				n++
			}
		}
		var dropped []snapshot.FailsafeInfo
		var err error
		switch name := c.String("name"); {
		case n != 1:
			return usageError{errors.New("failsafe drop takes one of --name, --older-than, --all")}
		case c.IsSet("older-than"):
			dropped, err = snapshot.PruneFailsafes(c.Context, l, c.Duration("older-than"), false, time.Now(), e.log)
		default:
			dropped, err = snapshot.DropFailsafes(c.Context, l, func(fi snapshot.FailsafeInfo) bool { return c.Bool("all") || fi.Name == name }, e.log)
			if err == nil && name != "" && len(dropped) == 0 {
				return fmt.Errorf("failsafe %s: %w", fsutil.Quote(name), snapshot.ErrNotFound)
			}
		}
		if err != nil {
			return err
		}
		e.Result(map[string]any{"dropped": dropped}, report.FailsafesDropped(dropped))
		return nil
	})
}
