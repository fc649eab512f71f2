package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

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
