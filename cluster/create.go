package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// CreateOptions tune a cluster create.
type CreateOptions struct {
	Label string
	// MaxWait bounds the whole lock phase (0 means defaults.MaxWaitForLock);
	// InitialPeriod is the first attempt's period (0 means
	// defaults.LockPeriod), each retry 10 % longer: quiesce.Acquire's loop.
	MaxWait, InitialPeriod time.Duration
	// Lease is how long an agent keeps writes stopped without hearing from
	// the coordinator (0 means defaults.LockLease). The coordinator renews
	// every Lease/3.
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
	// AllowMissingNodes takes the snapshot when expected nodes have no
	// live agent: a partial snapshot of the others, never available.
	AllowMissingNodes bool
	Now               func() time.Time
}

// CreateResult reports a cluster create; its JSON form is the CLI's contract.
type CreateResult struct {
	ID                      string   `json:"id"`
	Cluster                 string   `json:"cluster"`
	Nodes                   []string `json:"nodes"`
	AgencyWaitMs            float64  `json:"agencyWaitMs"` // waiting for another cluster backup
	PlanRevision            int64    `json:"planRevision"`
	LockAttempts            int      `json:"lockAttempts"`
	LockWaitMs              float64  `json:"lockWaitMs"`
	MaxLockHeldMs           float64  `json:"maxLockHeldMs"`
	PotentiallyInconsistent bool     `json:"potentiallyInconsistent"`
	// Partial is set when expected nodes were missing (AllowMissingNodes):
	// Missing names them, and the snapshot is never available.
	Partial bool     `json:"partial"`
	Missing []string `json:"missing"`
	// ExpectedRecorded, set by the first cluster create of a cluster that
	// had none declared, is the node set every later create must hold.
	ExpectedRecorded []string         `json:"expectedRecorded,omitempty"`
	DurationMs       float64          `json:"durationMs"`
	Pieces           []CreateResponse `json:"pieces"`
	Warnings         []string         `json:"warnings"`

	heldFrom, heldTo time.Time // while the agency lock was held (tests)
}

// ErrPlanChanged is returned when the plan changed during a cluster create.
var ErrPlanChanged = errors.New("the cluster's plan changed during the backup")

// ErrMissingNodes is returned by a cluster create when expected nodes have
// no live agent (exit 5).
var ErrMissingNodes = errs.New(errs.Incompatible, "expected nodes are missing")

func (o *CreateOptions) setDefaults() error {
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
		return fmt.Errorf("%w: lock lease %s: want %s to 10m", snapshot.ErrInvalid, o.Lease, defaults.MinLockLease)
	}
	if o.AgencyWait <= 0 {
		o.AgencyWait = o.MaxWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Label != "" {
		return snapshot.ValidLabel(o.Label)
	}
	return nil
}

