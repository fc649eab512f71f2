package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster/ca"
)

const day = 24 * time.Hour

// caCommand makes a cluster's CA and its certificates (docs/cluster.md
// security): one per agent naming its node id, one per coordinator naming
// its role.
func caCommand() *cli.Command {
	return &cli.Command{
		Name:        "ca",
		Usage:       "make the cluster's certificate authority and the agents' and coordinators' certificates",
		Subcommands: []*cli.Command{caInitCommand(), caIssueCommand()},
	}
}

func caInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "make a new CA: DIR/ca.pem (give it to every agent and coordinator) and DIR/ca-key.pem (keep it offline)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", EnvVars: []string{"HOTSNAP_CLUSTER"}, Usage: "cluster name"},
			&cli.StringFlag{Name: "ca-dir", Usage: "directory to write the CA into (created 0700)"}, oldFlag("dir", "ca-dir", true),
			&cli.IntFlag{Name: "days", Value: 3650, Usage: "validity"},
		},
		Action: func(c *cli.Context) error {
			dir := stringFlag(c, "ca-dir", "dir")
			if c.String("cluster") == "" || dir == "" {
				return usageError{errors.New("--cluster and --ca-dir are required")}
			}
			cert, err := ca.Init(dir, c.String("cluster"), time.Duration(c.Int("days"))*day)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "CA of cluster %s: %s\n", c.String("cluster"), cert)
			return nil
		},
	}
}

func caIssueCommand() *cli.Command {
	return &cli.Command{
		Name:  "issue",
		Usage: "issue a certificate: --node ID for an agent, --operator NAME or --reader NAME for a coordinator; writes PREFIX.pem and PREFIX-key.pem",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", EnvVars: []string{"HOTSNAP_CLUSTER"}, Usage: "cluster name"},
			&cli.StringFlag{Name: "ca-dir", Usage: "the directory of ca init"},
			&cli.StringFlag{Name: "node", Usage: "an agent's node id"},
			&cli.StringSliceFlag{Name: "host", Usage: "with --node: a DNS name or IP address of the agent (for other TLS clients; hotsnap checks the node id)"},
			&cli.StringFlag{Name: "operator", Usage: "a coordinator that may do everything"},
			&cli.StringFlag{Name: "reader", Usage: "a coordinator that may only list, read status and metrics"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "path prefix of the files written"}, oldFlag("out", "output", true),
			&cli.IntFlag{Name: "days", Value: 825, Usage: "validity"},
		},
		Action: func(c *cli.Context) error {
			var id ca.Identity
			n := 0
			for _, k := range []string{"node", "operator", "reader"} {
				if v := c.String(k); v != "" {
					id, n = ca.Identity{Cluster: c.String("cluster"), Kind: k, Name: v}, n+1
				}
			}
			out := stringFlag(c, "output", "out")
			if n != 1 || c.String("ca-dir") == "" || out == "" || c.String("cluster") == "" {
				return usageError{errors.New("give --cluster, --ca-dir, --output and one of --node, --operator, --reader")}
			}
			authority, err := ca.Open(c.String("ca-dir"))
			if err != nil {
				return err
			}
			if err := authority.IssueFiles(id, c.StringSlice("host"), time.Duration(c.Int("days"))*day, out); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %s.pem\n", id, out)
			return nil
		},
	}
}
