package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hotsnap/hotsnap/snapshot"
)

// ClusterSnapshot is one cluster snapshot in a listing.
type ClusterSnapshot struct {
	ID           string    `json:"id"`
	CreatedAt    time.Time `json:"createdAt"`
	Nodes        []string  `json:"nodes"` // the plan's nodes
	PlanRevision int64     `json:"planRevision"`
	Available    bool      `json:"available"`
	// Partial is set when nodes of its plan have no piece (Missing): taken
	// with --allow-missing-nodes, or left by a coordinator that died.
	Partial                 bool     `json:"partial"`
	NrPiecesPresent         int      `json:"nrPiecesPresent"`
	Missing                 []string `json:"missing"`
	PotentiallyInconsistent bool     `json:"potentiallyInconsistent"`
	Files                   int64    `json:"files"`
	Bytes                   int64    `json:"bytes"`
	Problems                []string `json:"problems"`
	// AppVersion is the pieces' (the first one's); LockHeldMs the longest
	// write pause of a node; Seal the worst of the pieces' seals.
	AppVersion string  `json:"appVersion"`
	LockHeldMs float64 `json:"lockHeldMs"`
	Seal       string  `json:"seal"`
}

// ListResult is a cluster listing; its JSON form is the CLI's contract.
type ListResult struct {
	Cluster     string            `json:"cluster"`
	Nodes       []string          `json:"nodes"` // live agents
	Snapshots   []ClusterSnapshot `json:"snapshots"`
	Unreachable map[string]string `json:"unreachable"`
}

// List asks every live agent for its snapshots and groups the pieces. A
// snapshot is available when every node of its plan holds a readable piece
// with the same plan.
func (c *Coordinator) List(ctx context.Context) (*ListResult, error) {
	plan, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	lists := make([][]snapshot.Info, len(cls))
	errs := each(cls, func(i int, cl *Client) (err error) {
		lists[i], err = cl.List(ctx)
		return err
	})
	res := &ListResult{Cluster: plan.Cluster, Nodes: plan.NodeIDs(), Snapshots: []ClusterSnapshot{}, Unreachable: map[string]string{}}
	type piece struct {
		node string
		info snapshot.Info
	}
	byID := map[string][]piece{}
	var failed []error
	for i, l := range lists {
		if errs[i] != nil {
			res.Unreachable[cls[i].Node] = errs[i].Error()
			failed = append(failed, errs[i])
			continue
		}
		for _, info := range l {
			byID[info.ID] = append(byID[info.ID], piece{cls[i].Node, info})
		}
	}
	for id, ps := range byID {
		cs := ClusterSnapshot{ID: id, Missing: []string{}, Problems: []string{}}
		have := map[string]bool{}
		for _, p := range ps {
			cs.Seal = worseSeal(cs.Seal, p.info.Seal)
			if p.info.Error != "" {
				cs.Problems = append(cs.Problems, fmt.Sprintf("node %s: %s", p.node, p.info.Error))
				continue
			}
			if p.info.NodeID != p.node {
				cs.Problems = append(cs.Problems, fmt.Sprintf("node %s holds the piece of node %s", p.node, p.info.NodeID))
				continue
			}
			if cs.Nodes == nil {
				cs.Nodes, cs.PlanRevision, cs.CreatedAt = p.info.Topology, p.info.PlanRevision, p.info.CreatedAt
			} else if !sameSet(cs.Nodes, p.info.Topology) || cs.PlanRevision != p.info.PlanRevision {
				cs.Problems = append(cs.Problems, fmt.Sprintf("node %s's piece has another plan (%v at revision %d)", p.node, p.info.Topology, p.info.PlanRevision))
				continue
			}
			have[p.node] = true
			cs.NrPiecesPresent++
			cs.Files += p.info.Files
			cs.Bytes += p.info.Bytes
			cs.PotentiallyInconsistent = cs.PotentiallyInconsistent || p.info.PotentiallyInconsistent
			cs.LockHeldMs = max(cs.LockHeldMs, p.info.LockHeldMs)
			if cs.AppVersion == "" {
				cs.AppVersion = p.info.AppVersion
			}
		}
		for _, n := range cs.Nodes {
			if !have[n] {
				cs.Missing = append(cs.Missing, n)
			}
		}
		cs.Available = len(cs.Nodes) > 0 && len(cs.Missing) == 0 && len(cs.Problems) == 0
		cs.Partial = len(cs.Missing) > 0
		res.Snapshots = append(res.Snapshots, cs)
	}
	sort.Slice(res.Snapshots, func(i, j int) bool { return res.Snapshots[i].ID < res.Snapshots[j].ID })
	if len(failed) == len(cls) {
		return res, fmt.Errorf("cluster list: no agent answered: %w", errors.Join(failed...))
	}
	return res, nil
}

