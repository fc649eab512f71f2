package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/proc"
)

// ErrLocked is returned when the archive holds a live lock that conflicts
// (gc while an upload runs, an upload while gc runs), or when a lock held
// could not be kept (its refresh failed: the holder must stop writing).
var ErrLocked = errs.New(errs.LockTimeout, "archive is locked")

// Lock kinds.
const (
	LockShared    = "shared"    // upload, download, forget
	LockExclusive = "exclusive" // gc
)

// LockTTL is how long a lock lives unless refreshed; holders refresh it
// every LockTTL/3, so only a dead holder's lock expires.
var LockTTL = defaults.ArchiveLockTTL

// LockInfo is the content of locks/<id>. Expires is for people: whether a
// lock is live is measured on the store's own clock (the lock object's
// modification time against that of a lock just written), never by
// comparing one host's clock with another's.
type LockInfo struct {
	Kind string `json:"kind"`
	Op   string `json:"op"`
	// The holder's process (host, boot, pid namespace, pid, start time):
	// a lock of this host whose holder no longer runs is stale at once.
	proc.Holder
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// age is how old the lock object is, by the store's clock.
	age time.Duration
}

func (l LockInfo) String() string {
	state := fmt.Sprintf("expires in %s unless refreshed", max(LockTTL-l.age, 0).Round(time.Second))
	switch {
	case l.Dead():
		state = "its process is gone: stale"
	case l.age >= LockTTL:
		state = "expired: stale"
	}
	return fmt.Sprintf("%s lock of %s by pid %d on %s since %s (refreshed %s ago; %s)", l.Kind, l.Op, l.Pid, l.Host,
		l.Created.Format(time.RFC3339), l.age.Round(time.Second), state)
}

// stale reports whether the lock's holder is gone: it ran on this host
// and its process no longer runs, or it has not refreshed the lock for a
// whole TTL (by the store's clock).
func (l LockInfo) stale() bool { return l.age >= LockTTL || l.Dead() }

// ArchiveLock is a held lock; Release it when done, Check it before
// committing anything.
type ArchiveLock struct {
	r    *Repo
	key  string
	info LockInfo
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	err    error     // a refresh that failed (sticky)
	lastOK time.Time // the last write that succeeded (this host's monotonic clock)
	now    func() time.Time
}

// Lock takes a lock of kind for op. A shared lock conflicts with a live
// exclusive one, an exclusive lock with any live lock. Each side writes its
// lock, then lists: at least one of two racing lockers sees the other and
// backs off. Expired locks are ignored (gc removes them: see BreakStale).
func (r *Repo) Lock(ctx context.Context, kind, op string) (*ArchiveLock, error) {
	l, _, err := r.LockOrBreak(ctx, kind, op, false)
	return l, err
}

// lock is Lock; with breakStale, expired locks of others are removed (and
// described) before the Conflict check.
func (r *Repo) LockOrBreak(ctx context.Context, kind, op string, breakStale bool) (*ArchiveLock, []string, error) {
	if store.IsReadOnly(r.st) {
		// A view of the past (--as-of) reads versions that no later
		// command changes: there is nothing to lock, and nothing may
		// be written.
		if kind == LockExclusive {
			return nil, nil, fmt.Errorf("%s: %w", op, store.ErrReadOnly)
		}
		return nil, nil, nil
	}
	var id [8]byte
	rand.Read(id[:])
	now := time.Now().UTC()
	l := &ArchiveLock{r: r, key: "locks/" + hex.EncodeToString(id[:]), now: time.Now,
		info: LockInfo{Kind: kind, Op: op, Holder: proc.Self(), Created: now, Expires: now.Add(LockTTL)}}
	if err := l.write(ctx); err != nil {
		return nil, nil, fmt.Errorf("write lock: %w", err)
	}
	fail := func(err error) (*ArchiveLock, []string, error) {
		r.st.Delete(context.WithoutCancel(ctx), l.key)
		return nil, nil, err
	}
	all, err := r.locks(ctx, l.key)
	if err != nil {
		return fail(err)
	}
	var stale []string
	for k, o := range all {
		if k == l.key {
			continue
		}
		if o.stale() {
			// A dead holder of this host is removed by anyone; an expired
			// lock of another host only by gc (breakStale) or unlock.
			if breakStale || o.Dead() {
				if err := r.st.Delete(ctx, k); err != nil {
					return fail(err)
				}
				stale = append(stale, "removed stale "+strings.TrimSpace(o.String()))
			}
			continue
		}
		if kind == LockExclusive || o.Kind == LockExclusive {
			return fail(r.Conflict(o))
		}
	}
	l.stop = make(chan struct{})
	l.wg.Add(1)
	go l.refresh()
	return l, stale, nil
}

