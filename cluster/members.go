package cluster

// Membership: an agent's registration under a lease it keeps alive.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Member is an agent's registration.
type Member struct {
	NodeID      string `json:"nodeId"`
	URL         string `json:"url"` // the agent's API, http(s)://host:port
	ToolVersion string `json:"toolVersion"`
	AppVersion  string `json:"appVersion,omitempty"`
	// The agent's process (host, boot, pid namespace, pid, start time):
	// a registration left by a dead agent of this host is taken over at
	// once by the next agent of the same node id.
	proc.Holder
	StartedAt time.Time `json:"startedAt"`
}

// Registration keeps an agent's membership alive.
type Registration struct {
	a      *Agency
	cancel context.CancelFunc
	done   chan struct{}
	lease  atomic.Int64
}

// Register adds m to the cluster's membership under a lease of ttl, kept
// alive until Close. etcd's client renews the lease every ttl/3 in a
// goroutine of its own, so a renewal may be up to 2/3 of ttl late before
// the member drops out; the work an agent does never delays it.
//
// A node id held by another live agent is refused. One held by a dead
// agent of this host (its pid gone or reused) is taken over at once, so a
// restarted agent need not wait out its predecessor's lease. If the
// client stops hearing renewals (etcd slow or unreachable), Register
// keeps the lease if etcd still has it, and otherwise registers again,
// logging each failure, until Close.
func (a *Agency) Register(ctx context.Context, m Member, ttl time.Duration, log *slog.Logger) (*Registration, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ttlSec := int64(ttl / time.Second)
	if ttlSec < 2 {
		ttlSec = 2
	}
	m.Holder = proc.Self()
	b, _ := json.Marshal(m)
	key := a.memberKey(m.NodeID)
	r := &Registration{a: a, done: make(chan struct{})}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	ch, err := a.register(rctx, key, string(b), clientv3.LeaseID(r.lease.Load()), ttlSec, log)
	if err != nil {
		cancel()
		return nil, err
	}
	r.lease.Store(int64(ch.lease))
	go func() {
		defer close(r.done)
		for {
			for range ch.c { // drain keep-alive answers until the client gives the lease up
			}
			if rctx.Err() != nil {
				return
			}
			log.Warn("agent stopped hearing its etcd lease's renewals; registering again", "node", m.NodeID)
			for {
				select {
				case <-rctx.Done():
					return
				case <-time.After(time.Second):
				}
				next, err := a.register(rctx, key, string(b), clientv3.LeaseID(r.lease.Load()), ttlSec, log)
				if err == nil {
					ch = next
					r.lease.Store(int64(ch.lease))
					log.Info("agent registered again", "node", m.NodeID, "sameLease", next.kept)
					break
				}
				log.Warn("agent registration failed", "node", m.NodeID, "err", err)
			}
		}
	}()
	return r, nil
}

// keepAlive is a registration's lease and its renewals.
type keepAlive struct {
	c     <-chan *clientv3.LeaseKeepAliveResponse
	lease clientv3.LeaseID
	kept  bool // the previous lease, still alive in etcd, kept
}

// register puts the member key under a lease and keeps it alive. prev,
// when not 0, is the lease the key was under: if etcd still has it and
// the key is still under it, it is kept (no gap in the membership).
func (a *Agency) register(ctx context.Context, key, val string, prev clientv3.LeaseID, ttlSec int64, log *slog.Logger) (keepAlive, error) {
	if prev != 0 {
		if ttl, err := a.cli.TimeToLive(ctx, prev); err == nil && ttl.TTL > 0 {
			if g, err := a.cli.Get(ctx, key); err == nil && len(g.Kvs) == 1 && clientv3.LeaseID(g.Kvs[0].Lease) == prev {
				c, err := a.cli.KeepAlive(ctx, prev)
				return keepAlive{c: c, lease: prev, kept: true}, err
			}
		}
	}
	l, err := a.cli.Grant(ctx, ttlSec)
	if err != nil {
		return keepAlive{}, fmt.Errorf("etcd lease: %w", err)
	}
	put := func(cmp clientv3.Cmp) (*clientv3.TxnResponse, error) {
		return a.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, val, clientv3.WithLease(l.ID))).Else(clientv3.OpGet(key)).Commit()
	}
	resp, err := put(clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	if err == nil && !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		var other Member
		if len(kvs) == 1 && json.Unmarshal(kvs[0].Value, &other) == nil && other.Dead() {
			// Its agent is gone: take the key over, unless it changed since read.
			log.Warn("taking over the registration of a dead agent", "node", other.NodeID, "pid", other.Pid, "host", other.Host)
			a.cli.Revoke(ctx, clientv3.LeaseID(kvs[0].Lease))
			resp, err = put(clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		}
	}
	if err != nil {
		a.cli.Revoke(context.WithoutCancel(ctx), l.ID)
		return keepAlive{}, fmt.Errorf("etcd register: %w", err)
	}
	if !resp.Succeeded {
		a.cli.Revoke(context.WithoutCancel(ctx), l.ID)
		var other Member
		ends := ""
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			json.Unmarshal(kvs[0].Value, &other)
			if ttl, err := a.cli.TimeToLive(ctx, clientv3.LeaseID(kvs[0].Lease)); err == nil && ttl.TTL > 0 {
				ends = fmt.Sprintf("; its lease ends in %ds unless that agent renews it", ttl.TTL)
			}
		}
		return keepAlive{}, fmt.Errorf("%w: node id %q is already registered in cluster %s by a live agent at %s (pid %d on %s)%s",
			snapshot.ErrInvalid, key[len(a.memberKey("")):], a.cluster, other.URL, other.Pid, other.Host, ends)
	}
	c, err := a.cli.KeepAlive(ctx, l.ID)
	if err != nil {
		a.cli.Revoke(context.WithoutCancel(ctx), l.ID)
		return keepAlive{}, fmt.Errorf("etcd keep-alive: %w", err)
	}
	return keepAlive{c: c, lease: l.ID}, nil
}

// Close ends the registration and removes the member key.
func (r *Registration) Close() {
	r.cancel()
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Revoking the lease deletes the member key. Best effort: unrevoked,
	// the lease expires by itself.
	r.a.cli.Revoke(ctx, clientv3.LeaseID(r.lease.Load()))
}
