package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/policy"
	"github.com/hotsnap/hotsnap/snapshot"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run a backup policy: create, upload, prune local and forget remote snapshots by keep rules, gc; one JSON result",
		Flags: withOutput(flagGroups([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), nodeIDFlag("this node's id, recorded in the topology"), allowInconsistentFlag(),
			&cli.StringFlag{Name: "policy", EnvVars: []string{"HOTSNAP_POLICY"}, Usage: "the policy file (JSON: label, remote, keepLocal, keepRemote, gc)"},
		}, captureFlags(), quiesceFlags(), remoteFlags())...),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			if c.String("policy") == "" {
				return usageError{errors.New("--policy FILE is required (see docs/snapshots.md, run)")}
			}
			p, err := policy.Load(c.String("policy"))
			if err != nil {
				return err
			}
			if p.Remote == "" {
				p.Remote = c.String("remote")
			}
			if err := p.Check(); err != nil {
				return err
			}
			q, closeQ, err := snapshot.NewQuiescer(c.Context, l, quiesceConfig(c), false)
			if err != nil {
				return err
			}
			defer closeQ()
			create := createOptions(c, e, q)
			create.Label, create.Logger, create.Progress = "", nil, nil // the policy's label; its own logger; one result
			res, err := policy.Run(c.Context, l, p, policy.Options{
				Create: create,
				OpenRemote: func(ctx context.Context, spec string) (*archive.Repo, error) {
					o, err := remoteOptions(c)
					if err != nil {
						return nil, err
					}
					return remote.Open(ctx, spec, o, true)
				},
				Logger: e.log,
			})
			if res != nil {
				return e.partial(res, func(w io.Writer) { printPolicy(w, res) }, err)
			}
			return err
		},
	}
}

func printPolicy(w io.Writer, res *policy.Result) {
	for _, s := range res.Steps {
		status := "ok"
		if !s.OK {
			status = "FAILED: " + s.Error
		}
		detail := s.ID
		if len(s.Removed) > 0 {
			detail = "removed " + strings.Join(s.Removed, ", ")
		}
		fmt.Fprintf(w, "%-7s %-6s %.0f ms %s\n", s.Step, status, s.DurationMs, detail)
	}
}
