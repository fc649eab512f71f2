package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retry wraps a Store so that transient failures (anything but ErrNotFound
// and a cancelled context) are retried with exponential backoff, a bounded
// number of times. Reads and writes are idempotent, so a retry is safe.
type Retry struct {
	Store
	Attempts int           // total tries; 0 means 5
	Backoff  time.Duration // first pause; doubles each time; 0 means 200ms
}

var _ Store = (*Retry)(nil)

func (r *Retry) do(ctx context.Context, op, key string, fn func() error) error {
	attempts, backoff := r.Attempts, r.Backoff
	if attempts <= 0 {
		attempts = 5
	}
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil || errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return err
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
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
	return fmt.Errorf("%s %s on %s failed after %d attempts: %w", op, key, r.Store, attempts, err)
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
