package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/snapshot"
)

// What etcd stores for a cluster C (all under /hotsnap/C/):
//
//	members/<node-id>   an agent's registration (Member JSON), under the agent's lease
//	plan                optional user JSON, part of every cluster snapshot's plan
//	expected            the node ids a cluster snapshot must hold (Expected JSON)
//	backup-lock/...     the etcd mutex that serialises cluster backups
//	backup-running      who holds that mutex (BackupInfo JSON), under the holder's lease
//
// Nothing else: snapshots live on the nodes, and a cluster snapshot's plan
// is stored in every node's manifest.

// nameRE is the form of cluster names, node ids, lock ids and job ids.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Agency is a connection to etcd for one cluster.
type Agency struct {
	cli     *clientv3.Client
	cluster string
	prefix  string
}

// DialOptions say how to reach etcd.
type DialOptions struct {
	Endpoints []string // URLs, comma-separated or repeated
	Cluster   string
	// TLS, when set, is used for every connection: the CA that signed
	// etcd's certificate and, for etcd's --client-cert-auth, the client's
	// certificate (with etcd's auth on and no user, its common name is the
	// etcd user).
	TLS *tls.Config
	// Username and Password log in to etcd's auth (over TLS only).
	Username, Password string
	Timeout            time.Duration // 0 means defaults.EtcdDialTimeout
}

// Dial connects to etcd for a cluster and checks that it answers within
// the timeout. Credentials never travel in clear: a user and password need
// TLS and https endpoints, and with TLS every endpoint must be https.
func Dial(ctx context.Context, o DialOptions) (*Agency, error) {
	cluster, timeout := o.Cluster, o.Timeout
	if !nameRE.MatchString(cluster) {
		return nil, fmt.Errorf("%w: cluster name %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, cluster)
	}
	var eps []string
	for _, e := range o.Endpoints {
		for _, p := range strings.Split(e, ",") {
			if p = strings.TrimSpace(p); p != "" {
				eps = append(eps, p)
			}
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%w: no etcd endpoints (--etcd or HOTSNAP_ETCD)", snapshot.ErrInvalid)
	}
	if timeout <= 0 {
		timeout = defaults.EtcdDialTimeout
	}
	if o.Username != "" && o.TLS == nil {
		return nil, fmt.Errorf("%w: an etcd user needs TLS (--etcd-cacert): the password would travel in clear", snapshot.ErrInvalid)
	}
	for _, e := range eps {
		if https := strings.HasPrefix(e, "https://"); https != (o.TLS != nil) {
			return nil, fmt.Errorf("%w: etcd endpoint %s: want https:// with TLS (--etcd-cacert) and http:// without", snapshot.ErrInvalid, e)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: timeout, Logger: zap.NewNop(), Context: ctx,
		TLS: o.TLS, Username: o.Username, Password: o.Password})
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("etcd %v does not answer: %w", eps, err)
	} else if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", eps, err)
	}
	a := &Agency{cli: cli, cluster: cluster, prefix: "/hotsnap/" + cluster + "/"}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Get(cctx, a.prefix+"plan"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %v does not answer: %w", eps, err)
	}
	return a, nil
}

// Close ends the connection.
func (a *Agency) Close() error { return a.cli.Close() }

func (a *Agency) memberKey(node string) string { return a.prefix + "members/" + node }

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

// Plan is the cluster's topology as read at one etcd revision.
type Plan struct {
	Cluster string          `json:"cluster"`
	Nodes   []Member        `json:"nodes"` // sorted by node id
	User    json.RawMessage `json:"user,omitempty"`
	// Expected are the node ids a cluster snapshot must hold, as declared
	// (cluster plan --expect) or recorded by the first cluster create; nil
	// when none is yet.
	Expected []string `json:"expected,omitempty"`
	Revision int64    `json:"-"`
	// mods fingerprints the plan: each key with its create and mod revision.
	mods map[string][2]int64
}

// NodeIDs lists the plan's node ids, sorted.
func (p *Plan) NodeIDs() []string {
	ids := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		ids[i] = n.NodeID
	}
	return ids
}

// Node finds a member by id.
func (p *Plan) Node(id string) (Member, bool) {
	for _, n := range p.Nodes {
		if n.NodeID == id {
			return n, true
		}
	}
	return Member{}, false
}

// ReadPlan reads the membership and the user plan in one transaction, so
// both come from the same revision. A member whose agent ran on this host
// and is gone (its pid, and start time) is no member: its lease is ended
// at once rather than waited out.
func (a *Agency) ReadPlan(ctx context.Context) (*Plan, error) {
	resp, err := a.cli.Txn(ctx).Then(
		clientv3.OpGet(a.prefix+"members/", clientv3.WithPrefix()),
		clientv3.OpGet(a.prefix+"plan"),
		clientv3.OpGet(a.prefix+"expected"),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd: read the plan: %w", err)
	}
	p := &Plan{Cluster: a.cluster, Nodes: []Member{}, Revision: resp.Header.Revision, mods: map[string][2]int64{}}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("etcd: member %s is unreadable: %w", kv.Key, err)
		}
		if m.Dead() {
			// Its agent ran on this host and is gone: not a member, though
			// its lease has not ended yet. End it (best effort).
			a.cli.Revoke(ctx, clientv3.LeaseID(kv.Lease))
			continue
		}
		p.Nodes = append(p.Nodes, m)
		p.mods[string(kv.Key)] = [2]int64{kv.CreateRevision, kv.ModRevision}
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		p.User = json.RawMessage(kvs[0].Value)
		p.mods[string(kvs[0].Key)] = [2]int64{kvs[0].CreateRevision, kvs[0].ModRevision}
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		var e expected
		if err := json.Unmarshal(kvs[0].Value, &e); err != nil || len(e.Nodes) == 0 {
			return nil, fmt.Errorf("etcd: the expected nodes (%s) are unreadable: %v; set them again with cluster plan --expect", kvs[0].Key, err)
		}
		p.Expected = e.Nodes
	}
	sort.Slice(p.Nodes, func(i, j int) bool { return p.Nodes[i].NodeID < p.Nodes[j].NodeID })
	return p, nil
}

