package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/report"
)

// coordinator builds a coordinator from the cluster flags.
func coordinator(c *cli.Context) (*env, *cluster.Coordinator, func(), error) {
	if err := noArgs(c); err != nil {
		return nil, nil, nil, err
	}
	e := getEnv(c)
	auth, err := authFiles(c).Client(c.String("cluster"))
	if err != nil {
		return nil, nil, nil, err
	}
	agency, err := etcdFiles(c).Dial(c.Context)
	if err != nil {
		return nil, nil, nil, err
	}
	co := &cluster.Coordinator{Agency: agency, Auth: auth, Logger: e.log, Progress: e.ClusterProgress()}
	return e, co, func() { agency.Close() }, nil
}

// clusterCmd is a cluster command: the cluster flags and flags, and an
// action given a coordinator.
func clusterCmd(name, usage string, flags []cli.Flag, action func(c *cli.Context, e *env, co *cluster.Coordinator) error) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage,
		Flags: withOutput(append(clusterFlags(), flags...)...),
		Action: func(c *cli.Context) error {
			e, co, closeFn, err := coordinator(c)
			if err != nil {
				return err
			}
			defer closeFn()
			return action(c, e, co)
		},
	}
}

func clusterCreateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "max-wait-for-lock", Value: defaults.MaxWaitForLock, Usage: "total time to try locking all nodes at once"},
		&cli.DurationFlag{Name: "lock-period", Value: defaults.LockPeriod, Usage: "first attempt's period; each retry is 10% longer"},
		&cli.DurationFlag{Name: "lock-lease", Value: defaults.LockLease, Usage: "how long a node keeps writes stopped without hearing from this coordinator"},
		&cli.DurationFlag{Name: "max-wait-for-agency", Usage: "how long to wait for another cluster backup to end (default --max-wait-for-lock)"},
		&cli.BoolFlag{Name: "allow-inconsistent", Usage: "on lock timeout (or a plan change) take the snapshot anyway, flagged potentiallyInconsistent"},
		&cli.BoolFlag{Name: "force", Usage: "ask every node's application to abort long write transactions while the lock waits"},
		&cli.BoolFlag{Name: "allow-missing-nodes", Usage: "when expected nodes have no live agent, take a partial snapshot of the others (never available) instead of refusing (exit 5)"},
	}
}

func clusterCreateOptions(c *cli.Context) cluster.CreateOptions {
	return cluster.CreateOptions{MaxWait: c.Duration("max-wait-for-lock"),
		InitialPeriod: c.Duration("lock-period"), Lease: c.Duration("lock-lease"), AgencyWait: c.Duration("max-wait-for-agency"),
		AllowInconsistent: c.Bool("allow-inconsistent"), Force: c.Bool("force"), AllowMissingNodes: c.Bool("allow-missing-nodes")}
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "consistent snapshots of every node at once, through the agents (etcd as the agency)",
		Subcommands: []*cli.Command{
			caCommand(), clusterRunCommand(), clusterCreateCommand(), clusterListCommand(), clusterPruneCommand(), clusterDeleteCommand(),
			clusterJobCommand("verify", "re-hash every node's piece against its manifest",
				fastVerifyFlag("compare sizes and times only"), oldFlag("fast", "fast-verify", false)),
			clusterRestoreCommand(),
			clusterJobCommand("upload", "upload every node's piece to the archive (the agents' credentials)",
				&cli.StringFlag{Name: "remote", EnvVars: []string{"HOTSNAP_REMOTE"}, Usage: "archive, as the agents resolve it: file:///abs/path, s3://bucket/prefix or NAME:bucket/prefix"}),
			clusterJobCommand("download", "download every node's piece from the archive",
				&cli.StringFlag{Name: "remote", EnvVars: []string{"HOTSNAP_REMOTE"}, Usage: "archive, as the agents resolve it"}),
			clusterFollowCommand("status", "show a job on every node", (*cluster.Coordinator).Status),
			clusterFollowCommand("abort", "abort a job on every node; says how each ended (ABORTED, or how it ended first)", (*cluster.Coordinator).Abort),
			clusterPlanCommand(),
		},
	}
}

