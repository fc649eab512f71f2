package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// The write lock an agent holds for a coordinator: taken for one attempt,
// kept for a lease the coordinator renews, released by unlock, by the
// capture that used it, by the lease's end, or by the agent stopping.

type heldLock struct {
	id        string
	held      bool // false while acquiring or releasing
	q         quiesce.Quiescer
	closeQ    func()
	acquired  time.Time
	expires   time.Time
	timer     *time.Timer
	capturing bool
}

type lockEnd struct {
	outcome string
	heldMs  float64
}

// --- The lock ---

func (a *Agent) handleLock(w http.ResponseWriter, r *http.Request) {
	var req LockRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	if !ca.ValidName(req.LockID) {
		a.failErr(w, fmt.Errorf("%w: lockId %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, req.LockID))
		return
	}
	lease := time.Duration(req.LeaseMs) * time.Millisecond
	if lease <= 0 || lease > a.cfg.MaxLease {
		a.failErr(w, fmt.Errorf("%w: leaseMs %d: want 1 to %d", snapshot.ErrInvalid, req.LeaseMs, a.cfg.MaxLease.Milliseconds()))
		return
	}
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if timeout <= 0 || timeout > 10*time.Minute {
		a.failErr(w, fmt.Errorf("%w: timeoutMs %d: want 1 to 600000", snapshot.ErrInvalid, req.TimeoutMs))
		return
	}
	a.mu.Lock()
	if lk := a.lk; lk != nil {
		if lk.id == req.LockID && lk.held {
			lk.expires = time.Now().Add(lease)
			lk.timer.Reset(lease)
			a.mu.Unlock()
			a.reply(w, http.StatusOK, LockResponse{Node: a.cfg.NodeID, LockID: lk.id, Renewed: true, ExpiresAt: lk.expires})
			return
		}
		a.mu.Unlock()
		if req.Renew {
			a.failErr(w, fmt.Errorf("lock %s is not held on node %s: %w", req.LockID, a.cfg.NodeID, snapshot.ErrNotFound))
			return
		}
		a.m.lockAttempts.WithLabelValues("timeout").Inc()
		a.failErr(w, fmt.Errorf("%w: node %s is held by another lock (%s)", snapshot.ErrLockTimeout, a.cfg.NodeID, lk.id))
		return
	}
	if req.Renew {
		a.mu.Unlock()
		a.failErr(w, fmt.Errorf("lock %s is not held on node %s: %w", req.LockID, a.cfg.NodeID, snapshot.ErrNotFound))
		return
	}
	q, closeQ := a.cfg.NewQuiescer(req.Force)
	lk := &heldLock{id: req.LockID, q: q, closeQ: closeQ}
	a.lk = lk
	a.mu.Unlock()

	start := time.Now()
	err := q.Quiesce(r.Context(), timeout)
	if err == nil && r.Context().Err() != nil { // the coordinator went away
		q.Resume(context.WithoutCancel(r.Context()))
		err = r.Context().Err()
	}
	waited := time.Since(start)
	a.m.lockWait.Observe(waited.Seconds())
	a.mu.Lock()
	if err != nil {
		a.lk = nil
		a.mu.Unlock()
		closeQ()
		if errors.Is(err, snapshot.ErrLockTimeout) {
			a.m.lockAttempts.WithLabelValues("timeout").Inc()
			err = fmt.Errorf("%w: writes did not drain within %s", snapshot.ErrLockTimeout, timeout)
		} else {
			a.m.lockAttempts.WithLabelValues("error").Inc()
		}
		a.failErr(w, err)
		return
	}
	lk.held, lk.acquired, lk.expires = true, time.Now(), time.Now().Add(lease)
	lk.timer = time.AfterFunc(lease, func() {
		if a.release(lk.id, "expired") {
			a.m.expired.Inc()
			a.log.Warn("lock lease ended without renewal or release: writes resumed", "lock", lk.id, "lease", lease)
		}
	})
	a.mu.Unlock()
	a.m.lockAttempts.WithLabelValues("ok").Inc()
	a.log.Info("writes stopped", "lock", lk.id, "waited", waited)
	crash.Point("agent.locked")
	a.reply(w, http.StatusOK, LockResponse{Node: a.cfg.NodeID, LockID: lk.id, WaitedMs: ms(waited), ExpiresAt: lk.expires})
}

// release resumes writes if lock id is held, recording how it ended.
func (a *Agent) release(id, outcome string) bool {
	a.mu.Lock()
	lk := a.lk
	if lk == nil || lk.id != id || !lk.held {
		a.mu.Unlock()
		return false
	}
	lk.held = false
	lk.timer.Stop()
	a.mu.Unlock()
	err := lk.q.Resume(context.Background())
	lk.closeQ()
	held := time.Since(lk.acquired)
	a.m.lockHeld.Observe(held.Seconds())
	a.mu.Lock()
	a.lk = nil
	if len(a.ended) > 64 {
		clear(a.ended)
	}
	a.ended[id] = lockEnd{outcome: outcome, heldMs: ms(held)}
	a.mu.Unlock()
	if err != nil {
		a.log.Error("resume writes failed", "lock", id, "err", err)
	}
	a.log.Info("writes resumed", "lock", id, "held", held, "outcome", outcome)
	return true
}

func (a *Agent) handleUnlock(w http.ResponseWriter, r *http.Request) {
	var req UnlockRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	released := a.release(req.LockID, "unlocked")
	a.mu.Lock()
	end, ok := a.ended[req.LockID]
	a.mu.Unlock()
	resp := UnlockResponse{Node: a.cfg.NodeID, Released: released, Outcome: "unknown"}
	if ok {
		resp.Outcome, resp.HeldMs = end.outcome, end.heldMs
	}
	a.reply(w, http.StatusOK, resp)
}

// heldQuiescer lets snapshot.Create capture under a lock the agent already
// holds: Quiesce checks it is held, Resume releases it.
type heldQuiescer struct {
	a  *Agent
	id string
}

func (h *heldQuiescer) Quiesce(context.Context, time.Duration) error {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	lk := h.a.lk
	if lk == nil || lk.id != h.id || !lk.held {
		return fmt.Errorf("%w: lock %s is not held on node %s (released, or its lease ended)", snapshot.ErrLockFailed, h.id, h.a.cfg.NodeID)
	}
	if lk.capturing {
		return fmt.Errorf("%w: lock %s is already in use by another create", snapshot.ErrLockFailed, h.id)
	}
	lk.capturing = true
	return nil
}

func (h *heldQuiescer) Resume(context.Context) error {
	if !h.a.release(h.id, "captured") {
		return fmt.Errorf("%w: the lease of lock %s ended during the capture: writes may have resumed before the tree was whole", snapshot.ErrLockFailed, h.id)
	}
	return nil
}

// timedOut is a quiescer that never gets the lock: a create after the
// coordinator gave up on locking with --allow-inconsistent.
type timedOut struct{}

func (timedOut) Quiesce(context.Context, time.Duration) error { return snapshot.ErrLockTimeout }
func (timedOut) Resume(context.Context) error                 { return nil }