// Create takes a consistent snapshot of every node (docs/DESIGN.md,
// Cluster): agency lock, plan, prepare, all agents locked at once
// (quiesce.Acquire over allNodes: growing periods until MaxWait), the same
// id created on every node under its lock, unlock, plan check. On any
// failure the pieces already taken are deleted.
func (c *Coordinator) Create(ctx context.Context, o CreateOptions) (*CreateResult, error) {
	start := time.Now()
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	// 1. Agency lock: one cluster backup at a time.
	unlockAgency, err := c.Agency.LockBackups(ctx, RunningBackup{Holder: proc.Self(), StartedAt: time.Now().UTC()}, o.AgencyWait, defaults.AgencyTTL)
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
	// The nodes it must hold: refused before any lock when one is missing,
	// unless a partial snapshot is asked for, which records every expected
	// node in its topology (so it is never available, and a whole cluster
	// restore refuses it).
	missing := plan.Missing()
	if len(missing) > 0 && !o.AllowMissingNodes {
		return nil, fmt.Errorf("%w: cluster create refused before any node was locked: expected node(s) %s have no live agent (expected: %s; cluster plan --expect changes them); --allow-missing-nodes takes a partial snapshot of the others",
			ErrMissingNodes, strings.Join(missing, ", "), strings.Join(plan.Expected, ", "))
	}
	nodes := slices.Compact(slices.Sorted(slices.Values(append(plan.NodeIDs(), plan.Expected...))))
	planJSON, _ := json.Marshal(plan)
	topo := &manifest.Topology{Nodes: nodes, Plan: planJSON, PlanRevision: plan.Revision}
	res := &CreateResult{ID: id, Cluster: plan.Cluster, Nodes: topo.Nodes, PlanRevision: plan.Revision, Pieces: []CreateResponse{}, Warnings: []string{},
		AgencyWaitMs: ms(heldFrom.Sub(start)), heldFrom: heldFrom, Missing: []string{}}
	if len(missing) > 0 {
		res.Partial, res.Missing = true, missing
		res.Warnings = append(res.Warnings, "partial: expected node(s) "+strings.Join(missing, ", ")+" have no live agent; the snapshot is never available and a whole cluster restore refuses it (--allow-missing-nodes)")
	}
	log := c.log()
	log.Info("cluster create", "id", id, "nodes", topo.Nodes, "planRevision", plan.Revision)

	// 3. Prepare the create on every node (checks, recovery, the newest
	// manifest read): none of it needs writes stopped, so it is done before.
	// Prepared creates and, later, the locks live for one lease unless this
	// coordinator renews them: if it dies, every node lets go by itself.
	q := &allNodes{cls: cls, lockID: randomID(), lease: o.Lease, force: o.Force, log: log}
	cr := &clusterCreate{ctx: ctx, id: id, cls: cls, q: q, lease: o.Lease, log: log}
	cr.keepAlive()
	defer cr.stopKeepAlive()
	if err := errors.Join(each(cls, func(_ int, cl *Client) error { return cl.Prepare(ctx, id, topo, o.Lease) })...); err != nil {
		cr.unprepareAll()
		return nil, fmt.Errorf("cluster create %s: preparing failed, nothing was created: %w", id, err)
	}

	// 4. Lock every agent at once.
	lockStart := time.Now()
	st, err := quiesce.Acquire(ctx, q, quiesce.Policy{MaxWait: o.MaxWait, InitialPeriod: o.InitialPeriod})
	res.LockAttempts, res.LockWaitMs = st.Attempts, ms(time.Since(lockStart))
	switch {
	case err == nil:
		q.locked.Store(true)
	case errors.Is(err, snapshot.ErrLockTimeout) && ctx.Err() == nil:
		msg := fmt.Sprintf("could not stop writes on all %d nodes at once within %s (%d attempts; last timed out: %s); a long write transaction may be running",
			len(cls), o.MaxWait, res.LockAttempts, strings.Join(q.lastTimeouts, ", "))
		if !o.AllowInconsistent {
			cr.unprepareAll()
			return nil, fmt.Errorf("%w: %s; no piece was created (--allow-inconsistent takes it anyway, flagged)", snapshot.ErrLockTimeout, msg)
		}
		res.PotentiallyInconsistent = true
		res.Warnings = append(res.Warnings, msg+"; taking the snapshot anyway (--allow-inconsistent): every piece is flagged potentiallyInconsistent")
		log.Warn(msg)
	default:
		cr.unprepareAll()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cluster create %s: locking failed, no node is locked: %w", id, err)
	}
	crash.Point("cluster.locked")

	// 5. Create on every node, with the same id and plan: each captures
	// under the held lock and releases it as soon as its tree is built.
	errs := cr.createAll(topo)
	// 6. Unlock all: this catches any node whose create failed before
	// capturing. A prepared create not used (a failed request) is dropped.
	cr.stopKeepAlive()
	if q.locked.Load() {
		q.Resume(ctx)
	}
	crash.Point("cluster.created")
	if err := errors.Join(errs...); err != nil {
		deleted := cr.deletePieces("create failed")
		cr.unprepareAll()
		return nil, fmt.Errorf("cluster create %s failed (pieces deleted from %s): %w", id, listOrNone(deleted), err)
	}
	// 7. The plan must not have changed meanwhile.
	changes, err := c.Agency.Changes(ctx, plan)
	if err != nil {
		deleted := cr.deletePieces("plan unreadable")
		return nil, fmt.Errorf("cluster create %s: cannot re-read the plan (pieces deleted from %s): %w", id, listOrNone(deleted), err)
	}
	if len(changes) > 0 {
		msg := strings.Join(changes, ", ")
		if !o.AllowInconsistent {
			deleted := cr.deletePieces("plan changed")
			return nil, fmt.Errorf("cluster create %s: %w (%s); pieces deleted from %s", id, ErrPlanChanged, msg, listOrNone(deleted))
		}
		res.Warnings = append(res.Warnings, "the plan changed during the backup ("+msg+"); kept (--allow-inconsistent)")
	}
	for _, p := range cr.pieces {
		res.Pieces = append(res.Pieces, *p)
		res.MaxLockHeldMs = max(res.MaxLockHeldMs, p.LockHeldMs)
		res.PotentiallyInconsistent = res.PotentiallyInconsistent || p.PotentiallyInconsistent
	}
	if plan.Expected == nil {
		// The first create records its node set as the expectation.
		if set, err := c.Agency.SetExpected(ctx, plan.NodeIDs(), "first create", true); err == nil && set {
			res.ExpectedRecorded = plan.NodeIDs()
			log.Info("recorded the expected nodes: every later cluster create must hold them (cluster plan --expect changes them)", "nodes", res.ExpectedRecorded)
		}
	}
	res.DurationMs = ms(time.Since(start))
	res.heldTo = time.Now()
	return res, nil
}

