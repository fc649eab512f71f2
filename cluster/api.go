package cluster

import (
	"encoding/json"
	"time"

	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// The agent's HTTP API (JSON; see docs/cluster.md's "Agent API" for the
// reference). Every path but /healthz needs "Authorization: Bearer TOKEN".
//
//	GET    /healthz                      liveness, no token
//	GET    /metrics                      Prometheus text format
//	GET    /v1/info                      node id, data dir, lock state
//	POST   /v1/lock                      LockRequest -> LockResponse (also renews)
//	POST   /v1/unlock                    UnlockRequest -> UnlockResponse
//	GET    /v1/snapshots                 [] snapshot.Info
//	POST   /v1/snapshots                 CreateRequest -> CreateResponse
//	DELETE /v1/snapshots/{id}            -> DeleteResponse
//	POST   /v1/snapshots/{id}/prepare    PrepareRequest -> PrepareResponse (also renews)
//	DELETE /v1/snapshots/{id}/prepare    abort a prepared create
//	POST   /v1/snapshots/{id}/verify     JobRequest -> Job
//	POST   /v1/snapshots/{id}/restore    JobRequest -> Job
//	POST   /v1/snapshots/{id}/upload     JobRequest -> Job
//	POST   /v1/snapshots/{id}/download   JobRequest -> Job
//	POST   /v1/revert                    RevertRequest -> RevertResponse
//	POST   /v1/archive/init              JobRequest (remote) -> {}
//	GET    /v1/jobs                      [] Job
//	GET    /v1/jobs/{job}                Job
//	POST   /v1/jobs/{job}/abort          Job
//
// Errors answer with a 4xx/5xx status and {"error": {"kind", "message", "node"}}.

// LockRequest asks an agent to stop writes. TimeoutMs bounds this one
// attempt (the coordinator retries with growing periods); LeaseMs is how long
// the lock lives unless renewed (a LockRequest with the same LockID) or
// released. A lock is released by the agent itself when its lease ends.
type LockRequest struct {
	LockID string `json:"lockId"`
	// Renew only extends a held lock: it never takes a new one (a lock
	// already released by its snapshot stays released).
	Renew     bool  `json:"renew,omitempty"`
	TimeoutMs int64 `json:"timeoutMs"`
	LeaseMs   int64 `json:"leaseMs"`
	// Force asks the application to abort long write transactions (the
	// agent's quiescer in force mode: flock's force-requested file, exec's
	// HOTSNAP_FORCE=1, http's force field).
	Force bool `json:"force,omitempty"`
}

// LockResponse reports a held (or renewed) lock.
type LockResponse struct {
	Node      string    `json:"node"`
	LockID    string    `json:"lockId"`
	Renewed   bool      `json:"renewed"`
	WaitedMs  float64   `json:"waitedMs"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// UnlockRequest releases a lock. Unlocking a lock that is no longer held
// is not an error: Released is false and Outcome says what ended it.
type UnlockRequest struct {
	LockID string `json:"lockId"`
}

// UnlockResponse reports a release.
type UnlockResponse struct {
	Node     string  `json:"node"`
	Released bool    `json:"released"`
	HeldMs   float64 `json:"heldMs"`
	// Outcome is how the lock ended: "unlocked", "captured" (released by
	// the snapshot that used it), "expired" (its lease ran out), or
	// "unknown".
	Outcome string `json:"outcome"`
}

// CreateRequest takes a snapshot on the agent's node, using the prepared
// create of the same id if there is one. With LockID, the
// snapshot is captured under that held lock, which is released as soon as
// the link tree is built. With Inconsistent, no lock is taken and the
// snapshot is flagged potentiallyInconsistent. With neither, the agent takes
// its own lock with MaxWaitMs (and AllowInconsistent) as `hotsnap create`.
type CreateRequest struct {
	ID                string             `json:"id"`
	LockID            string             `json:"lockId,omitempty"`
	Inconsistent      bool               `json:"inconsistent,omitempty"`
	MaxWaitMs         int64              `json:"maxWaitMs,omitempty"`
	AllowInconsistent bool               `json:"allowInconsistent,omitempty"`
	Topology          *manifest.Topology `json:"topology,omitempty"`
}

// PrepareRequest readies a create before the coordinator stops writes:
// the agent does every check, recovery and read a create needs, takes the
// node's operation lock and keeps the result for TTLMs unless renewed (a
// PrepareRequest with Renew) or used by a CreateRequest with the same id.
type PrepareRequest struct {
	Topology *manifest.Topology `json:"topology,omitempty"`
	TTLMs    int64              `json:"ttlMs"`
	Renew    bool               `json:"renew,omitempty"`
}

// PrepareResponse reports a prepared (or renewed) create.
type PrepareResponse struct {
	Node      string    `json:"node"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// CreateResponse is the node's create result.
type CreateResponse struct {
	Node string `json:"node"`
	snapshot.CreateResult
}

// DeleteResponse reports a delete.
type DeleteResponse struct {
	Node    string `json:"node"`
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// JobRequest starts a job on a snapshot.
type JobRequest struct {
	// JobID names the job (the coordinator uses one id on every node);
	// empty means a random one.
	JobID string `json:"jobId,omitempty"`
	// Remote is the archive for upload, download and archive init; the
	// agent's own remote config and credentials apply.
	Remote string `json:"remote,omitempty"`
	// Restore: the target topology (node ids), and the checks.
	Nodes         []string `json:"nodes,omitempty"`
	DryRun        bool     `json:"dryRun,omitempty"`
	FastVerify    bool     `json:"fastVerify,omitempty"`
	IgnoreVersion bool     `json:"ignoreVersion,omitempty"`
	// detach: the coordinator starts the jobs and does not wait (StartJobs).
	detach bool
}

// Job states.
const (
	JobNew       = "NEW"
	JobRunning   = "RUNNING"
	JobCompleted = "COMPLETED"
	JobFailed    = "FAILED"
	JobAborted   = "ABORTED" // an abort (or the coordinator's interrupt) stopped it
)

// Job is a long operation on one node.
type Job struct {
	ID         string          `json:"id"`
	Node       string          `json:"node"`
	Type       string          `json:"type"` // verify, restore, upload, download
	SnapshotID string          `json:"snapshotId"`
	Status     string          `json:"status"`
	FilesDone  int64           `json:"filesDone"`
	FilesTotal int64           `json:"filesTotal"`
	BytesDone  int64           `json:"bytesDone"`
	BytesTotal int64           `json:"bytesTotal"`
	Error      *RemoteError    `json:"error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	CreatedAt  time.Time       `json:"createdAt"`
	EndedAt    *time.Time      `json:"endedAt,omitempty"`
}

// Finished reports whether the job has ended.
func (j *Job) Finished() bool {
	return j.Status == JobCompleted || j.Status == JobFailed || j.Status == JobAborted
}

// RevertRequest puts a restore's failsafe back (a cluster restore that
// failed on another node).
type RevertRequest struct {
	Failsafe string `json:"failsafe"`
}

// RevertResponse reports a revert.
type RevertResponse struct {
	Node     string `json:"node"`
	Failsafe string `json:"failsafe"` // where the replaced (restored) state went
}

// Info describes an agent.
type Info struct {
	Node        string `json:"node"`
	Cluster     string `json:"cluster"`
	DataDir     string `json:"dataDir"`
	ToolVersion string `json:"toolVersion"`
	AppVersion  string `json:"appVersion,omitempty"`
	Locked      bool   `json:"locked"`
	LockID      string `json:"lockId,omitempty"`
}

type errorBody struct {
	Error RemoteError `json:"error"`
}
