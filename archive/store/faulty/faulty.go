// Package faulty is a store wrapper that injects faults, driven by a seed,
// as kopia's faulty storage does: errors before or after a call reached
// the store, stalls, short reads and truncated writes. It is for tests and
// the chaos runs (scripts/chaos.sh), never for use: a binary built with
// the hotsnaptest tag wraps every remote in it when HOTSNAP_FAULTS says so.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
)

// ErrInjected is every error the wrapper makes up.
var ErrInjected = errors.New("injected fault")

// Store wraps a store with faults: each call fails with probability P.
type Store struct {
	store.Store
	P        float64
	Injected atomic.Int64 // faults injected so far
	OnFault  func()       // called at each fault, when set

	mu  sync.Mutex
	rnd *rand.Rand
}

var _ store.Store = (*Store)(nil)

// New wraps st with faults of probability p, from seed.
func New(st store.Store, seed uint64, p float64) *Store {
	return &Store{Store: st, P: p, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// fault draws one of n faults, or -1 for none.
func (f *Store) fault(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rnd.Float64() >= f.P {
		return -1
	}
	f.Injected.Add(1)
	if f.OnFault != nil {
		f.OnFault()
	}
	return f.rnd.IntN(n)
}

// stall waits as a stalled endpoint does, then says so.
func stall(ctx context.Context, op, key string) error {
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return fmt.Errorf("%s %s: %w (%w)", op, key, store.ErrStalled, ErrInjected)
}

func (f *Store) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	switch f.fault(3) {
	case 0:
		return nil, fmt.Errorf("get %s: %w", key, ErrInjected)
	case 1:
		return nil, stall(ctx, "get", key)
	case 2: // read, then the connection broke
		if _, err := f.Store.Get(ctx, key, max); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("get %s: connection reset after the body began: %w", key, ErrInjected)
	}
	return f.Store.Get(ctx, key, max)
}

func (f *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	switch f.fault(3) {
	case 0:
		return nil, fmt.Errorf("get %s: %w", key, ErrInjected)
	case 1:
		return nil, stall(ctx, "get", key)
	case 2: // a short read: the backend contract says it is an error
		return nil, fmt.Errorf("read %s [%d, +%d): got %d bytes: %w", key, off, n, n/2, ErrInjected)
	}
	return f.Store.GetRange(ctx, key, off, n)
}

func (f *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if f.fault(1) == 0 {
		return store.Info{}, fmt.Errorf("stat %s: %w", key, ErrInjected)
	}
	return f.Store.Stat(ctx, key)
}

func (f *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if f.fault(1) == 0 {
		return fmt.Errorf("list %s: %w", prefix, ErrInjected)
	}
	return f.Store.List(ctx, prefix, fn)
}

func (f *Store) Put(ctx context.Context, key string, data []byte) error {
	switch f.fault(3) {
	case 0: // refused before it reached the store
		return fmt.Errorf("put %s: %w", key, ErrInjected)
	case 1: // stored, but the answer was lost
		if err := f.Store.Put(ctx, key, data); err != nil {
			return err
		}
		return fmt.Errorf("put %s: the answer was lost: %w", key, ErrInjected)
	case 2: // a truncated write: the connection broke mid-body. A single
		// PUT (S3, and the fs store's rename) keeps nothing of a body that
		// did not arrive whole, so nothing is stored; a store that kept a
		// part would break every store's contract (Put is whole or none).
		return fmt.Errorf("put %s: connection reset after %d of %d bytes: %w", key, len(data)/2, len(data), ErrInjected)
	}
	return f.Store.Put(ctx, key, data)
}

func (f *Store) Delete(ctx context.Context, key string) error {
	switch f.fault(2) {
	case 0:
		return fmt.Errorf("delete %s: %w", key, ErrInjected)
	case 1:
		if err := f.Store.Delete(ctx, key); err != nil {
			return err
		}
		return fmt.Errorf("delete %s: the answer was lost: %w", key, ErrInjected)
	}
	return f.Store.Delete(ctx, key)
}

// ReadOnly is a store whose puts are refused, as with restore-only
// credentials (reads and deletes pass through).
type ReadOnly struct{ store.Store }

// Put refuses, as S3 does a write without permission.
func (ReadOnly) Put(context.Context, string, []byte) error {
	return errors.New("AccessDenied: read-only credentials")
}
