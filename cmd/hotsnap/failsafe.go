package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot"
)

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
					e.result(map[string]any{"failsafes": all}, func(w io.Writer) {
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
