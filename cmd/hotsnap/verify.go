package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "compare a snapshot's tree with its sealed manifest (re-hashes every file unless --fast-verify)",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(),
			fastVerifyFlag("check stat only (type, size, mtime, mode, symlink target)"), oldFlag("fast", "fast-verify", false)),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			o := snapshot.VerifyOptions{Fast: boolFlag(c, "fast-verify", "fast"), Logger: e.log}
			var p archive.Progress = archive.NoProgress{}
			if h, err := snapshot.ReadHeader(l, id); err == nil && !o.Fast {
				// Progress of the re-hash: a bar on a terminal, progress
				// events with --json (ended before the result line).
				p = e.progressFor()
				p.Start("verify", h.Totals.Files, h.Totals.Bytes)
				o.OnHashed = func(n int64) { p.Add(1, n) }
			}
			res, err := snapshot.Verify(c.Context, l, id, o)
			p.Done()
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
