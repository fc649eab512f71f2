package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/policy"
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
	co := &cluster.Coordinator{Agency: agency, Auth: auth, Logger: e.log}
	co.Progress = e.clusterProgress()
	return e, co, func() { agency.Close() }, nil
}

// clusterProgress prints per-node job progress: JSON lines with --json,
// a line on stderr (at most every 2 s, and on every node finishing) otherwise.
func (e *env) clusterProgress() func(cluster.JobsProgress) {
	var last time.Time
	lastDone := -1
	return func(p cluster.JobsProgress) {
		switch {
		case e.json:
			if time.Since(last) >= 500*time.Millisecond || p.Done != lastDone {
				writeEvent(e.stdout, evProgress, map[string]any{"op": p.Op, "id": p.ID, "jobId": p.JobID, "nodes": p.Nodes, "nodesDone": p.Done, "jobs": p.Jobs})
				last, lastDone = time.Now(), p.Done
			}
		case e.quiet:
		default:
			if time.Since(last) >= 2*time.Second || p.Done != lastDone {
				fmt.Fprintln(e.stderr, p.String())
				last, lastDone = time.Now(), p.Done
			}
		}
	}
}

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
			caCommand(),
			clusterCmd("run", "run a backup policy cluster-wide: cluster create, upload on every node, prune, forget and gc; one JSON result",
				append(append([]cli.Flag{
					&cli.StringFlag{Name: "policy", EnvVars: []string{"HOTSNAP_POLICY"}, Usage: "the policy file (as for hotsnap run)"},
				}, clusterCreateFlags()...), remoteFlags()...),
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					if c.String("policy") == "" {
						return usageError{errors.New("--policy FILE is required")}
					}
					p, err := policy.Load(c.String("policy"))
					if err != nil {
						return err
					}
					if p.Remote == "" {
						p.Remote = c.String("remote")
					}
					res, err := co.RunPolicy(c.Context, p, clusterCreateOptions(c), func(ctx context.Context, spec string) (*archive.Repo, error) {
						o, err := remoteOptions(c)
						if err != nil {
							return nil, err
						}
						return remote.Open(ctx, spec, o, false)
					})
					if res != nil {
						return e.partial(res, func(w io.Writer) { printPolicy(w, res) }, err)
					}
					return err
				}),
			clusterCmd("create", "lock every node at the same instant and snapshot them all with one id",
				append([]cli.Flag{&cli.StringFlag{Name: "label", Usage: "id suffix (default: a random UUID)"}}, clusterCreateFlags()...),
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					o := clusterCreateOptions(c)
					o.Label = c.String("label")
					res, err := co.Create(c.Context, o)
					if err != nil {
						return err
					}
					e.result(res, func(w io.Writer) {
						fmt.Fprintf(w, "created %s on %d nodes (%s), plan revision %d\n", res.ID, len(res.Nodes), strings.Join(res.Nodes, ", "), res.PlanRevision)
						fmt.Fprintf(w, "  lock: %d attempt(s), %.0f ms to lock all; writes paused at most %.1f ms on a node; took %.0f ms\n",
							res.LockAttempts, res.LockWaitMs, res.MaxLockHeldMs, res.DurationMs)
						for _, p := range res.Pieces {
							fmt.Fprintf(w, "  node %s: %d files, %s, paused %.1f ms\n", p.Node, p.Files, humanBytes(p.Bytes), p.LockHeldMs)
						}
						for _, wn := range res.Warnings {
							fmt.Fprintf(w, "  WARNING: %s\n", wn)
						}
						if len(res.ExpectedRecorded) > 0 {
							fmt.Fprintf(w, "  recorded the expected nodes %s: every later cluster create must hold them (cluster plan --expect changes them)\n", strings.Join(res.ExpectedRecorded, ", "))
						}
					})
					return nil
				}),
			clusterCmd("list", "list cluster snapshots: available when every node of the plan has its piece", nil,
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					res, err := co.List(c.Context)
					if err != nil {
						return err
					}
					items := make([]listItem, len(res.Snapshots))
					for i, s := range res.Snapshots {
						items[i] = clusterItem(s)
					}
					out := map[string]any{"cluster": res.Cluster, "nodes": res.Nodes, "snapshots": items, "unreachable": res.Unreachable}
					e.result(out, func(w io.Writer) {
						tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
						fmt.Fprintln(tw, "ID\tAVAILABLE\tPIECES\tNODES\tSIZE\tFLAGS")
						for _, s := range res.Snapshots {
							var fl []string
							if s.Partial {
								fl = append(fl, "partial (missing "+strings.Join(s.Missing, ",")+")")
							}
							if s.PotentiallyInconsistent {
								fl = append(fl, "potentiallyInconsistent")
							}
							flags := strings.Join(fl, " ")
							fmt.Fprintf(tw, "%s\t%v\t%d/%d\t%s\t%s\t%s\n", s.ID, s.Available, s.NrPiecesPresent, len(s.Nodes), strings.Join(s.Nodes, ","), humanBytes(s.Bytes), dash(flags))
						}
						tw.Flush()
						for n, why := range res.Unreachable {
							fmt.Fprintf(w, "WARNING: node %s did not answer: %s\n", n, why)
						}
					})
					return nil
				}),
			clusterCmd("prune", "remove partial cluster snapshots (a node of their plan has no piece) older than --partial-older-than", []cli.Flag{
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
					e.result(res, func(w io.Writer) {
						verb := "removed"
						if res.DryRun {
							verb = "would remove"
						}
						for _, id := range res.Removed {
							fmt.Fprintf(w, "%s partial snapshot %s\n", verb, id)
						}
						if len(res.Removed) == 0 {
							fmt.Fprintln(w, "no partial snapshot to remove")
						}
					})
					return nil
				}),
			clusterCmd("delete", "delete a cluster snapshot's piece on every node", []cli.Flag{idFlag()},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					id, err := requireID(c)
					if err != nil {
						return err
					}
					res, err := co.Delete(c.Context, id)
					if err != nil {
						return err
					}
					e.result(res, func(w io.Writer) {
						fmt.Fprintf(w, "deleted %s on %s\n", res.ID, strings.Join(res.Deleted, ", "))
					})
					return nil
				}),
			clusterCmd("verify", "re-hash every node's piece against its manifest", []cli.Flag{idFlag(),
				fastVerifyFlag("compare sizes and times only"), oldFlag("fast", "fast-verify", false), detachFlag()},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					return runJobs(c, e, co, "verify", cluster.JobRequest{FastVerify: boolFlag(c, "fast-verify", "fast")})
				}),
			clusterCmd("restore", "restore a cluster snapshot on every node: all pieces proved first; all or none", []cli.Flag{idFlag(),
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
					e.result(res, func(w io.Writer) {
						if res.DryRun {
							fmt.Fprintf(w, "dry run: %s can be restored on %s; nothing was changed\n", res.ID, strings.Join(res.Nodes, ", "))
						} else {
							fmt.Fprintf(w, "restored %s on %s\n", res.ID, strings.Join(res.Nodes, ", "))
						}
					})
					return nil
				}),
			clusterCmd("upload", "upload every node's piece to the archive (the agents' credentials)", []cli.Flag{idFlag(),
				&cli.StringFlag{Name: "remote", EnvVars: []string{"HOTSNAP_REMOTE"}, Usage: "archive, as the agents resolve it: file:///abs/path, s3://bucket/prefix or NAME:bucket/prefix"}, detachFlag()},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					return runJobs(c, e, co, "upload", cluster.JobRequest{Remote: c.String("remote")})
				}),
			clusterCmd("download", "download every node's piece from the archive", []cli.Flag{idFlag(),
				&cli.StringFlag{Name: "remote", EnvVars: []string{"HOTSNAP_REMOTE"}, Usage: "archive, as the agents resolve it"}, detachFlag()},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					return runJobs(c, e, co, "download", cluster.JobRequest{Remote: c.String("remote")})
				}),
			clusterCmd("status", "show a job on every node", []cli.Flag{&cli.StringFlag{Name: "job", Usage: "job id (printed by upload, download, verify)"}},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					if c.String("job") == "" {
						return usageError{errors.New("--job is required")}
					}
					jobs, err := co.Status(c.Context, c.String("job"))
					if err != nil {
						return err
					}
					e.result(map[string]any{"jobs": jobs}, func(w io.Writer) { printJobs(w, jobs) })
					return nil
				}),
			clusterCmd("abort", "abort a job on every node; says how each ended (ABORTED, or how it ended first)", []cli.Flag{&cli.StringFlag{Name: "job", Usage: "job id (printed by upload, download, verify)"}},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					if c.String("job") == "" {
						return usageError{errors.New("--job is required")}
					}
					jobs, err := co.Abort(c.Context, c.String("job"))
					if err != nil {
						return err
					}
					e.result(map[string]any{"jobs": jobs}, func(w io.Writer) { printJobs(w, jobs) })
					return nil
				}),
			clusterCmd("plan", "show the plan (live agents and the user plan); --set stores user JSON in it", []cli.Flag{
				&cli.StringFlag{Name: "set", Usage: "file of JSON to store as the user plan"},
				&cli.BoolFlag{Name: "clear", Usage: "remove the user plan"},
				&cli.StringFlag{Name: "expect", Usage: "declare the node ids every cluster snapshot must hold (comma-separated); held until changed"},
				&cli.BoolFlag{Name: "forget-expected", Usage: "forget the declared nodes (the next cluster create records its own)"}},
				func(c *cli.Context, e *env, co *cluster.Coordinator) error {
					switch {
					case c.String("set") != "" && c.Bool("clear"):
						return usageError{errors.New("--set and --clear exclude each other")}
					case c.String("set") != "":
						b, err := os.ReadFile(c.String("set"))
						if err != nil {
							return err
						}
						if err := co.Agency.SetPlan(c.Context, json.RawMessage(b)); err != nil {
							return err
						}
					case c.Bool("clear"):
						if err := co.Agency.SetPlan(c.Context, nil); err != nil {
							return err
						}
					}
					switch {
					case c.IsSet("expect") && c.Bool("forget-expected"):
						return usageError{errors.New("--expect and --forget-expected exclude each other")}
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
						if _, err := co.Agency.SetExpected(c.Context, nodes, "operator", false); err != nil {
							return err
						}
					case c.Bool("forget-expected"):
						if _, err := co.Agency.SetExpected(c.Context, nil, "", false); err != nil {
							return err
						}
					}
					p, err := co.Agency.ReadPlan(c.Context)
					if err != nil {
						return err
					}
					out := map[string]any{"cluster": p.Cluster, "revision": p.Revision, "nodes": p.Nodes, "user": p.User, "expected": p.Expected, "missing": p.Missing()}
					e.result(out, func(w io.Writer) {
						fmt.Fprintf(w, "cluster %s at etcd revision %d: %d live agent(s)\n", p.Cluster, p.Revision, len(p.Nodes))
						for _, n := range p.Nodes {
							fmt.Fprintf(w, "  %s\t%s\t(pid %d on %s, since %s)\n", n.NodeID, n.URL, n.Pid, n.Host, n.StartedAt.Format(time.RFC3339))
						}
						if p.User != nil {
							fmt.Fprintf(w, "  user plan: %s\n", p.User)
						}
						if p.Expected != nil {
							fmt.Fprintf(w, "  expected nodes: %s", strings.Join(p.Expected, ", "))
							if m := p.Missing(); len(m) > 0 {
								fmt.Fprintf(w, " (missing: %s)", strings.Join(m, ", "))
							}
							fmt.Fprintln(w)
						}
					})
					return nil
				}),
		},
	}
}

