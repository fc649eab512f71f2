package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/snapshot"
)

// RestoreOptions tune a cluster restore.
type RestoreOptions struct {
	IgnoreVersion bool
	// DryRun stops after every node proved its piece and the plan.
	DryRun bool
}

// RestoreResult reports a cluster restore; its JSON form is the CLI's contract.
type RestoreResult struct {
	ID       string   `json:"id"`
	Nodes    []string `json:"nodes"`
	DryRun   bool     `json:"dryRun"`
	Restored bool     `json:"restored"`
	Checks   []Job    `json:"checks"`
	Restores []Job    `json:"restores"`
	Reverted []string `json:"reverted"`
	// Stops and Starts say what each node's application stop and start
	// commands did (configured false: the agent has none).
	Stops  []*AppResponse `json:"stops"`
	Starts []*AppResponse `json:"starts"`
}

// Restore restores snapshot id on every node (docs/DESIGN.md, Cluster): the cluster must
// have the snapshot's topology, and every node first proves its piece
// (seal, compatibility, a full re-hash: a dry-run restore) before any node
// changes. Then, as the reference design restores a cluster, every node's
// application is stopped (its agent's --stop-cmd); if one fails to stop,
// no node is changed and every stopped one is started again. Then all
// restore; if one fails, the nodes that did restore go back to their
// failsafe (the state from before). Last, every node's application is
// started (--start-cmd), whatever happened.
func (c *Coordinator) Restore(ctx context.Context, id string, o RestoreOptions) (res *RestoreResult, err error) {
	if err := snapshot.ValidID(id); err != nil {
		return nil, err
	}
	plan, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	nodes := plan.NodeIDs()
	res = &RestoreResult{ID: id, Nodes: nodes, DryRun: o.DryRun, Checks: []Job{}, Restores: []Job{}, Reverted: []string{},
		Stops: []*AppResponse{}, Starts: []*AppResponse{}}
	checks, err := c.runJobs(ctx, cls, "restore", id, JobRequest{JobID: randomID(), Nodes: nodes, DryRun: true, IgnoreVersion: o.IgnoreVersion})
	if checks != nil {
		res.Checks = checks.Jobs
	}
	if err != nil {
		return res, fmt.Errorf("cluster restore of %s refused, no node was changed: %w", id, err)
	}
	if o.DryRun {
		return res, nil
	}
	crash.Point("cluster.checked")
	// Stop everywhere; a node that cannot stop changes nothing anywhere.
	stops, serr := appAll(ctx, cls, "stop")
	res.Stops = compactApp(stops)
	if serr != nil {
		var stopped []*Client
		for i, s := range stops {
			if s != nil && s.OK && s.Configured {
				stopped = append(stopped, cls[i])
			}
		}
		starts, sterr := appAll(context.WithoutCancel(ctx), stopped, "start")
		res.Starts = compactApp(starts)
		err := fmt.Errorf("cluster restore of %s refused: the application could not be stopped (%w); no node was changed", id, serr)
		if sterr != nil {
			return res, fmt.Errorf("%w, and starting the stopped ones again failed: %w", err, sterr)
		}
		return res, fmt.Errorf("%w; the nodes stopped were started again", err)
	}
	defer func() {
		starts, sterr := appAll(context.WithoutCancel(ctx), cls, "start")
		res.Starts = compactApp(starts)
		if sterr != nil {
			if err == nil {
				err = fmt.Errorf("cluster restore of %s: restored, but starting the application failed: %w", id, sterr)
			} else {
				err = fmt.Errorf("%w; and starting the application failed: %w", err, sterr)
			}
		}
	}()
	// Every piece was just re-hashed in full; the restore pass checks
	// sizes and times (fast), so the data is read once.
	restores, rerr := c.runJobs(ctx, cls, "restore", id, JobRequest{JobID: randomID(), Nodes: nodes, FastVerify: true, IgnoreVersion: o.IgnoreVersion})
	if restores != nil {
		res.Restores = restores.Jobs
	}
	if rerr == nil {
		res.Restored = true
		return res, nil
	}
	// Put every node that did restore back to its state from before.
	var revertErrs []error
	rctx := context.WithoutCancel(ctx)
	for i, j := range res.Restores {
		if j.Status != JobCompleted {
			continue
		}
		var rr snapshot.RestoreResult
		if err := json.Unmarshal(j.Result, &rr); err != nil || rr.Failsafe == "" {
			revertErrs = append(revertErrs, fmt.Errorf("node %s: restored, but it reported no failsafe to go back to", j.Node))
			continue
		}
		if _, err := cls[i].Revert(rctx, rr.Failsafe); err != nil {
			revertErrs = append(revertErrs, fmt.Errorf("node %s: going back to its failsafe failed: %w", j.Node, err))
			continue
		}
		res.Reverted = append(res.Reverted, j.Node)
	}
	if len(revertErrs) > 0 {
		return res, fmt.Errorf("cluster restore of %s failed (%w) and not every node could go back: %w", id, rerr, errors.Join(revertErrs...))
	}
	return res, fmt.Errorf("cluster restore of %s failed; nodes %s went back to their state from before: %w", id, listOrNone(res.Reverted), rerr)
}

// compactApp drops the nodes that did not answer.
func compactApp(rs []*AppResponse) []*AppResponse {
	out := []*AppResponse{}
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
