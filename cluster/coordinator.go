package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Coordinator runs cluster-wide operations: it reads the plan from etcd and
// drives every agent of it.
type Coordinator struct {
	Agency *Agency
	Token  string
	HTTP   *http.Client
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
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	cls := make([]*Client, len(p.Nodes))
	for i, m := range p.Nodes {
		cls[i] = NewClient(m, c.Token, hc)
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

// CreateOptions tune a cluster create.
type CreateOptions struct {
	Label string
	// MaxWait bounds the whole lock phase (0 means 120s); InitialPeriod is
	// the first attempt's period (0 means 100ms), each retry 10 % longer.
	MaxWait, InitialPeriod time.Duration
	// Lease is how long an agent keeps writes stopped without hearing from
	// the coordinator (0 means 5s). The coordinator renews every Lease/3.
	Lease time.Duration
	// AllowInconsistent: on lock timeout (or a plan change), go on and
	// flag the snapshot.
	AllowInconsistent bool
	// Force asks every node's application to abort long write
	// transactions while the lock waits (see LockRequest.Force).
	Force bool
	// AgencyWait bounds the wait for another cluster backup to finish
	// (0 means MaxWait).
	AgencyWait time.Duration
	Now        func() time.Time
}

// CreateResult reports a cluster create; its JSON form is the CLI's contract.
type CreateResult struct {
	ID                      string           `json:"id"`
	Cluster                 string           `json:"cluster"`
	Nodes                   []string         `json:"nodes"`
	AgencyWaitMs            float64          `json:"agencyWaitMs"` // waiting for another cluster backup
	PlanRevision            int64            `json:"planRevision"`
	LockAttempts            int              `json:"lockAttempts"`
	LockWaitMs              float64          `json:"lockWaitMs"`
	MaxLockHeldMs           float64          `json:"maxLockHeldMs"`
	PotentiallyInconsistent bool             `json:"potentiallyInconsistent"`
	DurationMs              float64          `json:"durationMs"`
	Pieces                  []CreateResponse `json:"pieces"`
	Warnings                []string         `json:"warnings"`

	heldFrom, heldTo time.Time // while the agency lock was held (tests)
}

// ErrPlanChanged is returned when the plan changed during a cluster create.
var ErrPlanChanged = errors.New("the cluster's plan changed during the backup")

// Create takes a consistent snapshot of every node (DESIGN 5): agency lock,
// plan, all agents locked at once (growing periods, until MaxWait), the same
// id created on every node under its lock, unlock, plan check. On any
// failure the pieces already taken are deleted.
func (c *Coordinator) Create(ctx context.Context, o CreateOptions) (*CreateResult, error) {
	start := time.Now()
	log := c.log()
	if o.MaxWait <= 0 {
		o.MaxWait = defaults.MaxWaitForLock
	}
	if o.InitialPeriod <= 0 {
		o.InitialPeriod = defaults.LockPeriod
	}
	if o.Lease <= 0 {
		o.Lease = defaults.LockLease
	}
	if o.Lease < defaults.MinLockLease || o.Lease > 10*time.Minute {
		return nil, fmt.Errorf("%w: lock lease %s: want %s to 10m", snapshot.ErrInvalid, o.Lease, defaults.MinLockLease)
	}
	if o.AgencyWait <= 0 {
		o.AgencyWait = o.MaxWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Label != "" {
		if err := snapshot.ValidLabel(o.Label); err != nil {
			return nil, err
		}
	}
	// 1. Agency lock: one cluster backup at a time.
	unlockAgency, err := c.Agency.LockBackups(ctx, RunningBackup{Host: Hostname(), PID: os.Getpid(), StartedAt: time.Now().UTC()}, o.AgencyWait, o.Lease)
	if err != nil {
		return nil, err
	}
	defer unlockAgency()
	heldFrom := time.Now()
	crash.Point("cluster.agency")

	// 2. The plan, at one etcd revision.
	plan, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	id, err := snapshot.NewID(o.Now(), o.Label)
	if err != nil {
		return nil, err
	}
	planJSON, _ := json.Marshal(plan)
	topo := &manifest.Topology{Nodes: plan.NodeIDs(), Plan: planJSON, PlanRevision: plan.Revision}
	res := &CreateResult{ID: id, Cluster: plan.Cluster, Nodes: topo.Nodes, PlanRevision: plan.Revision, Pieces: []CreateResponse{}, Warnings: []string{},
		AgencyWaitMs: ms(heldFrom.Sub(start)), heldFrom: heldFrom}
	log.Info("cluster create", "id", id, "nodes", topo.Nodes, "planRevision", plan.Revision)

	// 3. Prepare the create on every node (checks, recovery, the newest
	// manifest read): none of it needs writes stopped, so it is done before.
	// Prepared creates and, later, the locks live for one lease unless this
	// coordinator renews them: if it dies, every node lets go by itself.
	lockID := randomID()
	var locked atomic.Bool
	var captured sync.Map // node index -> true once its create returned
	stopKeep := make(chan struct{})
	keepDone := make(chan struct{})
	go func() {
		defer close(keepDone)
		t := time.NewTicker(o.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stopKeep:
				return
			case <-t.C:
				each(cls, func(i int, cl *Client) error {
					if _, done := captured.Load(i); done {
						return nil
					}
					rctx, cancel := context.WithTimeout(ctx, o.Lease/3)
					defer cancel()
					cl.RenewPrepared(rctx, id, o.Lease)
					if locked.Load() {
						cl.Renew(rctx, lockID, o.Lease) // a node done capturing answers not_found: fine
					}
					return nil
				})
			}
		}
	}()
	stopKeepAlive := func() {
		select {
		case <-stopKeep:
		default:
			close(stopKeep)
		}
		<-keepDone
	}
	defer stopKeepAlive()
	unprepareAll := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		each(cls, func(_ int, cl *Client) error { return cl.Unprepare(uctx, id) })
	}
	perrs := each(cls, func(_ int, cl *Client) error { return cl.Prepare(ctx, id, topo, o.Lease) })
	if err := errors.Join(perrs...); err != nil {
		unprepareAll()
		return nil, fmt.Errorf("cluster create %s: preparing failed, nothing was created: %w", id, err)
	}

	// 4. Lock every agent at once; on any failure unlock all and retry
	// with a period 10 % longer, until MaxWait.
	unlockAll := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		each(cls, func(_ int, cl *Client) error {
			_, err := cl.Unlock(uctx, lockID)
			if err != nil {
				log.Warn("unlock failed; the node's lease will end it", "node", cl.Node, "err", err)
			}
			return err
		})
	}
	lockStart := time.Now()
	period := o.InitialPeriod
	gotLocks := false
	var lastTimeouts []string
	for !gotLocks {
		remaining := o.MaxWait - time.Since(lockStart)
		if remaining <= 0 {
			break
		}
		try := min(period, remaining)
		res.LockAttempts++
		errs := each(cls, func(_ int, cl *Client) error {
			lctx, cancel := context.WithTimeout(ctx, try+10*time.Second)
			defer cancel()
			_, err := cl.Lock(lctx, lockID, try, o.Lease, o.Force)
			return err
		})
		lastTimeouts = lastTimeouts[:0]
		var hard error
		for i, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, snapshot.ErrLockTimeout):
				lastTimeouts = append(lastTimeouts, cls[i].Node)
			case hard == nil:
				hard = err
			}
		}
		if hard == nil && len(lastTimeouts) == 0 {
			gotLocks = true
			break
		}
		unlockAll()
		if ctx.Err() != nil {
			unprepareAll()
			return nil, ctx.Err()
		}
		if hard != nil {
			unprepareAll()
			return nil, fmt.Errorf("cluster create %s: locking failed, no node is locked: %w", id, hard)
		}
		log.Info("not every node could stop writes in time; retrying with a longer period", "attempt", res.LockAttempts, "period", try, "nodes", lastTimeouts)
		period += period / 10
	}
	res.LockWaitMs = ms(time.Since(lockStart))
	if !gotLocks {
		msg := fmt.Sprintf("could not stop writes on all %d nodes at once within %s (%d attempts; last timed out: %s); a long write transaction may be running",
			len(cls), o.MaxWait, res.LockAttempts, strings.Join(lastTimeouts, ", "))
		if !o.AllowInconsistent {
			unprepareAll()
			return nil, fmt.Errorf("%w: %s; no piece was created (--allow-inconsistent takes it anyway, flagged)", snapshot.ErrLockTimeout, msg)
		}
		res.PotentiallyInconsistent = true
		res.Warnings = append(res.Warnings, msg+"; taking the snapshot anyway (--allow-inconsistent): every piece is flagged potentiallyInconsistent")
		log.Warn(msg)
	}
	locked.Store(gotLocks)
	crash.Point("cluster.locked")

	// 5. Create on every node, with the same id and plan: each captures
	// under the held lock and releases it as soon as its tree is built.
	pieces := make([]*CreateResponse, len(cls))
	errs := each(cls, func(i int, cl *Client) error {
		req := CreateRequest{ID: id, Topology: topo}
		if gotLocks {
			req.LockID = lockID
		} else {
			req.Inconsistent = true
		}
		p, err := cl.Create(ctx, req)
		captured.Store(i, true)
		if err == nil {
			pieces[i] = p
		}
		return err
	})
	// 6. Unlock all: this catches any node whose create failed before
	// capturing. A prepared create not used (a failed request) is dropped.
	stopKeepAlive()
	if locked.Load() {
		unlockAll()
	}
	crash.Point("cluster.created")
	deletePieces := func(why string) []string {
		var deleted []string
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for i, p := range pieces {
			if p == nil {
				continue
			}
			if err := cls[i].Delete(dctx, id); err != nil {
				log.Error("could not delete a piece of a failed cluster snapshot", "node", cls[i].Node, "id", id, "err", err)
				continue
			}
			deleted = append(deleted, cls[i].Node)
		}
		log.Warn("deleted the pieces of a failed cluster snapshot", "id", id, "why", why, "nodes", deleted)
		return deleted
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		deleted := deletePieces("create failed")
		unprepareAll()
		return nil, fmt.Errorf("cluster create %s failed (pieces deleted from %s): %w", id, listOrNone(deleted), errors.Join(failed...))
	}
	// 7. The plan must not have changed meanwhile.
	changes, err := c.Agency.Changes(ctx, plan)
	if err != nil {
		deleted := deletePieces("plan unreadable")
		return nil, fmt.Errorf("cluster create %s: cannot re-read the plan (pieces deleted from %s): %w", id, listOrNone(deleted), err)
	}
	if len(changes) > 0 {
		msg := strings.Join(changes, ", ")
		if !o.AllowInconsistent {
			deleted := deletePieces("plan changed")
			return nil, fmt.Errorf("cluster create %s: %w (%s); pieces deleted from %s", id, ErrPlanChanged, msg, listOrNone(deleted))
		}
		res.Warnings = append(res.Warnings, "the plan changed during the backup ("+msg+"); kept (--allow-inconsistent)")
	}
	for _, p := range pieces {
		res.Pieces = append(res.Pieces, *p)
		res.MaxLockHeldMs = max(res.MaxLockHeldMs, p.LockHeldMs)
		res.PotentiallyInconsistent = res.PotentiallyInconsistent || p.PotentiallyInconsistent
	}
	res.DurationMs = ms(time.Since(start))
	res.heldTo = time.Now()
	return res, nil
}

