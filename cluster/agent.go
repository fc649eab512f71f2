package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// AgentConfig configures an agent.
type AgentConfig struct {
	Layout  *snapshot.Layout
	NodeID  string
	Cluster string
	// Token is the bearer token every call but /healthz must carry.
	Token string
	// NewQuiescer returns a fresh quiescer (and its closer) for each lock:
	// the agent's lock, and a restore's swap. force asks it to abort long
	// write transactions.
	NewQuiescer func(force bool) (snapshot.Quiescer, func())
	// Lock is the policy of locks the agent takes itself (a create without
	// a coordinator's lock, a restore's swap).
	Lock snapshot.LockPolicy
	// MaxLease caps a coordinator's lock lease; 0 means 60s.
	MaxLease time.Duration
	// Passed to every create: as `hotsnap create`'s flags.
	AppVersion, EncryptionKeyID string
	Copy, Exclude               []string
	LinkMode                    string
	// Remote options and key for upload and download jobs: the agent's own
	// credentials; requests only name the remote.
	Remote     archive.RemoteOptions
	ArchiveKey *archive.Key
	Logger     *slog.Logger
}

// Agent serves one node's snapshots over HTTP.
type Agent struct {
	cfg AgentConfig
	log *slog.Logger

	mu     sync.Mutex
	lk     *heldLock
	ended  map[string]lockEnd // recent locks' outcomes, for unlock's answer
	jobs   map[string]*jobState
	prep   map[string]*prepared // prepared creates by snapshot id
	jobIDs []string             // creation order, for trimming

	m metrics
}

type heldLock struct {
	id        string
	held      bool // false while acquiring or releasing
	q         snapshot.Quiescer
	closeQ    func()
	acquired  time.Time
	expires   time.Time
	timer     *time.Timer
	capturing bool
}

type prepared struct {
	p     *snapshot.Pending
	timer *time.Timer
}

type lockEnd struct {
	outcome string
	heldMs  float64
}

// NewAgent returns an agent; serve its Handler.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Layout == nil || cfg.NodeID == "" || cfg.NewQuiescer == nil {
		return nil, fmt.Errorf("%w: agent needs a data dir, a node id and a quiescer", snapshot.ErrInvalid)
	}
	if len(cfg.Token) < 16 {
		return nil, fmt.Errorf("%w: the agent token must be at least 16 characters", snapshot.ErrInvalid)
	}
	if !nameRE.MatchString(cfg.NodeID) {
		return nil, fmt.Errorf("%w: node id %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, cfg.NodeID)
	}
	if cfg.MaxLease <= 0 {
		cfg.MaxLease = defaults.MaxLockLease
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: log.With("node", cfg.NodeID), ended: map[string]lockEnd{}, jobs: map[string]*jobState{}, prep: map[string]*prepared{}}, nil
}

// Handler is the agent's HTTP API.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		a.reply(w, http.StatusOK, map[string]any{"ok": true, "node": a.cfg.NodeID})
	})
	mux.HandleFunc("GET /metrics", a.auth(a.handleMetrics))
	mux.HandleFunc("GET /v1/info", a.auth(a.handleInfo))
	mux.HandleFunc("POST /v1/lock", a.auth(a.handleLock))
	mux.HandleFunc("POST /v1/unlock", a.auth(a.handleUnlock))
	mux.HandleFunc("GET /v1/snapshots", a.auth(a.handleList))
	mux.HandleFunc("POST /v1/snapshots", a.auth(a.handleCreate))
	mux.HandleFunc("DELETE /v1/snapshots/{id}", a.auth(a.handleDelete))
	mux.HandleFunc("POST /v1/snapshots/{id}/prepare", a.auth(a.handlePrepare))
	mux.HandleFunc("DELETE /v1/snapshots/{id}/prepare", a.auth(a.handleUnprepare))
	mux.HandleFunc("POST /v1/snapshots/{id}/{op}", a.auth(a.handleJob))
	mux.HandleFunc("POST /v1/revert", a.auth(a.handleRevert))
	mux.HandleFunc("POST /v1/archive/init", a.auth(a.handleArchiveInit))
	mux.HandleFunc("GET /v1/jobs", a.auth(a.handleJobs))
	mux.HandleFunc("GET /v1/jobs/{job}", a.auth(a.handleGetJob))
	mux.HandleFunc("POST /v1/jobs/{job}/abort", a.auth(a.handleAbort))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, errs.NotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// auth checks the bearer token in constant time (of equal-length digests,