// worseSeal is the worse of two seal states: damaged, then recorded,
// then proven.
func worseSeal(a, b string) string {
	rank := map[string]int{"": 0, snapshot.SealProven: 1, snapshot.SealRecorded: 2, snapshot.SealDamaged: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// DeleteResult reports a cluster delete.
type DeleteResult struct {
	ID      string   `json:"id"`
	Deleted []string `json:"deleted"` // nodes whose piece was deleted
	Absent  []string `json:"absent"`  // nodes that had no piece
}

// Delete deletes snapshot id's piece on every live node. It fails with
// not found when no node had one, and names the nodes that failed.
func (c *Coordinator) Delete(ctx context.Context, id string) (*DeleteResult, error) {
	if err := snapshot.ValidID(id); err != nil {
		return nil, err
	}
	_, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	errs := each(cls, func(_ int, cl *Client) error { return cl.Delete(ctx, id) })
	res := &DeleteResult{ID: id, Deleted: []string{}, Absent: []string{}}
	var failed []error
	for i, err := range errs {
		switch {
		case err == nil:
			res.Deleted = append(res.Deleted, cls[i].Node)
		case errors.Is(err, snapshot.ErrNotFound):
			res.Absent = append(res.Absent, cls[i].Node)
		default:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("cluster delete %s: %w", id, errors.Join(failed...))
	}
	if len(res.Deleted) == 0 {
		return res, fmt.Errorf("cluster snapshot %s: %w on any node", id, snapshot.ErrNotFound)
	}
	return res, nil
}

// PruneResult reports a cluster prune; its JSON form is the CLI's contract.
type PruneResult struct {
	DryRun  bool     `json:"dryRun"`
	Removed []string `json:"removed"` // ids of the partial snapshots removed
}

// PrunePartial removes the partial cluster snapshots (a node of their plan
// has no piece: taken with missing nodes, or left by a coordinator that
// died) created more than olderThan ago: each piece on every node that has
// one. Available snapshots are never touched, nor is one whose missing
// pieces are on a node that is down or did not answer: that node may
// hold them.
func (c *Coordinator) PrunePartial(ctx context.Context, olderThan time.Duration, dryRun bool, now time.Time) (*PruneResult, error) {
	l, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{DryRun: dryRun, Removed: []string{}}
	answered := map[string]bool{}
	for _, n := range l.Nodes {
		if _, down := l.Unreachable[n]; !down {
			answered[n] = true
		}
	}
	for _, s := range l.Snapshots {
		if !s.Partial || s.Available || s.CreatedAt.IsZero() || now.Sub(s.CreatedAt) <= olderThan {
			continue
		}
		known := true
		for _, n := range s.Missing {
			known = known && answered[n]
		}
		if !known {
			continue
		}
		if !dryRun {
			if _, err := c.Delete(ctx, s.ID); err != nil {
				return res, fmt.Errorf("prune partial snapshot %s: %w", s.ID, err)
			}
		}
		res.Removed = append(res.Removed, s.ID)
	}
	return res, nil
}