func clusterRunCommand() *cli.Command {
	flags := append(append([]cli.Flag{
		&cli.StringFlag{Name: "policy", EnvVars: []string{"HOTSNAP_POLICY"}, Usage: "the policy file (as for hotsnap run)"},
	}, clusterCreateFlags()...), remoteFlags()...)
	return clusterCmd("run", "run a backup policy cluster-wide: cluster create, upload on every node, prune, forget and gc; one JSON result", flags,
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			p, err := loadPolicy(c)
			if err != nil {
				return err
			}
			res, err := co.RunPolicy(c.Context, p, clusterCreateOptions(c), remoteOpener(c, false))
			if res != nil {
				return e.Partial(res, report.Policy(res), err)
			}
			return err
		})
}

// loadPolicy reads --policy; its remote defaults to --remote.
func loadPolicy(c *cli.Context) (*pipeline.Policy, error) {
	if c.String("policy") == "" {
		return nil, usageError{errors.New("--policy FILE is required (see docs/snapshots.md, run)")}
	}
	p, err := pipeline.Load(c.String("policy"))
	if err != nil {
		return nil, err
	}
	if p.Remote == "" {
		p.Remote = c.String("remote")
	}
	return p, nil
}

func clusterCreateCommand() *cli.Command {
	return clusterCmd("create", "lock every node at the same instant and snapshot them all with one id",
		append([]cli.Flag{&cli.StringFlag{Name: "label", Usage: "id suffix (default: a random UUID)"}}, clusterCreateFlags()...),
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			o := clusterCreateOptions(c)
			o.Label = c.String("label")
			res, err := co.Create(c.Context, o)
			if err != nil {
				return err
			}
			e.Result(res, report.ClusterCreate(res))
			return nil
		})
}

func clusterListCommand() *cli.Command {
	return clusterCmd("list", "list cluster snapshots: available when every node of the plan has its piece", nil,
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			res, err := co.List(c.Context)
			if err != nil {
				return err
			}
			e.Result(report.ClusterList(res), report.ClusterListText(res))
			return nil
		})
}

func clusterPruneCommand() *cli.Command {
	return clusterCmd("prune", "remove partial cluster snapshots (a node of their plan has no piece) older than --partial-older-than", []cli.Flag{
		&cli.DurationFlag{Name: "partial-older-than", Usage: "age past which a partial snapshot is removed (e.g. 24h)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "say what would be removed; remove nothing"}},
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			if !c.IsSet("partial-older-than") {
				return usageError{errors.New("--partial-older-than is required (available snapshots are never pruned here)")}
			}
			res, err := co.PrunePartial(c.Context, c.Duration("partial-older-than"), c.Bool("dry-run"), time.Now())
			if err != nil {
				return err
			}
			e.Result(res, report.ClusterPrune(res))
			return nil
		})
}

func clusterDeleteCommand() *cli.Command {
	return clusterCmd("delete", "delete a cluster snapshot's piece on every node", []cli.Flag{idFlag()},
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			id, err := requireID(c)
			if err != nil {
				return err
			}
			res, err := co.Delete(c.Context, id)
			if err != nil {
				return err
			}
			e.Result(res, report.Line("deleted %s on %s", res.ID, strings.Join(res.Deleted, ", ")))
			return nil
		})
}

func clusterRestoreCommand() *cli.Command {
	return clusterCmd("restore", "restore a cluster snapshot on every node: all pieces proved first; all or none", []cli.Flag{idFlag(),
		&cli.BoolFlag{Name: "dry-run", Usage: "prove every piece and the plan, change nothing"},
		&cli.BoolFlag{Name: "ignore-version", Usage: "skip the app version rule (said in the output)"}},
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			id, err := requireID(c)
			if err != nil {
				return err
			}
			res, err := co.Restore(c.Context, id, cluster.RestoreOptions{DryRun: c.Bool("dry-run"), IgnoreVersion: c.Bool("ignore-version")})
			if err != nil {
				return err
			}
			e.Result(res, report.ClusterRestore(res))
			return nil
		})
}

