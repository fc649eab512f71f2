package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/snapshot"
)

// A coordinator runs one cluster-wide operation from wherever the CLI is
// invoked: create.go (the consistent snapshot of every node), list.go (list
// and delete), fanout.go (jobs on every node: verify, upload, download) and
// restore.go.

// Coordinator runs cluster-wide operations: it reads the plan from etcd and
// drives every agent of it.
type Coordinator struct {
	Agency *Agency
	// Auth proves the coordinator to agents and checks theirs (its
	// Cluster is filled from the plan).
	Auth   ClientAuth
	Logger *slog.Logger
	// Progress receives per-node progress of jobs (upload, download,
	// verify, restore); nil discards it.
	Progress func(JobsProgress)
}

func (c *Coordinator) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// plan reads the plan and makes a client per node; an empty cluster is an error.
func (c *Coordinator) plan(ctx context.Context) (*Plan, []*Client, error) {
	p, err := c.Agency.ReadPlan(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(p.Nodes) == 0 {
		return nil, nil, fmt.Errorf("cluster %s has no live agents registered in etcd: %w", p.Cluster, snapshot.ErrNotFound)
	}
	auth := c.Auth
	auth.Cluster = p.Cluster
	cls := make([]*Client, len(p.Nodes))
	for i, m := range p.Nodes {
		if cls[i], err = auth.Client(m); err != nil {
			return nil, nil, err
		}
	}
	return p, cls, nil
}

// each runs fn on every client at once and returns the errors by index.
func each(cls []*Client, fn func(i int, cl *Client) error) []error {
	errs := make([]error, len(cls))
	var wg sync.WaitGroup
	for i, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = par.Safely(func() error { return fn(i, cl) })
		}()
	}
	wg.Wait()
	return errs
}

func listOrNone(nodes []string) string {
	if len(nodes) == 0 {
		return "no node"
	}
	return strings.Join(nodes, ", ")
}

// Status reads job jobID on every live node.
func (c *Coordinator) Status(ctx context.Context, jobID string) ([]Job, error) {
	return c.onEveryNode(ctx, jobID, (*Client).Job)
}

// onEveryNode calls call (a client's Job or Abort) for job jobID on every
// live node; it fails when no node knows the job.
func (c *Coordinator) onEveryNode(ctx context.Context, jobID string, call func(*Client, context.Context, string) (*Job, error)) ([]Job, error) {
	_, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Job, len(cls))
	errs := each(cls, func(i int, cl *Client) error {
		j, err := call(cl, ctx, jobID)
		if err != nil {
			out[i] = Job{ID: jobID, Node: cl.Node, Error: asRemote(cl.Node, err)}
			return err
		}
		out[i] = *j
		return nil
	})
	found := 0
	for _, err := range errs {
		if err == nil {
			found++
		}
	}
	if found == 0 {
		return out, fmt.Errorf("job %s: %w on any node", jobID, snapshot.ErrNotFound)
	}
	return out, nil
}
