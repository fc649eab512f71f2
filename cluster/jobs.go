package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/snapshot"
)

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

// handleJob starts a job for caller c, within its cap of running jobs.
func (a *Agent) handleJob(w http.ResponseWriter, r *http.Request, c caller) {
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
	if !ca.ValidName(req.JobID) {
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
	if a.running[c.name] >= a.cfg.MaxJobsPerClient {
		a.mu.Unlock()
		cancel()
		a.failErr(w, fmt.Errorf("%w: %s has %d jobs running on node %s already (at most %d)", errs.ErrThrottled, c.name, a.running[c.name], a.cfg.NodeID, a.cfg.MaxJobsPerClient))
		return
	}
	a.running[c.name]++
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
		a.mu.Lock() // no longer running, before anyone can see it finished
		if a.running[c.name]--; a.running[c.name] == 0 {
			delete(a.running, c.name)
		}
		a.mu.Unlock()
		js.mu.Lock()
		defer js.mu.Unlock()
		now := time.Now().UTC()
		js.job.EndedAt = &now
		js.job.FilesDone, js.job.BytesDone = js.files.Load(), js.bytes.Load()
		switch {
		case err != nil && ctx.Err() != nil:
			js.job.Status = JobAborted
			js.job.Error = &RemoteError{Node: a.cfg.NodeID, Kind: errs.Interrupted.String(), Message: "aborted: " + err.Error()}
		case err != nil:
			js.job.Status = JobFailed
			js.job.Error = &RemoteError{Node: a.cfg.NodeID, Kind: errs.Of(err).String(), Message: err.Error()}
		default:
			js.job.Status = JobCompleted
			js.job.Result, _ = json.Marshal(res)
		}
		a.m.jobs.WithLabelValues(op, js.job.Status).Inc()
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
	vr, err := snapshot.Verify(ctx, a.cfg.Layout, id, snapshot.VerifyOptions{Fast: req.FastVerify, Logger: a.log, Progress: progress{j}})
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
		AppVersion: a.cfg.AppVersion, AppEngine: a.cfg.AppEngine, EncryptionKeyID: a.cfg.EncryptionKeyID,
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
		a.m.moved.WithLabelValues("upload").Add(float64(res.BytesSent))
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
		a.m.moved.WithLabelValues("download").Add(float64(res.BytesFetched))
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
	// Wait, bounded, for the job to stop, so the answer says how it ended
	// (ABORTED, or COMPLETED or FAILED when it ended first).
	deadline := time.NewTimer(defaults.AbortWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for j := js.snapshot(); !j.Finished(); j = js.snapshot() {
		select {
		case <-tick.C:
		case <-deadline.C:
			a.reply(w, http.StatusOK, j)
			return
		case <-r.Context().Done():
			return
		}
	}
	a.reply(w, http.StatusOK, js.snapshot())
}

func (a *Agent) openRemote(ctx context.Context, spec string, init bool) (*archive.Repo, error) {
	return remote.Open(ctx, spec, a.cfg.Remote, init)
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
