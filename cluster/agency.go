package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/hotsnap/hotsnap/cluster/ca"
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

// Agency is a connection to etcd for one cluster.
type Agency struct {
	cli     *clientv3.Client
	cluster string
	prefix  string
}

// ErrEtcdUnavailable is returned by Dial when etcd does not answer in time.
var ErrEtcdUnavailable = errors.New("etcd does not answer")

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
	if !ca.ValidName(cluster) {
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
		return nil, fmt.Errorf("%w: %v: %v%s", ErrEtcdUnavailable, eps, err, tlsHint(o))
	} else if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", eps, err)
	}
	a := &Agency{cli: cli, cluster: cluster, prefix: "/hotsnap/" + cluster + "/"}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Get(cctx, a.prefix+"plan"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: %v: %v%s", ErrEtcdUnavailable, eps, err, tlsHint(o))
	}
	return a, nil
}

// tlsHint is what a plain connection to etcd that gets no answer may lack.
func tlsHint(o DialOptions) string {
	if o.TLS != nil {
		return ""
	}
	return " (an etcd with TLS needs --etcd-cacert and https:// endpoints)"
}

// Close ends the connection.
func (a *Agency) Close() error { return a.cli.Close() }

func (a *Agency) memberKey(node string) string { return a.prefix + "members/" + node }

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