// expected is the value of the expected key.
type expected struct {
	Nodes []string  `json:"nodes"`
	Since time.Time `json:"since"`
	By    string    `json:"by"` // "operator" (cluster plan --expect) or "first create"
}

// Missing lists the expected nodes that have no live agent, sorted.
func (p *Plan) Missing() []string {
	var out []string
	for _, n := range p.Expected {
		if _, ok := p.Node(n); !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// SetExpected declares the node ids every cluster snapshot must hold
// (nil forgets them: the next create records its own). With onlyIfNone it
// records them only when none are declared yet, and reports whether it did.
func (a *Agency) SetExpected(ctx context.Context, nodes []string, by string, onlyIfNone bool) (bool, error) {
	key := a.prefix + "expected"
	if nodes == nil {
		_, err := a.cli.Delete(ctx, key)
		return err == nil, err
	}
	for _, n := range nodes {
		if !nameRE.MatchString(n) {
			return false, fmt.Errorf("%w: node id %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, n)
		}
	}
	nodes = slices.Sorted(slices.Values(nodes))
	b, _ := json.Marshal(expected{Nodes: slices.Compact(nodes), Since: time.Now().UTC(), By: by})
	if !onlyIfNone {
		_, err := a.cli.Put(ctx, key, string(b))
		return err == nil, err
	}
	resp, err := a.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Changes re-reads the plan and describes how it differs from p (nil when
// it is the same: same keys, none rewritten).
func (a *Agency) Changes(ctx context.Context, p *Plan) ([]string, error) {
	now, err := a.ReadPlan(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	name := func(k string) string {
		if k == a.prefix+"plan" {
			return "the user plan"
		}
		return "node " + strings.TrimPrefix(k, a.prefix+"members/")
	}
	for k, v := range p.mods {
		w, ok := now.mods[k]
		switch {
		case !ok:
			out = append(out, name(k)+" left")
		case w != v:
			out = append(out, name(k)+" changed")
		}
	}
	for k := range now.mods {
		if _, ok := p.mods[k]; !ok {
			out = append(out, name(k)+" joined")
		}
	}
	sort.Strings(out)
	return out, nil
}

// SetPlan stores user JSON as the cluster's plan (nil deletes it).
func (a *Agency) SetPlan(ctx context.Context, user json.RawMessage) error {
	if user == nil {
		_, err := a.cli.Delete(ctx, a.prefix+"plan")
		return err
	}
	if !json.Valid(user) {
		return fmt.Errorf("%w: the plan is not valid JSON", snapshot.ErrInvalid)
	}
	_, err := a.cli.Put(ctx, a.prefix+"plan", string(user))
	return err
}

// RunningBackup says who runs a cluster backup.
type RunningBackup struct {
	ID string `json:"id"`
	proc.Holder
	StartedAt time.Time `json:"startedAt"`
}

// ErrBackupRunning is returned when another cluster backup holds the agency
// lock for longer than the wait.
var ErrBackupRunning = errs.New(errs.LockTimeout, "another cluster backup is running")

// LockBackups takes the cluster's backup mutex in etcd, waiting at most
// wait. The mutex lives under a session lease of ttl: if the holder dies,
// etcd frees it after ttl, and at once if the holder ran on this host and
// its process is gone. The returned function releases it.
func (a *Agency) LockBackups(ctx context.Context, info RunningBackup, wait, ttl time.Duration) (func(), error) {
	ttlSec := int(ttl / time.Second)
	if ttlSec < 2 {
		ttlSec = 2
	}
	if r, err := a.cli.Get(ctx, a.prefix+"backup-running"); err == nil && len(r.Kvs) == 1 {
		var who RunningBackup
		if json.Unmarshal(r.Kvs[0].Value, &who) == nil && who.Dead() {
			// Its coordinator is gone: end its session, which frees the mutex.
			a.cli.Revoke(ctx, clientv3.LeaseID(r.Kvs[0].Lease))
		}
	}
	s, err := concurrency.NewSession(a.cli, concurrency.WithTTL(ttlSec), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("etcd session: %w", err)
	}
	mu := concurrency.NewMutex(s, a.prefix+"backup-lock")
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := mu.Lock(wctx); err != nil {
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var who RunningBackup
		if r, gerr := a.cli.Get(ctx, a.prefix+"backup-running"); gerr == nil && len(r.Kvs) > 0 {
			json.Unmarshal(r.Kvs[0].Value, &who)
		}
		return nil, fmt.Errorf("%w (%w): backup %s by pid %d on %s since %s holds the agency lock of cluster %s; waited %s",
			ErrBackupRunning, snapshot.ErrLockTimeout, who.ID, who.Pid, who.Host, who.StartedAt.Format(time.RFC3339), a.cluster, wait)
	}
	b, _ := json.Marshal(info)
	if _, err := a.cli.Put(ctx, a.prefix+"backup-running", string(b), clientv3.WithLease(s.Lease())); err != nil {
		mu.Unlock(context.WithoutCancel(ctx))
		s.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.cli.Delete(uctx, a.prefix+"backup-running")
		mu.Unlock(uctx)
		s.Close()
	}, nil
}

// Hostname is this machine's name, for registrations and the agency lock's
// holder ("" when unknown).
func Hostname() string {
	h, _ := os.Hostname()
	return h
}
