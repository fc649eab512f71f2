package flock

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestFile_ConflictsInOneProcess: two Files on one path are two open
// file descriptions, so they conflict even inside one process.
func TestFile_ConflictsInOneProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, _ := Open(p)
	b, _ := Open(p)
	defer a.Close()
	defer b.Close()
	if err := a.TryLock(false); err != nil {
		t.Fatal(err)
	}
	if err := b.TryLock(false); err != nil {
		t.Fatalf("two shared locks must coexist: %v", err)
	}
	if err := a.TryLock(true); err != ErrWouldBlock {
		t.Fatalf("exclusive while another holds shared: %v", err)
	}
	b.Unlock()
	if err := a.TryLock(true); err != nil {
		t.Fatalf("exclusive once alone: %v", err)
	}
	start := time.Now()
	if err := b.LockUntil(context.Background(), false, time.Now().Add(50*time.Millisecond)); err != ErrWouldBlock {
		t.Fatalf("LockUntil past its deadline: %v", err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("LockUntil gave up before its deadline")
	}
	a.Unlock()
	if err := b.LockUntil(context.Background(), true, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
}
