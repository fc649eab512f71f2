package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/snapshot"
)

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
