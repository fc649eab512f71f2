package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
)

// Retry wraps a Store so that transient failures are retried with
// exponential backoff, a bounded number of times: the one retry policy of
// every remote call (backends do not retry on their own). Not retried:
// ErrNotFound, a cancelled context, errors marked Permanent (credentials,
// names), errors of the local disk that waiting cannot mend (no space,
// over quota, read-only, permission denied), and a call that stalled
// twice (ErrStalled: the endpoint is not answering). Reads and writes are
// idempotent, so a retry is safe.
type Retry struct {
	Store
	Attempts int           // total tries; 0 means defaults.RemoteAttempts
	Backoff  time.Duration // first pause; doubles each time; 0 means defaults.RemoteBackoff
}

// ErrStalled is returned by a backend for a call that moved no byte for
// its I/O timeout and was cancelled. It is transient (retried once).
var ErrStalled = errors.New("remote unavailable: timed out")

// ErrUnavailable marks a call that could not reach the endpoint at all
// (connection refused, no route, DNS). It is transient.
var ErrUnavailable = errors.New("remote unavailable")

// hopeless reports errors no retry can mend: a full, read-only or
// forbidden local disk.
func hopeless(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var _ Store = (*Retry)(nil)

func (r *Retry) do(ctx context.Context, op, key string, fn func() error) error {
	attempts, backoff := r.Attempts, r.Backoff
	if attempts <= 0 {
		attempts = defaults.RemoteAttempts
	}
	if backoff <= 0 {
		backoff = defaults.RemoteBackoff
	}
	var err error
	stalls, tries := 0, 0
	for i := 0; i < attempts; i++ {
		tries++
		if err = fn(); err == nil || errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return err
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if hopeless(err) {
			return err
		}
		if errors.Is(err, ErrRetained) || errors.Is(err, ErrDenied) || errors.Is(err, ErrReadOnly) {
			return err
		}
		if errors.Is(err, ErrStalled) {
			if stalls++; stalls == 2 {
				break
			}
		}
		if i == attempts-1 {
			break
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff *= 2
	}
	return fmt.Errorf("%s %s on %s failed after %d attempts: %w", op, key, r.Store, tries, err)
}

// Do runs fn, a call to st, under the retry policy of Retry with its
// defaults: for calls a backend makes outside the Store interface.
func Do(ctx context.Context, st Store, op, key string, fn func() error) error {
	return (&Retry{Store: st}).do(ctx, op, key, fn)
}

func (r *Retry) Get(ctx context.Context, key string, max int64) (b []byte, err error) {
	err = r.do(ctx, "get", key, func() error {
		if b, err = r.Store.Get(ctx, key, max); errors.Is(err, ErrTooLarge) {
			return permanent{err}
		}
		return err
	})
	return b, err
}

func (r *Retry) GetRange(ctx context.Context, key string, off, n int64) (b []byte, err error) {
	err = r.do(ctx, "get", key, func() error { b, err = r.Store.GetRange(ctx, key, off, n); return err })
	return b, err
}

func (r *Retry) Stat(ctx context.Context, key string) (i Info, err error) {
	err = r.do(ctx, "stat", key, func() error { i, err = r.Store.Stat(ctx, key); return err })
	return i, err
}

func (r *Retry) Put(ctx context.Context, key string, data []byte) error {
	return r.do(ctx, "put", key, func() error { return r.Store.Put(ctx, key, data) })
}

func (r *Retry) Delete(ctx context.Context, key string) error {
	return r.do(ctx, "delete", key, func() error { return r.Store.Delete(ctx, key) })
}

// List is retried only as a whole and only before fn has seen a key, so fn
// never sees a key twice.
func (r *Retry) List(ctx context.Context, prefix string, fn func(Info) error) error {
	seen := false
	return r.do(ctx, "list", prefix, func() error {
		if seen {
			return nil
		}
		err := r.Store.List(ctx, prefix, func(i Info) error { seen = true; return fn(i) })
		if err != nil && seen {
			return permanent{err}
		}
		return err
	})
}

// permanent marks an error that must not be retried.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying (bad credentials, a bad bucket
// name): Retry returns it at once.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Unwrap returns the backend below any Retry wrappers, for optional
// interfaces a backend may have.
func Unwrap(s Store) Store {
	for {
		r, ok := s.(*Retry)
		if !ok {
			return s
		}
		s = r.Store
	}
}
