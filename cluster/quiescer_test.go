package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// TestQuiescerOf: the config is checked once, up front; a quiescer that
// can no longer be built at a lock (its token file gone) fails that lock
// with the reason instead of leaving the agent a nil quiescer.
func TestQuiescerOf(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := snapshot.NewLayout(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := QuiescerOf(ctx, l, quiesce.Config{Mode: "http"}); err == nil {
		t.Fatal("an http quiescer without URLs was accepted")
	}
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := quiesce.Config{Mode: "http", LockURL: "http://127.0.0.1:9/lock", UnlockURL: "http://127.0.0.1:9/unlock", LockTokenFile: token}
	newQ, err := QuiescerOf(ctx, l, c)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(token)
	q, closeQ := newQ(false)
	defer closeQ()
	err = q.Quiesce(ctx, time.Second)
	if !errors.Is(err, quiesce.ErrFailed) || !strings.Contains(err.Error(), "token") {
		t.Fatalf("a quiescer whose token file is gone: %v", err)
	}
}
