package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Handler is the agent's HTTP API.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		a.reply(w, http.StatusOK, map[string]any{"ok": true, "node": a.cfg.NodeID})
	})
	mux.HandleFunc("GET /metrics", a.auth(a.m.handler().ServeHTTP))
	mux.HandleFunc("GET /v1/info", a.auth(a.handleInfo))
	mux.HandleFunc("POST /v1/lock", a.auth(a.handleLock))
	mux.HandleFunc("POST /v1/unlock", a.auth(a.handleUnlock))
	mux.HandleFunc("GET /v1/snapshots", a.auth(a.handleList))
	mux.HandleFunc("POST /v1/snapshots", a.auth(a.handleCreate))
	mux.HandleFunc("DELETE /v1/snapshots/{id}", a.auth(a.handleDelete))
	mux.HandleFunc("POST /v1/snapshots/{id}/prepare", a.auth(a.handlePrepare))
	mux.HandleFunc("DELETE /v1/snapshots/{id}/prepare", a.auth(a.handleUnprepare))
	mux.HandleFunc("POST /v1/snapshots/{id}/{op}", a.auth(a.handleJob))
	mux.HandleFunc("POST /v1/revert", a.auth(a.handleRevert))
	mux.HandleFunc("POST /v1/archive/init", a.auth(a.handleArchiveInit))
	mux.HandleFunc("GET /v1/jobs", a.auth(a.handleJobs))
	mux.HandleFunc("GET /v1/jobs/{job}", a.auth(a.handleGetJob))
	mux.HandleFunc("POST /v1/jobs/{job}/abort", a.auth(a.handleAbort))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, errs.NotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// auth checks the bearer token in constant time (of equal-length digests,
// so not even the token's length leaks).
func (a *Agent) auth(h http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte("Bearer " + a.cfg.Token))
	return func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			a.m.unauthorized.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotsnap"`)
			a.failErr(w, ErrUnauthorized)
			return
		}
		h(w, r)
	}
}

func (a *Agent) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *Agent) fail(w http.ResponseWriter, k errs.Kind, msg string) {
	a.reply(w, k.HTTPStatus(), errorBody{Error: RemoteError{Node: a.cfg.NodeID, Kind: k.String(), Message: msg}})
}

// failErr answers an error with the status of its kind.
func (a *Agent) failErr(w http.ResponseWriter, err error) {
	a.fail(w, errs.Of(err), err.Error())
}

// decode reads a JSON body strictly (unknown fields are refused).
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return fmt.Errorf("%w: request body: %v", snapshot.ErrInvalid, err)
	}
	return nil
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