// clusterJobCommand is cluster verify, upload or download: a job on
// every node, followed to its end, or started alone with --detach.
func clusterJobCommand(op, usage string, flags ...cli.Flag) *cli.Command {
	flags = append([]cli.Flag{idFlag(), &cli.BoolFlag{Name: "detach",
		Usage: "start the job on every node, print its id and exit (cluster status --job follows it, cluster abort --job stops it)"}}, flags...)
	return clusterCmd(op, usage, flags, func(c *cli.Context, e *env, co *cluster.Coordinator) error {
		id, err := requireID(c)
		if err != nil {
			return err
		}
		req := cluster.JobRequest{FastVerify: boolFlag(c, "fast-verify", "fast"), Remote: c.String("remote")}
		if op != "verify" && req.Remote == "" {
			return usageError{errors.New("--remote (or HOTSNAP_REMOTE) is required")}
		}
		if c.Bool("detach") {
			res, err := co.StartJobs(c.Context, op, id, req)
			if res != nil {
				return e.Partial(res, report.JobsStarted(op, res), err)
			}
			return err
		}
		res, err := co.RunJobs(c.Context, op, id, req)
		if err != nil {
			return err
		}
		e.Result(res, report.JobsDone(op, res))
		return nil
	})
}

// clusterFollowCommand is cluster status or abort: do to --job on every
// node, and show how it stands.
func clusterFollowCommand(name, usage string, do func(*cluster.Coordinator, context.Context, string) ([]cluster.Job, error)) *cli.Command {
	return clusterCmd(name, usage, []cli.Flag{&cli.StringFlag{Name: "job", Usage: "job id (printed by upload, download, verify)"}},
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			if c.String("job") == "" {
				return usageError{errors.New("--job is required")}
			}
			jobs, err := do(co, c.Context, c.String("job"))
			if err != nil {
				return err
			}
			e.Result(map[string]any{"jobs": jobs}, report.Jobs(jobs))
			return nil
		})
}

func clusterPlanCommand() *cli.Command {
	return clusterCmd("plan", "show the plan (live agents and the user plan); --set stores user JSON in it", []cli.Flag{
		&cli.StringFlag{Name: "set", Usage: "file of JSON to store as the user plan"},
		&cli.BoolFlag{Name: "clear", Usage: "remove the user plan"},
		&cli.StringFlag{Name: "expect", Usage: "declare the node ids every cluster snapshot must hold (comma-separated); held until changed"},
		&cli.BoolFlag{Name: "forget-expected", Usage: "forget the declared nodes (the next cluster create records its own)"}},
		func(c *cli.Context, e *env, co *cluster.Coordinator) error {
			if err := changePlan(c, co.Agency); err != nil {
				return err
			}
			p, err := co.Agency.ReadPlan(c.Context)
			if err != nil {
				return err
			}
			e.Result(report.Plan(p), report.PlanText(p))
			return nil
		})
}

// changePlan does what cluster plan's --set, --clear, --expect and
// --forget-expected ask.
func changePlan(c *cli.Context, a *cluster.Agency) error {
	switch {
	case c.String("set") != "" && c.Bool("clear"):
		return usageError{errors.New("--set and --clear exclude each other")}
	case c.IsSet("expect") && c.Bool("forget-expected"):
		return usageError{errors.New("--expect and --forget-expected exclude each other")}
	case c.String("set") != "":
		b, err := os.ReadFile(c.String("set"))
		if err != nil {
			return err
		}
		if err := a.SetPlan(c.Context, json.RawMessage(b)); err != nil {
			return err
		}
	case c.Bool("clear"):
		if err := a.SetPlan(c.Context, nil); err != nil {
			return err
		}
	}
	switch {
	case c.IsSet("expect"):
		var nodes []string
		for _, n := range strings.Split(c.String("expect"), ",") {
			if n = strings.TrimSpace(n); n != "" {
				nodes = append(nodes, n)
			}
		}
		if len(nodes) == 0 {
			return usageError{errors.New("--expect needs node ids (or use --forget-expected)")}
		}
		_, err := a.SetExpected(c.Context, nodes, "operator", false)
		return err
	case c.Bool("forget-expected"):
		_, err := a.SetExpected(c.Context, nil, "", false)
		return err
	}
	return nil
}