func (l *ArchiveLock) write(ctx context.Context) error {
	b, _ := json.Marshal(l.info)
	err := l.r.st.Put(ctx, l.key, l.r.enc.seal(nil, b))
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.err == nil {
			l.err = err
		}
		return err
	}
	l.lastOK = l.now()
	return nil
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

// Key is the lock object's key in the store.
func (l *ArchiveLock) Key() string { return l.key }

// Check says whether the lock is still held: no refresh failed, the last
// good one is younger than the TTL, and the lock object is still there
// (nobody broke it as stale). Upload and gc check right before they write
// an index or a manifest, so a lock that lapsed never covers a write.
func (l *ArchiveLock) Check(ctx context.Context) error {
	if l == nil { // a read-only view's (Repo.lock)
		return nil
	}
	l.mu.Lock()
	err, last := l.err, l.lastOK
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: this command's %s lock could not be refreshed (%v); stopping before it writes anything more", ErrLocked, l.info.Kind, err)
	}
	if age := l.now().Sub(last); age >= LockTTL {
		return fmt.Errorf("%w: this command's %s lock was last refreshed %s ago and may have lapsed; stopping before it writes anything more", ErrLocked, l.info.Kind, age.Round(time.Second))
	}
	if _, err := l.r.st.Stat(ctx, l.key); err != nil {
		return fmt.Errorf("%w: this command's %s lock %s is gone (%v); stopping before it writes anything more", ErrLocked, l.info.Kind, l.key, err)
	}
	return nil
}

// Release removes the lock, spending at most defaults.ReleaseTimeout on
// it: against a dead endpoint the lock stays behind, stale at once for
// commands of this host (its process is gone) and expiring for others.
func (l *ArchiveLock) Release() error {
	if l == nil {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), defaults.ReleaseTimeout)
	defer cancel()
	return l.r.st.Delete(ctx, l.key)
}

// Conflict is the error for a live lock o that a lock of ours conflicts
// with: who holds it, since when, when it expires, and how to clear it.
func (r *Repo) Conflict(o LockInfo) error {
	return fmt.Errorf("%w: %s holds a %s; if that holder is gone, `hotsnap archive unlock --remote %s` removes stale locks (with --force, any lock)",
		ErrLocked, r.st, o, r.st)
}

// Unlock removes the archive's stale locks (their holder of this host is
// gone, or they expired) or, with force, every lock, and Describes each
// one removed; the live ones kept are described in kept.
func (r *Repo) Unlock(ctx context.Context, force bool) (removed, kept []string, err error) {
	all, err := r.locks(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	removed, kept = []string{}, []string{}
	for k, o := range all {
		if !force && !o.stale() {
			kept = append(kept, o.String())
			continue
		}
		if err := r.st.Delete(ctx, k); err != nil {
			return removed, kept, err
		}
		removed = append(removed, o.String())
	}
	sort.Strings(removed)
	sort.Strings(kept)
	return removed, kept, nil
}

// locks lists every lock object with its content and its age by the
// store's clock: the age of each against the newest of them, ref (a lock
// just written) when given. Unreadable ones are reported as live exclusive
// locks: nothing is assumed safe.
func (r *Repo) locks(ctx context.Context, ref string) (map[string]LockInfo, error) {
	var infos []store.Info
	if err := r.st.List(ctx, "locks/", func(i store.Info) error { infos = append(infos, i); return nil }); err != nil {
		return nil, err
	}
	var now time.Time
	for _, i := range infos {
		if i.Key == ref || (ref == "" && i.ModTime.After(now)) {
			now = i.ModTime
		}
	}
	if now.IsZero() && ref != "" {
		// Our own lock is not listed yet (eventual listing): ask for it.
		i, err := r.st.Stat(ctx, ref)
		if err != nil {
			return nil, err
		}
		now = i.ModTime
	}
	out := map[string]LockInfo{}
	for _, i := range infos {
		b, err := r.st.Get(ctx, i.Key, maxLockObject)
		if errors.Is(err, store.ErrNotFound) {
			continue // released meanwhile
		}
		var li LockInfo
		var plain []byte
		if err == nil {
			plain, err = r.enc.open(b)
		}
		if err != nil || json.Unmarshal(plain, &li) != nil || (li.Kind != LockShared && li.Kind != LockExclusive) {
			li = LockInfo{Kind: LockExclusive, Op: "unreadable lock " + i.Key}
		}
		li.age = max(now.Sub(i.ModTime), 0)
		out[i.Key] = li
	}
	return out, nil
}

// LiveLocks lists the live locks but except (a download that could not
// write its own lock measures ages against the newest lock).
func (r *Repo) LiveLocks(ctx context.Context, except string) ([]LockInfo, error) {
	all, err := r.locks(ctx, "")
	if err != nil {
		return nil, err
	}
	var live []LockInfo
	for k, li := range all {
		if k != except && !li.stale() {
			live = append(live, li)
		}
	}
	return live, nil
}
