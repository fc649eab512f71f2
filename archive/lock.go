package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
)

// ErrLocked is returned when the archive holds a live lock that conflicts
// (gc while an upload runs, an upload while gc runs).
var ErrLocked = errors.New("archive is locked")

// Lock kinds.
const (
	LockShared    = "shared"    // upload, download, forget
	LockExclusive = "exclusive" // gc
)

// LockTTL is how long a lock lives unless refreshed; holders refresh it
// every LockTTL/3, so only a dead holder's lock expires.
var LockTTL = 10 * time.Minute

// LockInfo is the content of locks/<id>.
type LockInfo struct {
	Kind    string    `json:"kind"`
	Op      string    `json:"op"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("%s lock of %s by %s pid %d since %s (expires %s)", l.Kind, l.Op, l.Host, l.PID,
		l.Created.Format(time.RFC3339), l.Expires.Format(time.RFC3339))
}

// ArchiveLock is a held lock; Release it when done.
type ArchiveLock struct {
	r    *Repo
	key  string
	info LockInfo
	stop chan struct{}
	wg   sync.WaitGroup
}

// Lock takes a lock of kind for op. A shared lock conflicts with a live
// exclusive one, an exclusive lock with any live lock. Each side writes its
// lock, then lists: at least one of two racing lockers sees the other and
// backs off. Expired locks are ignored (gc removes them: see BreakStale).
func (r *Repo) Lock(ctx context.Context, kind, op string) (*ArchiveLock, error) {
	var id [8]byte
	rand.Read(id[:])
	host, _ := os.Hostname()
	now := time.Now().UTC()
	l := &ArchiveLock{r: r, key: "locks/" + hex.EncodeToString(id[:]),
		info: LockInfo{Kind: kind, Op: op, Host: host, PID: os.Getpid(), Created: now, Expires: now.Add(LockTTL)}}
	if err := l.write(ctx); err != nil {
		return nil, fmt.Errorf("write lock: %w", err)
	}
	others, err := r.liveLocks(ctx, l.key)
	if err != nil {
		r.st.Delete(context.WithoutCancel(ctx), l.key)
		return nil, err
	}
	for _, o := range others {
		if kind == LockExclusive || o.Kind == LockExclusive {
			r.st.Delete(context.WithoutCancel(ctx), l.key)
			return nil, fmt.Errorf("%w: %s holds a %s", ErrLocked, r.st, o)
		}
	}
	l.stop = make(chan struct{})
	l.wg.Add(1)
	go l.refresh()
	return l, nil
}

func (l *ArchiveLock) write(ctx context.Context) error {
	b, _ := json.Marshal(l.info)
	return l.r.st.Put(ctx, l.key, l.r.enc.seal(nil, b))
}

func (l *ArchiveLock) refresh() {
	defer l.wg.Done()
	t := time.NewTicker(LockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.info.Expires = time.Now().UTC().Add(LockTTL)
			l.write(context.Background())
		}
	}
}

// Release removes the lock.
func (l *ArchiveLock) Release() error {
	if l == nil {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	return l.r.st.Delete(context.Background(), l.key)
}

// locks lists every lock object with its content (unreadable ones are
// reported as live exclusive locks: nothing is assumed safe).
func (r *Repo) locks(ctx context.Context) (map[string]LockInfo, error) {
	out := map[string]LockInfo{}
	var keys []string
	if err := r.st.List(ctx, "locks/", func(k string, _ int64) error { keys = append(keys, k); return nil }); err != nil {
		return nil, err
	}
	for _, k := range keys {
		b, err := r.st.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, err
		}
		var li LockInfo
		plain, oerr := r.enc.open(b)
		if oerr != nil || json.Unmarshal(plain, &li) != nil || (li.Kind != LockShared && li.Kind != LockExclusive) {
			li = LockInfo{Kind: LockExclusive, Op: "unreadable lock " + k, Expires: time.Now().Add(time.Hour)}
		}
		out[k] = li
	}
	return out, nil
}

func (r *Repo) liveLocks(ctx context.Context, except string) ([]LockInfo, error) {
	all, err := r.locks(ctx)
	if err != nil {
		return nil, err
	}
	var live []LockInfo
	now := time.Now()
	for k, li := range all {
		if k != except && li.Expires.After(now) {
			live = append(live, li)
		}
	}
	return live, nil
}

// BreakStale removes expired locks (their holders died) and describes them.
func (r *Repo) BreakStale(ctx context.Context) ([]string, error) {
	all, err := r.locks(ctx)
	if err != nil {
		return nil, err
	}
	var broken []string
	now := time.Now()
	for k, li := range all {
		if !li.Expires.After(now) {
			if err := r.st.Delete(ctx, k); err != nil {
				return broken, err
			}
			broken = append(broken, "removed stale "+strings.TrimSpace(li.String()))
		}
	}
	return broken, nil
}
