package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

func runCommand() *cli.Command {
	flags := flagGroups([]cli.Flag{nodeIDFlag("this node's id, recorded in the topology"), allowInconsistentFlag(),
		&cli.StringFlag{Name: "policy", EnvVars: []string{"HOTSNAP_POLICY"}, Usage: "the policy file (JSON: label, remote, keepLocal, keepRemote, gc)"},
	}, captureFlags(), quiesceFlags(), remoteFlags())
	return localCmd("run", "run a backup policy: create, upload, prune local and forget remote snapshots by keep rules, gc; one JSON result", false, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, _ string) error {
			p, err := loadPolicy(c)
			if err != nil {
				return err
			}
			if err := p.Check(); err != nil {
				return err
			}
			q, closeQ, err := l.NewQuiescer(c.Context, quiesceConfig(c), false)
			if err != nil {
				return err
			}
			defer closeQ()
			create := createOptions(c, e, q)
			create.Label, create.Logger, create.Progress = "", nil, nil // the policy's label; its own logger; one result
			res, err := pipeline.Run(c.Context, l, p, pipeline.Options{Create: create, Logger: e.log, OpenRemote: remoteOpener(c, true)})
			if res != nil {
				return e.Partial(res, report.Policy(res), err)
			}
			return err
		})
}