func listOrNone(nodes []string) string {
	if len(nodes) == 0 {
		return "no node"
	}
	return strings.Join(nodes, ", ")
}

// ClusterSnapshot is one cluster snapshot in a listing.
type ClusterSnapshot struct {
	ID                      string    `json:"id"`
	CreatedAt               time.Time `json:"createdAt"`
	Nodes                   []string  `json:"nodes"` // the plan's nodes
	PlanRevision            int64     `json:"planRevision"`
	Available               bool      `json:"available"`
	NrPiecesPresent         int       `json:"nrPiecesPresent"`
	Missing                 []string  `json:"missing"`
	PotentiallyInconsistent bool      `json:"potentiallyInconsistent"`
	Files                   int64     `json:"files"`
	Bytes                   int64     `json:"bytes"`
	Problems                []string  `json:"problems"`
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
		}
		for _, n := range cs.Nodes {
			if !have[n] {
				cs.Missing = append(cs.Missing, n)
			}
		}
		cs.Available = len(cs.Nodes) > 0 && len(cs.Missing) == 0 && len(cs.Problems) == 0
		res.Snapshots = append(res.Snapshots, cs)
	}
	sort.Slice(res.Snapshots, func(i, j int) bool { return res.Snapshots[i].ID < res.Snapshots[j].ID })
	if len(failed) == len(cls) {
		return res, fmt.Errorf("cluster list: no agent answered: %w", errors.Join(failed...))
	}
	return res, nil
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
	fmt.Fprintf(&b, "%s: %d/%d nodes done", p.Op, p.Done, p.Nodes)
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

// asRemote keeps a RemoteError, or wraps a transport error as one.
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
}

// Restore restores snapshot id on every node (DESIGN 5): the cluster must
// have the snapshot's topology, and every node first proves its piece
// (seal, compatibility, a full re-hash: a dry-run restore) before any node
// changes. Then all restore; if one fails, the nodes that did restore go
// back to their failsafe (the state from before).
func (c *Coordinator) Restore(ctx context.Context, id string, o RestoreOptions) (*RestoreResult, error) {
	if err := snapshot.ValidID(id); err != nil {
		return nil, err
	}
	plan, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	nodes := plan.NodeIDs()
	res := &RestoreResult{ID: id, Nodes: nodes, DryRun: o.DryRun, Checks: []Job{}, Restores: []Job{}, Reverted: []string{}}
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

// Status reads job jobID on every live node.
func (c *Coordinator) Status(ctx context.Context, jobID string) ([]Job, error) {
	_, cls, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Job, len(cls))
	errs := each(cls, func(i int, cl *Client) error {
		j, err := cl.Job(ctx, jobID)
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
