package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// app is a real HTTP server on loopback standing in for an application's
// lock API: busy for the first `busy` lock requests, then it locks.
type app struct {
	mu              sync.Mutex
	busy, locks     int
	locked, unlocks int
	force           bool
	lockStatus      int
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer t0ken" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	var body struct {
		TimeoutMs int64 `json:"timeoutMs"`
		Force     bool  `json:"force"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	switch r.URL.Path {
	case "/lock":
		a.locks++
		a.force = body.Force
		if a.lockStatus != 0 {
			http.Error(w, "read-only mode", a.lockStatus)
			return
		}
		if a.locks <= a.busy {
			http.Error(w, "long transaction running", http.StatusServiceUnavailable)
			return
		}
		a.locked++
	case "/unlock":
		a.unlocks++
		if a.locked > 0 {
			a.locked--
		}
	}
}

func TestHTTPQuiescer(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	a := &app{busy: 2}
	srv := httptest.NewServer(a)
	defer srv.Close()
	q := &HTTPQuiescer{LockURL: srv.URL + "/lock", UnlockURL: srv.URL + "/unlock", Token: "t0ken", DataDir: dir, Force: true}
	res, err := Create(context.Background(), l, CreateOptions{Quiescer: q, Lock: LockPolicy{InitialPeriod: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if res.LockAttempts != 3 || a.locked != 0 || !a.force {
		t.Fatalf("attempts %d, still locked %d, force %v", res.LockAttempts, a.locked, a.force)
	}
	// A refusal that retrying cannot fix fails at once, with the app's words.
	a.lockStatus = http.StatusForbidden
	_, err = Create(context.Background(), l, CreateOptions{Quiescer: q})
	if !errors.Is(err, ErrLockFailed) || !strings.Contains(err.Error(), "read-only mode") {
		t.Fatalf("want ErrLockFailed with the app's message, got %v", err)
	}
	// A wrong token is a failure too.
	q.Token = "wrong"
	a.lockStatus = 0
	if _, err := Create(context.Background(), l, CreateOptions{Quiescer: q}); !errors.Is(err, ErrLockFailed) {
		t.Fatalf("wrong token: %v", err)
	}
	assertClean(t, l)
}
