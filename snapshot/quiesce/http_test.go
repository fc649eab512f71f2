package quiesce

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
	ctx := context.Background()
	a := &app{busy: 2}
	srv := httptest.NewServer(a)
	defer srv.Close()
	q := &HTTP{LockURL: srv.URL + "/lock", UnlockURL: srv.URL + "/unlock", Token: "t0ken", DataDir: "/data", Force: true}
	// Busy twice (409, 423 or 503: retry), then locked: three attempts.
	st, err := Acquire(ctx, q, Policy{InitialPeriod: time.Second, MaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := Hold(ctx, q).Resume(); err != nil {
		t.Fatal(err)
	}
	if st.Attempts != 3 || a.locked != 0 || !a.force {
		t.Fatalf("attempts %d, still locked %d, force %v", st.Attempts, a.locked, a.force)
	}
	// A refusal that retrying cannot fix fails at once, with the app's words.
	a.lockStatus = http.StatusForbidden
	st, err = Acquire(ctx, q, Policy{})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "read-only mode") || st.Attempts != 1 {
		t.Fatalf("want ErrFailed with the app's message at once, got %v after %d attempts", err, st.Attempts)
	}
	// A wrong token is a failure too.
	q.Token = "wrong"
	a.lockStatus = 0
	if _, err := Acquire(ctx, q, Policy{}); !errors.Is(err, ErrFailed) {
		t.Fatalf("wrong token: %v", err)
	}
	if a.locked != 0 {
		t.Fatalf("still locked %d", a.locked)
	}
}
