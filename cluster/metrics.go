package cluster

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotsnap/hotsnap/snapshot"
)

// metrics are the agent's Prometheus metrics, in a registry of its own
// (several agents may live in one process, as in the tests), every series
// labelled with the node.
type metrics struct {
	reg                            *prometheus.Registry
	creates, lockWait, lockHeld    prometheus.Summary
	createErrors, deletes, expired prometheus.Counter
	unauthorized                   prometheus.Counter
	lockAttempts                   *prometheus.CounterVec // result: ok, timeout, error
	moved                          *prometheus.CounterVec // direction: upload, download
	jobs                           *prometheus.CounterVec // type, status
	snapshots                      atomic.Int64           // the last count listed
	policy                         *policyMetrics
}

func newMetrics(a *Agent) *metrics {
	labels := prometheus.Labels{"node": a.cfg.NodeID}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	summary := func(name, help string) prometheus.Summary {
		return prometheus.NewSummary(prometheus.SummaryOpts{Name: name, Help: help, ConstLabels: labels})
	}
	vec := func(name, help string, by ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, by)
	}
	var m *metrics
	m = &metrics{
		reg:          prometheus.NewRegistry(),
		creates:      summary("hotsnap_create_duration_seconds", "Successful snapshot creates and their durations."),
		lockWait:     summary("hotsnap_lock_wait_seconds", "Time spent stopping writes, per lock attempt."),
		lockHeld:     summary("hotsnap_lock_held_seconds", "Time writes stayed stopped, per lock."),
		createErrors: counter("hotsnap_create_errors_total", "Failed snapshot creates."),
		deletes:      counter("hotsnap_deletes_total", "Snapshots deleted."),
		expired:      counter("hotsnap_lock_expired_total", "Locks released by the agent because their lease ended."),
		unauthorized: counter("hotsnap_unauthorized_requests_total", "Requests refused for a missing or wrong token."),
		lockAttempts: vec("hotsnap_lock_attempts_total", "Lock attempts by result.", "result"),
		moved:        vec("hotsnap_bytes_moved_total", "Bytes sent to and fetched from archives.", "direction"),
		jobs:         vec("hotsnap_jobs_total", "Finished jobs by type and status.", "type", "status"),
	}
	m.policy = newPolicyMetrics(m.reg, labels)
	for _, r := range []string{"ok", "timeout", "error"} {
		m.lockAttempts.WithLabelValues(r)
	}
	for _, d := range []string{"upload", "download"} {
		m.moved.WithLabelValues(d)
	}
	m.reg.MustRegister(m.creates, m.lockWait, m.lockHeld, m.createErrors, m.deletes, m.expired, m.unauthorized,
		m.lockAttempts, m.moved, m.jobs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotsnap_snapshots", Help: "Local snapshots on this node.", ConstLabels: labels},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if infos, err := snapshot.List(ctx, a.cfg.Layout, a.log); err == nil {
					m.snapshots.Store(int64(len(infos)))
				}
				return float64(m.snapshots.Load())
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotsnap_lock_held", Help: "1 while this agent holds writes stopped.", ConstLabels: labels},
			func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				if a.lk != nil && a.lk.held {
					return 1
				}
				return 0
			}))
	return m
}

// handler serves the registry in Prometheus' text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
