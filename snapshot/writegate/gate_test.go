package writegate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/fsutil/flock"
)

// TestGate_Protocol takes the snapshot's side by hand: with gate.lock held
// exclusively, Begin waits; write.lock exclusive waits for a running Tx.
func TestGate_Protocol(t *testing.T) {
	dir := t.TempDir()
	g, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tx, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wl, _ := flock.Open(filepath.Join(dir, StateDirName, WriteLockName))
	defer wl.Close()
	if err := wl.TryLock(true); err != flock.ErrWouldBlock {
		t.Fatalf("write.lock exclusive while a transaction runs: %v", err)
	}
	if tx.AbortRequested() {
		t.Fatal("abort requested without a forcing snapshot")
	}
	os.WriteFile(filepath.Join(dir, StateDirName, ForceName), nil, 0o644)
	if !tx.AbortRequested() {
		t.Fatal("AbortRequested does not see the force file")
	}
	tx.End()
	if err := wl.TryLock(true); err != nil {
		t.Fatalf("write.lock after End: %v", err)
	}
	wl.Unlock()

	gl, _ := flock.Open(filepath.Join(dir, StateDirName, GateLockName))
	defer gl.Close()
	gl.TryLock(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := g.Begin(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Begin at a closed gate: %v", err)
	}
	gl.Unlock()
	tx, err = g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tx.End()
}