// allNodes is a quiesce.Quiescer over every node of a plan, so that the
// cluster's lock loop is quiesce.Acquire's. One attempt locks every node
// at once, each for the attempt's period; if any node fails, the others
// are unlocked and the attempt fails (ErrLockTimeout when nodes only timed
// out, their names kept for the message). Resume unlocks every node.
type allNodes struct {
	cls          []*Client
	lockID       string
	lease        time.Duration
	force        bool
	log          *slog.Logger
	locked       atomic.Bool // every node holds the lock (renewed while true)
	lastTimeouts []string
}

func (q *allNodes) Quiesce(ctx context.Context, period time.Duration) error {
	errs := each(q.cls, func(_ int, cl *Client) error {
		lctx, cancel := context.WithTimeout(ctx, period+10*time.Second)
		defer cancel()
		_, err := cl.Lock(lctx, q.lockID, period, q.lease, q.force)
		return err
	})
	q.lastTimeouts = q.lastTimeouts[:0]
	var hard error
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, snapshot.ErrLockTimeout):
			q.lastTimeouts = append(q.lastTimeouts, q.cls[i].Node)
		case hard == nil:
			hard = err
		}
	}
	if hard == nil && len(q.lastTimeouts) == 0 {
		return nil
	}
	q.Resume(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if hard != nil {
		return hard
	}
	q.log.Info("not every node could stop writes in time; retrying with a longer period", "period", period, "nodes", q.lastTimeouts)
	return fmt.Errorf("%w: nodes %s", snapshot.ErrLockTimeout, strings.Join(q.lastTimeouts, ", "))
}

// Resume unlocks every node; a node that does not answer lets go when its
// lease ends.
func (q *allNodes) Resume(ctx context.Context) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return errors.Join(each(q.cls, func(_ int, cl *Client) error {
		_, err := cl.Unlock(uctx, q.lockID)
		if err != nil {
			q.log.Warn("unlock failed; the node's lease will end it", "node", cl.Node, "err", err)
		}
		return err
	})...)
}

// clusterCreate is one Create's state on the nodes: prepared creates and
// locks kept alive, the pieces taken.
type clusterCreate struct {
	ctx      context.Context
	id       string
	cls      []*Client
	q        *allNodes
	lease    time.Duration
	log      *slog.Logger
	captured sync.Map // node index -> true once its create returned
	pieces   []*CreateResponse
	stop     chan struct{}
	done     chan struct{}
}

// keepAlive renews the prepared creates, and the locks once held, every
// third of a lease, until stopKeepAlive.
func (cr *clusterCreate) keepAlive() {
	cr.stop, cr.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(cr.done)
		t := time.NewTicker(cr.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-cr.stop:
				return
			case <-t.C:
				each(cr.cls, func(i int, cl *Client) error {
					if _, done := cr.captured.Load(i); done {
						return nil
					}
					rctx, cancel := context.WithTimeout(cr.ctx, cr.lease/3)
					defer cancel()
					cl.RenewPrepared(rctx, cr.id, cr.lease)
					if cr.q.locked.Load() {
						cl.Renew(rctx, cr.q.lockID, cr.lease) // a node done capturing answers not_found: fine
					}
					return nil
				})
			}
		}
	}()
}

func (cr *clusterCreate) stopKeepAlive() {
	select {
	case <-cr.stop:
	default:
		close(cr.stop)
	}
	<-cr.done
}

func (cr *clusterCreate) unprepareAll() {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(cr.ctx), 10*time.Second)
	defer cancel()
	each(cr.cls, func(_ int, cl *Client) error { return cl.Unprepare(uctx, cr.id) })
}

// createAll creates the snapshot on every node: under the held lock, or
// flagged inconsistent when the lock phase gave up.
func (cr *clusterCreate) createAll(topo *manifest.Topology) []error {
	cr.pieces = make([]*CreateResponse, len(cr.cls))
	return each(cr.cls, func(i int, cl *Client) error {
		req := CreateRequest{ID: cr.id, Topology: topo}
		if cr.q.locked.Load() {
			req.LockID = cr.q.lockID
		} else {
			req.Inconsistent = true
		}
		p, err := cl.Create(cr.ctx, req)
		cr.captured.Store(i, true)
		if err == nil {
			cr.pieces[i] = p
		}
		return err
	})
}

// deletePieces deletes the pieces taken and returns the nodes they were on.
func (cr *clusterCreate) deletePieces(why string) []string {
	var deleted []string
	dctx, cancel := context.WithTimeout(context.WithoutCancel(cr.ctx), time.Minute)
	defer cancel()
	for i, p := range cr.pieces {
		if p == nil {
			continue
		}
		if err := cr.cls[i].Delete(dctx, cr.id); err != nil {
			cr.log.Error("could not delete a piece of a failed cluster snapshot", "node", cr.cls[i].Node, "id", cr.id, "err", err)
			continue
		}
		deleted = append(deleted, cr.cls[i].Node)
	}
	cr.log.Warn("deleted the pieces of a failed cluster snapshot", "id", cr.id, "why", why, "nodes", deleted)
	return deleted
}
