package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// An agent serves one node: the HTTP API (api.go for the types, server.go
// for routing and errors), the write lock under a lease (leases.go), local
// snapshots (snapshots.go), long jobs (jobs.go) and metrics (metrics.go).

// AgentConfig configures an agent.
type AgentConfig struct {
	Layout  *snapshot.Layout
	NodeID  string
	Cluster string
	// Token is the operators' bearer token, ReadToken (optional) the
	// readers': the lab fallback, used when ClientCA is nil.
	Token, ReadToken string
	// ClientCA, when set, makes callers prove themselves by a client
	// certificate of this CA naming this cluster and a role (serve with
	// TLSConfig or Serve); tokens are then not accepted.
	ClientCA *x509.CertPool
	// MaxJobsPerClient caps the jobs one caller may have running at once
	// (0 means defaults.AgentMaxJobsPerClient).
	MaxJobsPerClient int
	// NewQuiescer returns a fresh quiescer (and its closer) for each lock:
	// the agent's lock, and a restore's swap. force asks it to abort long
	// write transactions.
	NewQuiescer func(force bool) (quiesce.Quiescer, func())
	// Lock is the policy of locks the agent takes itself (a create without
	// a coordinator's lock, a restore's swap).
	Lock quiesce.Policy
	// MaxLease caps a coordinator's lock lease; 0 means 60s.
	MaxLease time.Duration
	// Passed to every create: as `hotsnap create`'s flags.
	AppVersion, AppEngine, EncryptionKeyID string
	// StopCmd and StartCmd stop and start the node's application around a
	// cluster restore (sh -c, with HOTSNAP_DATA_DIR; HookTimeout bounds
	// each, 0 means 5 minutes). Configured here only: a coordinator says
	// when, never what.
	StopCmd, StartCmd string
	HookTimeout       time.Duration
	Copy, Exclude     []string
	LinkMode          string
	// Remote options and key for upload and download jobs: the agent's own
	// credentials; requests only name the remote.
	Remote remote.Options
	// Policy, when set, is this node's own backup policy (RunPolicy,
	// RunPolicyEvery).
	Policy *pipeline.Policy
	Logger *slog.Logger
}

// Agent serves one node's snapshots over HTTP.
type Agent struct {
	cfg AgentConfig
	log *slog.Logger

	mu      sync.Mutex
	lk      *heldLock
	ended   map[string]lockEnd // recent locks' outcomes, for unlock's answer
	jobs    map[string]*jobState
	prep    map[string]*prepared // prepared creates by snapshot id
	jobIDs  []string             // creation order, for trimming
	running map[string]int       // running jobs by caller

	opDigest, readDigest [32]byte // SHA-256 of "Bearer " + the tokens

	m *metrics
}

// NewAgent returns an agent; serve its Handler.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Layout == nil || cfg.NodeID == "" || cfg.NewQuiescer == nil {
		return nil, fmt.Errorf("%w: agent needs a data dir, a node id and a quiescer", snapshot.ErrInvalid)
	}
	if cfg.ClientCA == nil && len(cfg.Token) < 16 {
		return nil, fmt.Errorf("%w: the agent needs a client CA or a token of at least 16 characters", snapshot.ErrInvalid)
	}
	if cfg.ReadToken != "" && (len(cfg.ReadToken) < 16 || cfg.ReadToken == cfg.Token) {
		return nil, fmt.Errorf("%w: the readers' token must be at least 16 characters and not the operators'", snapshot.ErrInvalid)
	}
	if cfg.MaxJobsPerClient <= 0 {
		cfg.MaxJobsPerClient = defaults.AgentMaxJobsPerClient
	}
	if cfg.AppVersion != "" {
		if err := manifest.ValidVersion(cfg.AppVersion); err != nil {
			return nil, fmt.Errorf("%w: %v", snapshot.ErrInvalid, err)
		}
	}
	if !ca.ValidName(cfg.NodeID) {
		return nil, fmt.Errorf("%w: node id %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, cfg.NodeID)
	}
	if cfg.MaxLease <= 0 {
		cfg.MaxLease = defaults.MaxLockLease
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, log: log.With("node", cfg.NodeID), ended: map[string]lockEnd{}, jobs: map[string]*jobState{}, prep: map[string]*prepared{},
		running:  map[string]int{},
		opDigest: sha256.Sum256([]byte("Bearer " + cfg.Token)), readDigest: sha256.Sum256([]byte("Bearer " + cfg.ReadToken))}
	a.m = newMetrics(a)
	return a, nil
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

// QuiescerOf checks c once over l's data dir and returns what an agent's
// NewQuiescer is: a fresh quiescer of c for each lock. A quiescer that
// cannot be built later (its cgroup or pid file gone) fails its lock with
// the reason.
func QuiescerOf(ctx context.Context, l *snapshot.Layout, c quiesce.Config) (func(force bool) (quiesce.Quiescer, func()), error) {
	_, closeQ, err := l.NewQuiescer(ctx, c, false)
	if err != nil {
		return nil, err
	}
	closeQ()
	return func(force bool) (quiesce.Quiescer, func()) {
		q, closeQ, err := l.NewQuiescer(ctx, c, force)
		if err != nil {
			return failedQuiescer{err}, func() {}
		}
		return q, closeQ
	}, nil
}

// failedQuiescer is a quiescer that could not be built: its lock fails.
type failedQuiescer struct{ err error }

func (f failedQuiescer) Quiesce(context.Context, time.Duration) error {
	return fmt.Errorf("%w: %v", quiesce.ErrFailed, f.err)
}
func (failedQuiescer) Resume(context.Context) error { return nil }