// so not even the token's length leaks).
func (a *Agent) auth(h http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte("Bearer " + a.cfg.Token))
	return func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			a.m.unauthorized.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotsnap"`)
			a.failErr(w, ErrUnauthorized)
			return
		}
		h(w, r)
	}
}

func (a *Agent) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *Agent) fail(w http.ResponseWriter, k errs.Kind, msg string) {
	a.reply(w, k.HTTPStatus(), errorBody{Error: RemoteError{Node: a.cfg.NodeID, Kind: k.String(), Message: msg}})
}

// failErr answers an error with the status of its kind.
func (a *Agent) failErr(w http.ResponseWriter, err error) {
	a.fail(w, errs.Of(err), err.Error())
}

// decode reads a JSON body strictly (unknown fields are refused).
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return fmt.Errorf("%w: request body: %v", snapshot.ErrInvalid, err)
	}
	return nil
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *Agent) handleInfo(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	info := Info{Node: a.cfg.NodeID, Cluster: a.cfg.Cluster, DataDir: a.cfg.Layout.DataDir,
		ToolVersion: snapshot.ToolVersion, AppVersion: a.cfg.AppVersion}
	if a.lk != nil && a.lk.held {
		info.Locked, info.LockID = true, a.lk.id
	}
	a.mu.Unlock()
	a.reply(w, http.StatusOK, info)
}

// --- The lock ---

func (a *Agent) handleLock(w http.ResponseWriter, r *http.Request) {
	var req LockRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	if !nameRE.MatchString(req.LockID) {
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
		a.m.lockTimeouts.Add(1)
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
	a.m.lockWait.observe(waited)
	a.mu.Lock()
	if err != nil {
		a.lk = nil
		a.mu.Unlock()
		closeQ()
		if errors.Is(err, snapshot.ErrLockTimeout) {
			a.m.lockTimeouts.Add(1)
			err = fmt.Errorf("%w: writes did not drain within %s", snapshot.ErrLockTimeout, timeout)
		} else {
			a.m.lockErrors.Add(1)
		}
		a.failErr(w, err)
		return
	}
	lk.held, lk.acquired, lk.expires = true, time.Now(), time.Now().Add(lease)
	lk.timer = time.AfterFunc(lease, func() {
		if a.release(lk.id, "expired") {
			a.m.lockExpired.Add(1)
			a.log.Warn("lock lease ended without renewal or release: writes resumed", "lock", lk.id, "lease", lease)
		}
	})
	a.mu.Unlock()
	a.m.locks.Add(1)
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
	a.m.lockHeld.observe(held)
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
			a.m.createErrors.Add(1)
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
		co.Lock = snapshot.LockPolicy{MaxWait: time.Nanosecond}
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
		a.m.createErrors.Add(1)
		a.failErr(w, err)
		return
	}
	a.m.creates.observe(time.Since(start))
	a.reply(w, http.StatusOK, CreateResponse{Node: a.cfg.NodeID, CreateResult: *res})
}

