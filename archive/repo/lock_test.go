package repo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive/store/faulty"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
)

// TestLock_CheckFailsWhenTheLockIsLost: a refresh that failed, a lock not
// refreshed for a TTL (an injected clock), or a lock object someone removed
// each make Check fail, so the holder stops before writing.
func TestLock_CheckFailsWhenTheLockIsLost(t *testing.T) {
	ctx := context.Background()
	st, _ := fsstore.New(t.TempDir())
	r, err := OpenOrInit(ctx, st, nil)
	must(t, err)
	l, err := r.Lock(ctx, LockShared, "upload test")
	must(t, err)
	defer l.Release()
	must(t, l.Check(ctx))
	now := time.Now()
	l.now = func() time.Time { return now.Add(LockTTL) }
	if err := l.Check(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "lapsed") {
		t.Fatalf("a lock not refreshed for a TTL: %v", err)
	}
	l.now = time.Now
	l.write(ctx)
	must(t, l.Check(ctx))
	l.r = r.WithStore(faulty.ReadOnly{Store: st})
	l.write(ctx) // the refresh fails
	l.r = r
	if err := l.Check(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "could not be refreshed") {
		t.Fatalf("after a failed refresh: %v", err)
	}
}
