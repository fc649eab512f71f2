package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// countingQuiescer always stops writes at once and counts what it holds.
type countingQuiescer struct{ held atomic.Int32 }

func (q *countingQuiescer) Quiesce(context.Context, time.Duration) error { q.held.Add(1); return nil }
func (q *countingQuiescer) Resume(context.Context) error                 { q.held.Add(-1); return nil }

// leaseAgent is an agent on synctest's clock, called through its handler
// without a network.
func leaseAgent(t *testing.T) (*Agent, *countingQuiescer, func(method, path string, body any) *httptest.ResponseRecorder) {
	dir := t.TempDir()
	os.WriteFile(dir+"/data", []byte("x"), 0o644)
	l, err := snapshot.NewLayout(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	q := &countingQuiescer{}
	a, err := NewAgent(AgentConfig{Layout: l, NodeID: "n1", Token: testToken,
		NewQuiescer: func(bool) (quiesce.Quiescer, func()) { return q, func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler()
	call := func(method, path string, body any) *httptest.ResponseRecorder {
		b, _ := json.Marshal(body)
		req := httptest.NewRequest(method, path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	return a, q, call
}

// TestLease_EndsExactly: a lock lasts exactly its lease from the last
// renewal, not a moment less, then the agent resumes writes by itself.
func TestLease_EndsExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, q, call := leaseAgent(t)
		lease := time.Second
		if w := call("POST", "/v1/lock", LockRequest{LockID: "l1", TimeoutMs: 100, LeaseMs: lease.Milliseconds()}); w.Code != http.StatusOK || q.held.Load() != 1 {
			t.Fatalf("lock: %d %s", w.Code, w.Body)
		}
		for i := range 3 { // renewed before each lease ends: held throughout
			time.Sleep(lease - time.Millisecond)
			synctest.Wait()
			if q.held.Load() != 1 {
				t.Fatal("released 1 ms before the lease ended")
			}
			if w := call("POST", "/v1/lock", LockRequest{LockID: "l1", Renew: true, TimeoutMs: 1, LeaseMs: lease.Milliseconds()}); w.Code != http.StatusOK {
				t.Fatalf("renew %d: %d %s", i, w.Code, w.Body)
			}
		}
		time.Sleep(lease - time.Nanosecond)
		synctest.Wait()
		if q.held.Load() != 1 {
			t.Fatal("released before the lease ended")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if q.held.Load() != 0 {
			t.Fatal("still held when the lease ended")
		}
		var u UnlockResponse
		w := call("POST", "/v1/unlock", UnlockRequest{LockID: "l1"})
		json.Unmarshal(w.Body.Bytes(), &u)
		if u.Released || u.Outcome != "expired" {
			t.Fatalf("unlock after the lease: %s", w.Body)
		}
		// A renewal after the end is refused, and takes nothing.
		if w := call("POST", "/v1/lock", LockRequest{LockID: "l1", Renew: true, TimeoutMs: 1, LeaseMs: 1000}); w.Code != http.StatusNotFound || q.held.Load() != 0 {
			t.Fatalf("late renewal: %d %s", w.Code, w.Body)
		}
	})
}

// TestPrepared_ExpiresExactly: a prepared create lives exactly its ttl
// from the last renewal, then it is aborted and its id is free again.
func TestPrepared_ExpiresExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, call := leaseAgent(t)
		id := "2026-01-01T00.00.00Z_p"
		ttl := 2 * time.Second
		if w := call("POST", "/v1/snapshots/"+id+"/prepare", PrepareRequest{TTLMs: ttl.Milliseconds()}); w.Code != http.StatusOK {
			t.Fatalf("prepare: %d %s", w.Code, w.Body)
		}
		prepared := func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.prep[id] != nil }
		time.Sleep(ttl - time.Millisecond)
		if w := call("POST", "/v1/snapshots/"+id+"/prepare", PrepareRequest{TTLMs: ttl.Milliseconds(), Renew: true}); w.Code != http.StatusOK {
			t.Fatalf("renew: %d %s", w.Code, w.Body)
		}
		time.Sleep(ttl - time.Nanosecond)
		synctest.Wait()
		if !prepared() {
			t.Fatal("a renewed prepared create expired early")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if prepared() {
			t.Fatal("a prepared create outlived its ttl")
		}
		if w := call("POST", "/v1/snapshots/"+id+"/prepare", PrepareRequest{TTLMs: 1000}); w.Code != http.StatusOK {
			t.Fatalf("prepare again after expiry: %d %s", w.Code, w.Body)
		}
		a.Close()
	})
}
