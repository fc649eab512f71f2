package cluster

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/retention"
	"github.com/hotsnap/hotsnap/snapshot"
)

// An agent's own backup policy (agent --policy): run every PolicyEvery on
// this node alone, as `hotsnap run` would, with the agent's create
// settings, quiescer and archive credentials; the last run's outcome is in
// the metrics. Its snapshots are this node's, not cluster snapshots: a
// cluster-wide policy is `hotsnap cluster run`.

// policyMetrics are the last run's gauges and a counter of runs.
type policyMetrics struct {
	runs                                 *prometheus.CounterVec // result: ok, failed
	lastTime, lastDuration, lastOK, size prometheus.Gauge
}

func newPolicyMetrics(reg *prometheus.Registry, labels prometheus.Labels) *policyMetrics {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
	}
	m := &policyMetrics{
		runs:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotsnap_policy_runs_total", Help: "Policy runs by result.", ConstLabels: labels}, []string{"result"}),
		lastTime:     gauge("hotsnap_policy_last_run_timestamp_seconds", "When the last policy run started (Unix time)."),
		lastDuration: gauge("hotsnap_policy_last_run_duration_seconds", "How long the last policy run took."),
		lastOK:       gauge("hotsnap_policy_last_run_success", "1 if the last policy run succeeded, 0 if a step failed."),
		size:         gauge("hotsnap_policy_last_snapshot_bytes", "Bytes of the snapshot the last policy run took."),
	}
	m.runs.WithLabelValues("ok")
	m.runs.WithLabelValues("failed")
	reg.MustRegister(m.runs, m.lastTime, m.lastDuration, m.lastOK, m.size)
	return m
}

// RunPolicy runs the agent's policy once, now.
func (a *Agent) RunPolicy(ctx context.Context) (*pipeline.Result, error) {
	p := a.cfg.Policy
	q, closeQ := a.cfg.NewQuiescer(false)
	defer closeQ()
	res, err := pipeline.Run(ctx, a.cfg.Layout, p, pipeline.Options{
		Create: snapshot.CreateOptions{Quiescer: q, Lock: a.cfg.Lock, NodeID: a.cfg.NodeID,
			AppVersion: a.cfg.AppVersion, AppEngine: a.cfg.AppEngine, EncryptionKeyID: a.cfg.EncryptionKeyID,
			Copy: a.cfg.Copy, Exclude: a.cfg.Exclude, LinkMode: a.cfg.LinkMode},
		OpenRemote: func(ctx context.Context, spec string) (*archive.Repo, error) {
			return remote.Open(ctx, spec, a.cfg.Remote, true)
		},
		Logger: a.log,
	})
	pm := a.m.policy
	if res != nil {
		pm.lastTime.Set(float64(res.StartedAt.UnixNano()) / 1e9)
		pm.lastDuration.Set(res.DurationMs / 1000)
		for _, s := range res.Steps {
			if s.Step == "create" && s.OK {
				pm.size.Set(float64(s.Bytes))
			}
		}
	}
	if err != nil {
		pm.runs.WithLabelValues("failed").Inc()
		pm.lastOK.Set(0)
		a.log.Error("policy run failed", "err", err)
	} else {
		pm.runs.WithLabelValues("ok").Inc()
		pm.lastOK.Set(1)
		a.log.Info("policy run", "id", res.ID, "durationMs", res.DurationMs)
	}
	return res, err
}

// RunPolicyEvery runs the policy every interval until ctx ends (the first
// run one interval after the start). A run that fails is logged and
// counted; the next one comes on schedule.
func (a *Agent) RunPolicyEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.RunPolicy(ctx)
		}
	}
}

// RunPolicy runs p cluster-wide: a cluster create (co, with the policy's
// label), an upload job on every node, a prune that deletes the cluster
// snapshots p.KeepLocal does not keep, then forget and gc on the archive,
// which the coordinator opens itself with openRemote (its own
// credentials; the agents' are theirs). The prune counts only available
// snapshots: one missing a piece is listed for an operator, never deleted
// on a guess. Each step runs only if the one before succeeded.
func (c *Coordinator) RunPolicy(ctx context.Context, p *pipeline.Policy, co CreateOptions,
	openRemote func(ctx context.Context, spec string) (*archive.Repo, error)) (*pipeline.Result, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	now := co.Now
	if now == nil {
		now = time.Now
	}
	run := pipeline.NewRunner(now())
	co.Label = p.Label
	err := run.Step("create", func(s *pipeline.Step) error {
		cr, err := c.Create(ctx, co)
		if err == nil {
			s.ID = cr.ID
			for _, pc := range cr.Pieces {
				s.Bytes += pc.Bytes
			}
		}
		return err
	})
	if err != nil {
		return run.Finish(err)
	}
	if p.Remote != "" {
		err = run.Step("upload", func(s *pipeline.Step) error {
			s.ID = run.ID()
			_, err := c.RunJobs(ctx, "upload", run.ID(), JobRequest{Remote: p.Remote})
			return err
		})
		if err != nil {
			return run.Finish(err)
		}
	}
	if p.KeepLocal != nil {
		kp, _ := p.KeepLocal.KeepPolicy()
		err = run.Step("prune", func(s *pipeline.Step) error {
			l, err := c.List(ctx)
			if err != nil {
				return err
			}
			var items []retention.Dated
			for _, cs := range l.Snapshots {
				if cs.Available {
					items = append(items, retention.Dated{ID: cs.ID, CreatedAt: cs.CreatedAt})
				}
			}
			_, remove := kp.Apply(items, now())
			for _, d := range remove {
				if _, err := c.Delete(ctx, d.ID); err != nil {
					return err
				}
				s.Removed = append(s.Removed, d.ID)
			}
			return nil
		})
		if err != nil {
			return run.Finish(err)
		}
	}
	return run.Finish(pipeline.ArchiveSteps(ctx, run, p, func() (*archive.Repo, error) { return openRemote(ctx, p.Remote) }, now))
}