func runJobs(c *cli.Context, e *env, co *cluster.Coordinator, op string, req cluster.JobRequest) error {
	id, err := requireID(c)
	if err != nil {
		return err
	}
	if (op == "upload" || op == "download") && req.Remote == "" {
		return usageError{errors.New("--remote (or HOTSNAP_REMOTE) is required")}
	}
	if c.Bool("detach") {
		res, err := co.StartJobs(c.Context, op, id, req)
		if res != nil {
			return e.partial(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s of %s started on %d nodes: job %s (cluster status --job %s follows it, cluster abort --job %s stops it)\n",
					op, res.ID, len(res.Jobs), res.JobID, res.JobID, res.JobID)
			}, err)
		}
		return err
	}
	res, err := co.RunJobs(c.Context, op, id, req)
	if err != nil {
		return err
	}
	e.result(res, func(w io.Writer) {
		fmt.Fprintf(w, "%s of %s done on %d nodes (job %s)\n", op, res.ID, len(res.Jobs), res.JobID)
		printJobs(w, res.Jobs)
	})
	return nil
}

// detachFlag makes a cluster job command start the job, print its id
// and return.
func detachFlag() cli.Flag {
	return &cli.BoolFlag{Name: "detach", Usage: "start the job on every node, print its id and exit (cluster status --job follows it, cluster abort --job stops it)"}
}

func printJobs(w io.Writer, jobs []cluster.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tTYPE\tSTATUS\tFILES\tBYTES\tERROR")
	for _, j := range jobs {
		msg := ""
		if j.Error != nil {
			msg = j.Error.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s/%s\t%s\n", j.Node, dash(j.Type), dash(j.Status), j.FilesDone, j.FilesTotal, humanBytes(j.BytesDone), humanBytes(j.BytesTotal), dash(msg))
	}
	tw.Flush()
}
