package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/snapshot"
)

// JobsProgress is one progress report of a fanned-out job.
type JobsProgress struct {
	Op    string `json:"op"`
	ID    string `json:"id"`
	JobID string `json:"jobId"`
	Nodes int    `json:"nodes"`
	Done  int    `json:"done"` // nodes finished
	Jobs  []Job  `json:"jobs"`
}

// String is the one-line text form: "upload: 1/3 nodes done; n1 12/12 files; n2 5/12 files ...".
func (p JobsProgress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (job %s): %d/%d nodes done", p.Op, p.JobID, p.Done, p.Nodes)
	for _, j := range p.Jobs {
		fmt.Fprintf(&b, "; node %s: %d/%d files", j.Node, j.FilesDone, j.FilesTotal)
		if j.Finished() && j.Status != JobCompleted {
			fmt.Fprintf(&b, " %s", j.Status)
		}
	}
	return b.String()
}

// JobsResult reports a fanned-out job; its JSON form is the CLI's contract.
type JobsResult struct {
	Op    string `json:"op"`
	ID    string `json:"id"`
	JobID string `json:"jobId"`
	Jobs  []Job  `json:"jobs"`
}

// PollInterval is how often fanned-out jobs are polled.
var PollInterval = defaults.JobPoll

// RunJobs starts op on snapshot id on every given node (all live nodes when
// nodes is nil), reports progress until all finish, and fails naming every
// node whose job failed. Cancelling ctx aborts the jobs.
func (c *Coordinator) RunJobs(ctx context.Context, op, id string, req JobRequest) (*JobsResult, error) {
	if err := snapshot.ValidID(id); err != nil {
		return nil, err
	}
	plan, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	if req.JobID == "" {
		req.JobID = randomID()
	}
	if op == "restore" && req.Nodes == nil {
		req.Nodes = plan.NodeIDs()
	}
	if op == "upload" {
		// One agent initialises a new archive, so the others do not race.
		if err := cls[0].InitArchive(ctx, req.Remote); err != nil {
			return nil, err
		}
	}
	return c.runJobs(ctx, cls, op, id, req)
}

// StartJobs starts op as RunJobs does and returns at once with the jobs
// as started (cluster ... --detach): follow them with Status, stop them
// with Abort, by the result's JobID.
func (c *Coordinator) StartJobs(ctx context.Context, op, id string, req JobRequest) (*JobsResult, error) {
	if req.JobID == "" {
		req.JobID = randomID()
	}
	req.detach = true
	return c.RunJobs(ctx, op, id, req)
}

// Abort aborts job jobID on every live node and returns how each ended
// (ABORTED, or how it ended first).
func (c *Coordinator) Abort(ctx context.Context, jobID string) ([]Job, error) {
	return c.onEveryNode(ctx, jobID, (*Client).Abort)
}

func (c *Coordinator) runJobs(ctx context.Context, cls []*Client, op, id string, req JobRequest) (*JobsResult, error) {
	res := &JobsResult{Op: op, ID: id, JobID: req.JobID, Jobs: make([]Job, len(cls))}
	started := make([]bool, len(cls))
	errs := each(cls, func(i int, cl *Client) error {
		j, err := cl.StartJob(ctx, id, op, req)
		if err != nil {
			res.Jobs[i] = Job{ID: req.JobID, Node: cl.Node, Type: op, SnapshotID: id, Status: JobFailed, Error: asRemote(cl.Node, err)}
			return err
		}
		res.Jobs[i], started[i] = *j, true
		return nil
	})
	if req.detach {
		var failed []error
		for i, err := range errs {
			if err != nil {
				failed = append(failed, fmt.Errorf("node %s: %w", cls[i].Node, err))
			}
		}
		if len(failed) > 0 {
			return res, fmt.Errorf("cluster %s of %s did not start on %d of %d nodes: %w", op, id, len(failed), len(cls), errors.Join(failed...))
		}
		return res, nil
	}
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		each(cls, func(i int, cl *Client) error {
			if started[i] {
				cl.Abort(actx, req.JobID)
			}
			return nil
		})
	}
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		done := 0
		for _, j := range res.Jobs {
			if j.Finished() {
				done++
			}
		}
		if c.Progress != nil {
			c.Progress(JobsProgress{Op: op, ID: id, JobID: req.JobID, Nodes: len(cls), Done: done, Jobs: append([]Job{}, res.Jobs...)})
		}
		if done == len(cls) {
			break
		}
		select {
		case <-ctx.Done():
			abort()
			return res, ctx.Err()
		case <-t.C:
		}
		each(cls, func(i int, cl *Client) error {
			if !started[i] || res.Jobs[i].Finished() {
				return nil
			}
			j, err := cl.Job(ctx, req.JobID)
			if err != nil {
				if ctx.Err() == nil {
					res.Jobs[i].Status, res.Jobs[i].Error = JobFailed, asRemote(cl.Node, err)
				}
				return err
			}
			res.Jobs[i] = *j
			return nil
		})
	}
	var failed []error
	for i, j := range res.Jobs {
		if j.Status != JobCompleted {
			if j.Error != nil {
				failed = append(failed, j.Error)
			} else if errs[i] != nil {
				failed = append(failed, errs[i])
			}
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("cluster %s of %s failed on %d of %d nodes: %w", op, id, len(failed), len(cls), errors.Join(failed...))
	}
	return res, nil
}