func (a *Agent) createOptions(id string, topo *manifest.Topology) snapshot.CreateOptions {
	return snapshot.CreateOptions{
		ID: id, Copy: a.cfg.Copy, Exclude: a.cfg.Exclude, LinkMode: a.cfg.LinkMode,
		AppVersion: a.cfg.AppVersion, NodeID: a.cfg.NodeID, Topology: topo,
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
	a.m.deletes.Add(1)
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

func (a *Agent) openRemote(ctx context.Context, remote string, init bool) (*archive.Repo, error) {
	if remote == "" {
		return nil, fmt.Errorf("%w: no remote given", snapshot.ErrInvalid)
	}
	st, err := archive.Connect(ctx, remote, a.cfg.Remote, init)
	if err != nil {
		return nil, err
	}
	if init {
		return archive.OpenOrInit(ctx, st, a.cfg.ArchiveKey)
	}
	return archive.Open(ctx, st, a.cfg.ArchiveKey)
}

func (a *Agent) handleArchiveInit(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	if _, err := a.openRemote(r.Context(), req.Remote, true); err != nil {
		a.failErr(w, err)
		return
	}
	a.reply(w, http.StatusOK, map[string]any{"node": a.cfg.NodeID, "initialised": true})
}

// --- Jobs ---

type jobState struct {
	mu     sync.Mutex
	job    Job
	cancel context.CancelFunc
	files  atomic.Int64
	bytes  atomic.Int64
}

func (j *jobState) snapshot() Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.job
	if !out.Finished() {
		out.FilesDone, out.BytesDone = j.files.Load(), j.bytes.Load()
	}
	return out
}

// progress adapts a job to archive.Progress.
type progress struct{ j *jobState }

func (p progress) Start(_ string, files, bytes int64) {
	p.j.mu.Lock()
	p.j.job.FilesTotal, p.j.job.BytesTotal = files, bytes
	p.j.mu.Unlock()
}
func (p progress) Add(files, bytes int64) { p.j.files.Add(files); p.j.bytes.Add(bytes) }
func (p progress) Done()                  {}

func (a *Agent) handleJob(w http.ResponseWriter, r *http.Request) {
	id, op := r.PathValue("id"), r.PathValue("op")
	var req JobRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	if err := snapshot.ValidID(id); err != nil {
		a.failErr(w, err)
		return
	}
	var run func(ctx context.Context, j *jobState) (any, error)
	switch op {
	case "verify":
		run = func(ctx context.Context, j *jobState) (any, error) { return a.runVerify(ctx, j, id, req) }
	case "restore":
		run = func(ctx context.Context, j *jobState) (any, error) { return a.runRestore(ctx, j, id, req) }
	case "upload":
		run = func(ctx context.Context, j *jobState) (any, error) { return a.runUpload(ctx, j, id, req) }
	case "download":
		run = func(ctx context.Context, j *jobState) (any, error) { return a.runDownload(ctx, j, id, req) }
	default:
		a.fail(w, errs.NotFound, fmt.Sprintf("no such operation %q (want verify, restore, upload or download)", op))
		return
	}
	if req.JobID == "" {
		req.JobID = randomID()
	}
	if !nameRE.MatchString(req.JobID) {
		a.failErr(w, fmt.Errorf("%w: jobId %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, req.JobID))
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	js := &jobState{cancel: cancel, job: Job{ID: req.JobID, Node: a.cfg.NodeID, Type: op, SnapshotID: id, Status: JobNew, CreatedAt: time.Now().UTC()}}
	a.mu.Lock()
	if _, dup := a.jobs[req.JobID]; dup {
		a.mu.Unlock()
		cancel()
		a.failErr(w, fmt.Errorf("%w: job %s exists already", snapshot.ErrInvalid, req.JobID))
		return
	}
	a.jobs[req.JobID] = js
	a.jobIDs = append(a.jobIDs, req.JobID)
	a.trimJobsLocked()
	a.mu.Unlock()
	go func() {
		defer cancel()
		js.mu.Lock()
		if js.job.Status == JobNew {
			js.job.Status = JobRunning
		}
		js.mu.Unlock()
		var res any
		err := par.Safely(func() (err error) { res, err = run(ctx, js); return err })
		js.mu.Lock()
		defer js.mu.Unlock()
		now := time.Now().UTC()
		js.job.EndedAt = &now
		js.job.FilesDone, js.job.BytesDone = js.files.Load(), js.bytes.Load()
		switch {
		case err != nil && ctx.Err() != nil:
			js.job.Status = JobCancelled
			js.job.Error = &RemoteError{Node: a.cfg.NodeID, Kind: errs.Interrupted.String(), Message: "aborted: " + err.Error()}
		case err != nil:
			js.job.Status = JobFailed
			js.job.Error = &RemoteError{Node: a.cfg.NodeID, Kind: errs.Of(err).String(), Message: err.Error()}
		default:
			js.job.Status = JobCompleted
			js.job.Result, _ = json.Marshal(res)
		}
		a.m.jobEnded(op, js.job.Status)
		a.log.Info("job ended", "job", js.job.ID, "type", op, "snapshot", id, "status", js.job.Status, "err", err)
	}()
	a.reply(w, http.StatusAccepted, js.snapshot())
}

// trimJobsLocked forgets the oldest finished jobs beyond 200.
func (a *Agent) trimJobsLocked() {
	for len(a.jobIDs) > 200 {
		old := a.jobs[a.jobIDs[0]]
		if j := old.snapshot(); !j.Finished() {
			return
		}
		delete(a.jobs, a.jobIDs[0])
		a.jobIDs = a.jobIDs[1:]
	}
}

func (a *Agent) runVerify(ctx context.Context, j *jobState, id string, req JobRequest) (any, error) {
	m, err := snapshot.ReadHeader(a.cfg.Layout, id)
	if err != nil {
		return nil, err
	}
	progress{j}.Start("verify", m.Totals.Files, m.Totals.Bytes)
	vr, err := snapshot.Verify(ctx, a.cfg.Layout, id, snapshot.VerifyOptions{Fast: req.FastVerify, Logger: a.log,
		OnHashed: func(n int64) { progress{j}.Add(1, n) }})
	if err != nil {
		return nil, err
	}
	if !vr.OK() {
		return nil, vr.Err()
	}
	if req.FastVerify { // nothing was hashed: the stat pass covered it all
		progress{j}.Add(m.Totals.Files, m.Totals.Bytes)
	}
	return vr, nil
}

func (a *Agent) runRestore(ctx context.Context, j *jobState, id string, req JobRequest) (any, error) {
	m, err := snapshot.ReadHeader(a.cfg.Layout, id)
	if err != nil {
		return nil, err
	}
	progress{j}.Start("restore", m.Totals.Files, m.Totals.Bytes)
	q, closeQ := a.cfg.NewQuiescer(false)
	defer closeQ()
	res, err := snapshot.Restore(ctx, a.cfg.Layout, id, snapshot.RestoreOptions{
		AppVersion: a.cfg.AppVersion, EncryptionKeyID: a.cfg.EncryptionKeyID,
		NodeID: a.cfg.NodeID, Nodes: req.Nodes, IgnoreVersion: req.IgnoreVersion,
		FastVerify: req.FastVerify, DryRun: req.DryRun, Quiescer: q, Lock: a.cfg.Lock, Logger: a.log,
	})
	if err != nil {
		return res, err
	}
	progress{j}.Add(m.Totals.Files, m.Totals.Bytes)
	crash.Point("agent.restored")
	return res, nil
}

func (a *Agent) runUpload(ctx context.Context, j *jobState, id string, req JobRequest) (any, error) {
	if _, err := snapshot.ReadHeader(a.cfg.Layout, id); err != nil {
		return nil, err
	}
	repo, err := a.openRemote(ctx, req.Remote, true)
	if err != nil {
		return nil, err
	}
	res, err := archive.Upload(ctx, repo, a.cfg.Layout, id, archive.UploadOptions{Progress: progress{j}, Logger: a.log})
	if res != nil {
		a.m.uploaded.Add(res.BytesSent)
	}
	return res, err
}

func (a *Agent) runDownload(ctx context.Context, j *jobState, id string, req JobRequest) (any, error) {
	repo, err := a.openRemote(ctx, req.Remote, false)
	if err != nil {
		return nil, err
	}
	res, err := archive.Download(ctx, repo, a.cfg.Layout, id, archive.DownloadOptions{Node: a.cfg.NodeID, Progress: progress{j}, Logger: a.log})
	if res != nil {
		a.m.downloaded.Add(res.BytesFetched)
	}
	return res, err
}

func (a *Agent) handleJobs(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	out := make([]Job, 0, len(a.jobIDs))
	for _, id := range a.jobIDs {
		out = append(out, a.jobs[id].snapshot())
	}
	a.mu.Unlock()
	a.reply(w, http.StatusOK, out)
}

func (a *Agent) job(w http.ResponseWriter, r *http.Request) *jobState {
	a.mu.Lock()
	js := a.jobs[r.PathValue("job")]
	a.mu.Unlock()
	if js == nil {
		a.fail(w, errs.NotFound, fmt.Sprintf("job %q: not found on node %s", r.PathValue("job"), a.cfg.NodeID))
	}
	return js
}

func (a *Agent) handleGetJob(w http.ResponseWriter, r *http.Request) {
	if js := a.job(w, r); js != nil {
		a.reply(w, http.StatusOK, js.snapshot())
	}
}

func (a *Agent) handleAbort(w http.ResponseWriter, r *http.Request) {
	js := a.job(w, r)
	if js == nil {
		return
	}
	js.cancel()
	a.reply(w, http.StatusOK, js.snapshot())
}

// Close releases a held lock (an agent shutting down resumes writes).
func (a *Agent) Close() {
	a.mu.Lock()
	var id string
	if a.lk != nil && a.lk.held {
		id = a.lk.id
	}
	for _, js := range a.jobs {
		js.cancel()
	}
	preps := a.prep
	a.prep = map[string]*prepared{}
	a.mu.Unlock()
	for _, pr := range preps {
		pr.timer.Stop()
		pr.p.Abort()
	}
	if id != "" {
		a.release(id, "agent stopped")
	}
}

// checkInPlan refuses a plan that does not name this node.
func (a *Agent) checkInPlan(topo *manifest.Topology) error {
	if topo != nil && !slices.Contains(topo.Nodes, a.cfg.NodeID) {
		return fmt.Errorf("%w: the plan's nodes %v do not include this node (%s)", snapshot.ErrInvalid, topo.Nodes, a.cfg.NodeID)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// --- Metrics ---

type summary struct {
	mu    sync.Mutex
	count int64
	sum   float64
}

func (s *summary) observe(d time.Duration) {
	s.mu.Lock()
	s.count++
	s.sum += d.Seconds()
	s.mu.Unlock()
}

func (s *summary) read() (int64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.sum
}

type metrics struct {
	snapshots                             atomic.Int64
	creates, lockWait, lockHeld           summary
	createErrors, deletes, locks          atomic.Int64
	lockTimeouts, lockErrors, lockExpired atomic.Int64
	uploaded, downloaded, unauthorized    atomic.Int64
	jobsMu                                sync.Mutex
	jobsEnded                             map[[2]string]int64
}

func (m *metrics) jobEnded(typ, status string) {
	m.jobsMu.Lock()
	if m.jobsEnded == nil {
		m.jobsEnded = map[[2]string]int64{}
	}
	m.jobsEnded[[2]string{typ, status}]++
	m.jobsMu.Unlock()
}

func (a *Agent) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if infos, err := snapshot.List(r.Context(), a.cfg.Layout, a.log); err == nil {
		a.m.snapshots.Store(int64(len(infos)))
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m := &a.m
	node := fmt.Sprintf("{node=%q}", a.cfg.NodeID)
	p := func(name, typ, help string) { fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	sum := func(name, help string, s *summary) {
		c, t := s.read()
		p(name, "summary", help)
		fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", name, node, t, name, node, c)
	}
	p("hotsnap_snapshots", "gauge", "Local snapshots on this node.")
	fmt.Fprintf(w, "hotsnap_snapshots%s %d\n", node, m.snapshots.Load())
	sum("hotsnap_create_duration_seconds", "Successful snapshot creates and their durations.", &m.creates)
	p("hotsnap_create_errors_total", "counter", "Failed snapshot creates.")
	fmt.Fprintf(w, "hotsnap_create_errors_total%s %d\n", node, m.createErrors.Load())
	p("hotsnap_deletes_total", "counter", "Snapshots deleted.")
	fmt.Fprintf(w, "hotsnap_deletes_total%s %d\n", node, m.deletes.Load())
	sum("hotsnap_lock_wait_seconds", "Time spent stopping writes, per lock attempt.", &m.lockWait)
	sum("hotsnap_lock_held_seconds", "Time writes stayed stopped, per lock.", &m.lockHeld)
	p("hotsnap_lock_attempts_total", "counter", "Lock attempts by result.")
	fmt.Fprintf(w, "hotsnap_lock_attempts_total{node=%q,result=\"ok\"} %d\n", a.cfg.NodeID, m.locks.Load())
	fmt.Fprintf(w, "hotsnap_lock_attempts_total{node=%q,result=\"timeout\"} %d\n", a.cfg.NodeID, m.lockTimeouts.Load())
	fmt.Fprintf(w, "hotsnap_lock_attempts_total{node=%q,result=\"error\"} %d\n", a.cfg.NodeID, m.lockErrors.Load())
	p("hotsnap_lock_expired_total", "counter", "Locks released by the agent because their lease ended.")
	fmt.Fprintf(w, "hotsnap_lock_expired_total%s %d\n", node, m.lockExpired.Load())
	a.mu.Lock()
	held := 0
	if a.lk != nil && a.lk.held {
		held = 1
	}
	a.mu.Unlock()
	p("hotsnap_lock_held", "gauge", "1 while this agent holds writes stopped.")
	fmt.Fprintf(w, "hotsnap_lock_held%s %d\n", node, held)
	p("hotsnap_bytes_moved_total", "counter", "Bytes sent to and fetched from archives.")
	fmt.Fprintf(w, "hotsnap_bytes_moved_total{node=%q,direction=\"upload\"} %d\n", a.cfg.NodeID, m.uploaded.Load())
	fmt.Fprintf(w, "hotsnap_bytes_moved_total{node=%q,direction=\"download\"} %d\n", a.cfg.NodeID, m.downloaded.Load())
	p("hotsnap_unauthorized_requests_total", "counter", "Requests refused for a missing or wrong token.")
	fmt.Fprintf(w, "hotsnap_unauthorized_requests_total%s %d\n", node, m.unauthorized.Load())
	p("hotsnap_jobs_total", "counter", "Finished jobs by type and status.")
	m.jobsMu.Lock()
	keys := make([][2]string, 0, len(m.jobsEnded))
	for k := range m.jobsEnded {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "hotsnap_jobs_total{node=%q,type=%q,status=%q} %d\n", a.cfg.NodeID, k[0], k[1], m.jobsEnded[k])
	}
	m.jobsMu.Unlock()
}
