package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotsnap/hotsnap/cluster"
)

// The text forms of the cluster's commands.

// ClusterCreate is cluster create's text.
func ClusterCreate(res *cluster.CreateResult) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "created %s on %d nodes (%s), plan revision %d\n", res.ID, len(res.Nodes), strings.Join(res.Nodes, ", "), res.PlanRevision)
		fmt.Fprintf(w, "  lock: %d attempt(s), %.0f ms to lock all; writes paused at most %.1f ms on a node; took %.0f ms\n",
			res.LockAttempts, res.LockWaitMs, res.MaxLockHeldMs, res.DurationMs)
		for _, p := range res.Pieces {
			fmt.Fprintf(w, "  node %s: %d files, %s, paused %.1f ms\n", p.Node, p.Files, Bytes(p.Bytes), p.LockHeldMs)
		}
		for _, wn := range res.Warnings {
			fmt.Fprintf(w, "  WARNING: %s\n", wn)
		}
		if len(res.ExpectedRecorded) > 0 {
			fmt.Fprintf(w, "  recorded the expected nodes %s: every later cluster create must hold them (cluster plan --expect changes them)\n", strings.Join(res.ExpectedRecorded, ", "))
		}
	}
}

// ClusterList is cluster list's result, its items of the shape of list's.
func ClusterList(res *cluster.ListResult) map[string]any {
	return map[string]any{"cluster": res.Cluster, "nodes": res.Nodes, "snapshots": ClusterItems(res.Snapshots), "unreachable": res.Unreachable}
}

// ClusterListText is cluster list's text.
func ClusterListText(res *cluster.ListResult) Text {
	return func(w io.Writer) {
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
			fmt.Fprintf(tw, "%s\t%v\t%d/%d\t%s\t%s\t%s\n", s.ID, s.Available, s.NrPiecesPresent, len(s.Nodes), strings.Join(s.Nodes, ","), Bytes(s.Bytes), dash(strings.Join(fl, " ")))
		}
		tw.Flush()
		for n, why := range res.Unreachable {
			fmt.Fprintf(w, "WARNING: node %s did not answer: %s\n", n, why)
		}
	}
}

// ClusterPrune is cluster prune's text.
func ClusterPrune(res *cluster.PruneResult) Text {
	return func(w io.Writer) {
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
	}
}

// ClusterRestore is cluster restore's text.
func ClusterRestore(res *cluster.RestoreResult) Text {
	if res.DryRun {
		return Line("dry run: %s can be restored on %s; nothing was changed", res.ID, strings.Join(res.Nodes, ", "))
	}
	return Line("restored %s on %s", res.ID, strings.Join(res.Nodes, ", "))
}

// JobsStarted is the text of a cluster job started with --detach.
func JobsStarted(op string, res *cluster.JobsResult) Text {
	return Line("%s of %s started on %d nodes: job %s (cluster status --job %s follows it, cluster abort --job %s stops it)",
		op, res.ID, len(res.Jobs), res.JobID, res.JobID, res.JobID)
}

// JobsDone is the text of a cluster job that ended on every node.
func JobsDone(op string, res *cluster.JobsResult) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "%s of %s done on %d nodes (job %s)\n", op, res.ID, len(res.Jobs), res.JobID)
		Jobs(res.Jobs)(w)
	}
}

// Jobs is a table of one job on every node.
func Jobs(jobs []cluster.Job) Text {
	return func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tTYPE\tSTATUS\tFILES\tBYTES\tERROR")
		for _, j := range jobs {
			msg := ""
			if j.Error != nil {
				msg = j.Error.Message
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s/%s\t%s\n", j.Node, dash(j.Type), dash(j.Status), j.FilesDone, j.FilesTotal, Bytes(j.BytesDone), Bytes(j.BytesTotal), dash(msg))
		}
		tw.Flush()
	}
}

// Plan is cluster plan's result.
func Plan(p *cluster.Plan) map[string]any {
	return map[string]any{"cluster": p.Cluster, "revision": p.Revision, "nodes": p.Nodes, "user": p.User, "expected": p.Expected, "missing": p.Missing()}
}

// PlanText is cluster plan's text.
func PlanText(p *cluster.Plan) Text {
	return func(w io.Writer) {
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
	}
}

// AgentReady says an agent serves: a progress event, or a line.
func (o *Output) AgentReady(node, clusterName, url string, pid int) {
	if o.JSON {
		WriteEvent(o.Stdout, Progress, map[string]any{"op": "agent", "state": "ready", "node": node, "cluster": clusterName, "url": url, "pid": pid})
	} else if !o.Quiet {
		fmt.Fprintf(o.Stdout, "agent %s of cluster %s serving at %s\n", node, clusterName, url)
	}
}
