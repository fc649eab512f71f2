package cluster

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

type prepared struct {
	p     *snapshot.Pending
	timer *time.Timer
}

// --- Snapshots ---

func (a *Agent) handleList(w http.ResponseWriter, r *http.Request) {
	infos, err := snapshot.List(r.Context(), a.cfg.Layout, a.log)
	if err != nil {
		a.failErr(w, err)
		return
	}
	a.m.snapshots.Store(int64(len(infos)))
	a.reply(w, http.StatusOK, infos)
}

func (a *Agent) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	if err := snapshot.ValidID(req.ID); err != nil {
		a.failErr(w, err)
		return
	}
	if err := a.checkInPlan(req.Topology); err != nil {
		a.failErr(w, err)
		return
	}
	start := time.Now()
	a.mu.Lock()
	pr := a.prep[req.ID]
	if pr != nil {
		delete(a.prep, req.ID)
		pr.timer.Stop()
	}
	a.mu.Unlock()
	var p *snapshot.Pending
	if pr != nil {
		p = pr.p
	} else {
		var err error
		if p, err = snapshot.Prepare(r.Context(), a.cfg.Layout, a.createOptions(req.ID, req.Topology)); err != nil {
			a.m.createErrors.Inc()
			a.failErr(w, err)
			return
		}
	}
	var co snapshot.CaptureOptions
	switch {
	case req.LockID != "":
		a.mu.Lock()
		if a.lk != nil && a.lk.id == req.LockID {
			co.LockedSince = a.lk.acquired
		}
		a.mu.Unlock()
		co.Quiescer = &heldQuiescer{a: a, id: req.LockID}
	case req.Inconsistent:
		co.Quiescer, co.AllowInconsistent = timedOut{}, true
		co.Lock = quiesce.Policy{MaxWait: time.Nanosecond}
	default:
		q, closeQ := a.cfg.NewQuiescer(false)
		defer closeQ()
		co.Quiescer, co.AllowInconsistent = q, req.AllowInconsistent
		co.Lock = a.cfg.Lock
		if req.MaxWaitMs > 0 {
			co.Lock.MaxWait = time.Duration(req.MaxWaitMs) * time.Millisecond
		}
	}
	res, err := p.Capture(r.Context(), co)
	if err != nil {
		a.m.createErrors.Inc()
		a.failErr(w, err)
		return
	}
	a.m.creates.Observe(time.Since(start).Seconds())
	a.reply(w, http.StatusOK, CreateResponse{Node: a.cfg.NodeID, CreateResult: *res})
}

func (a *Agent) createOptions(id string, topo *manifest.Topology) snapshot.CreateOptions {
	return snapshot.CreateOptions{
		ID: id, Copy: a.cfg.Copy, Exclude: a.cfg.Exclude, LinkMode: a.cfg.LinkMode,
		AppVersion: a.cfg.AppVersion, AppEngine: a.cfg.AppEngine, NodeID: a.cfg.NodeID, Topology: topo,
		EncryptionKeyID: a.cfg.EncryptionKeyID, Logger: a.log,
	}
}

func (a *Agent) handlePrepare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req PrepareRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	ttl := time.Duration(req.TTLMs) * time.Millisecond
	if ttl <= 0 || ttl > a.cfg.MaxLease {
		a.failErr(w, fmt.Errorf("%w: ttlMs %d: want 1 to %d", snapshot.ErrInvalid, req.TTLMs, a.cfg.MaxLease.Milliseconds()))
		return
	}
	if err := snapshot.ValidID(id); err != nil {
		a.failErr(w, err)
		return
	}
	if req.Renew {
		a.mu.Lock()
		pr := a.prep[id]
		if pr != nil {
			pr.timer.Reset(ttl)
		}
		a.mu.Unlock()
		if pr == nil {
			a.failErr(w, fmt.Errorf("no prepared create of %s on node %s: %w", id, a.cfg.NodeID, snapshot.ErrNotFound))
			return
		}
		a.reply(w, http.StatusOK, PrepareResponse{Node: a.cfg.NodeID, ID: id, ExpiresAt: time.Now().Add(ttl)})
		return
	}
	if err := a.checkInPlan(req.Topology); err != nil {
		a.failErr(w, err)
		return
	}
	a.mu.Lock()
	_, dup := a.prep[id]
	a.mu.Unlock()
	if dup {
		a.failErr(w, fmt.Errorf("snapshot %s: %w (prepared already)", id, snapshot.ErrExists))
		return
	}
	p, err := snapshot.Prepare(r.Context(), a.cfg.Layout, a.createOptions(id, req.Topology))
	if err != nil {
		a.failErr(w, err)
		return
	}
	pr := &prepared{p: p}
	a.mu.Lock()
	a.prep[id] = pr
	pr.timer = time.AfterFunc(ttl, func() {
		a.mu.Lock()
		if a.prep[id] == pr {
			delete(a.prep, id)
		}
		a.mu.Unlock()
		p.Abort()
		a.log.Warn("a prepared create expired: the coordinator did not come back", "id", id)
	})
	a.mu.Unlock()
	a.reply(w, http.StatusOK, PrepareResponse{Node: a.cfg.NodeID, ID: id, ExpiresAt: time.Now().Add(ttl)})
}

func (a *Agent) handleUnprepare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.mu.Lock()
	pr := a.prep[id]
	delete(a.prep, id)
	a.mu.Unlock()
	if pr == nil {
		a.failErr(w, fmt.Errorf("no prepared create of %s on node %s: %w", id, a.cfg.NodeID, snapshot.ErrNotFound))
		return
	}
	pr.timer.Stop()
	pr.p.Abort()
	a.reply(w, http.StatusOK, map[string]any{"node": a.cfg.NodeID, "id": id, "aborted": true})
}

func (a *Agent) handleDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := snapshot.Delete(r.Context(), a.cfg.Layout, id, a.log); err != nil {
		a.failErr(w, err)
		return
	}
	a.m.deletes.Inc()
	a.reply(w, http.StatusOK, DeleteResponse{Node: a.cfg.NodeID, ID: id, Deleted: true})
}

func (a *Agent) handleRevert(w http.ResponseWriter, r *http.Request) {
	var req RevertRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	q, closeQ := a.cfg.NewQuiescer(false)
	defer closeQ()
	next, err := snapshot.Revert(r.Context(), a.cfg.Layout, req.Failsafe, snapshot.RevertOptions{Quiescer: q, Lock: a.cfg.Lock, Logger: a.log})
	if err != nil {
		a.failErr(w, err)
		return
	}
	a.reply(w, http.StatusOK, RevertResponse{Node: a.cfg.NodeID, Failsafe: next})
}
