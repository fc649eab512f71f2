package cluster

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Handler is the agent's HTTP API. Every route but /healthz needs a
// caller's identity (auth.go); readers may list, read jobs and metrics,
// operators may do everything.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		a.reply(w, http.StatusOK, map[string]any{"ok": true, "node": a.cfg.NodeID})
	})
	metrics := a.m.handler()
	mux.HandleFunc("GET /metrics", a.auth(toRead, plain(metrics.ServeHTTP)))
	mux.HandleFunc("GET /v1/info", a.auth(toRead, plain(a.handleInfo)))
	mux.HandleFunc("GET /v1/snapshots", a.auth(toRead, plain(a.handleList)))
	mux.HandleFunc("GET /v1/jobs", a.auth(toRead, plain(a.handleJobs)))
	mux.HandleFunc("GET /v1/jobs/{job}", a.auth(toRead, plain(a.handleGetJob)))
	mux.HandleFunc("POST /v1/lock", a.auth(toOperate, plain(a.handleLock)))
	mux.HandleFunc("POST /v1/unlock", a.auth(toOperate, plain(a.handleUnlock)))
	mux.HandleFunc("POST /v1/snapshots", a.auth(toOperate, plain(a.handleCreate)))
	mux.HandleFunc("DELETE /v1/snapshots/{id}", a.auth(toOperate, plain(a.handleDelete)))
	mux.HandleFunc("POST /v1/snapshots/{id}/prepare", a.auth(toOperate, plain(a.handlePrepare)))
	mux.HandleFunc("DELETE /v1/snapshots/{id}/prepare", a.auth(toOperate, plain(a.handleUnprepare)))
	mux.HandleFunc("POST /v1/snapshots/{id}/{op}", a.auth(toOperate, a.handleJob))
	mux.HandleFunc("POST /v1/revert", a.auth(toOperate, plain(a.handleRevert)))
	mux.HandleFunc("POST /v1/app", a.auth(toOperate, plain(a.handleApp)))
	mux.HandleFunc("POST /v1/archive/init", a.auth(toOperate, plain(a.handleArchiveInit)))
	mux.HandleFunc("POST /v1/jobs/{job}/abort", a.auth(toOperate, plain(a.handleAbort)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, errs.NotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// ServerLimits bound what clients may hold of an agent's server; zero
// fields take the defaults (package defaults).
type ServerLimits struct {
	// ReadHeaderTimeout bounds a TLS handshake and a request's headers;
	// ReadTimeout the whole request; WriteTimeout the whole exchange (a
	// lock waits at most 10 minutes, a create captures within it);
	// IdleTimeout a kept-alive connection between requests.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns caps the connections served at once; more wait to be
	// accepted until the timeouts shed others.
	MaxConns int
	// MaxHeaderBytes caps a request's headers (bodies: 1 MiB, decode).
	MaxHeaderBytes int
}

func (l ServerLimits) withDefaults() ServerLimits {
	or := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	or(&l.ReadHeaderTimeout, defaults.AgentReadHeaderTimeout)
	or(&l.ReadTimeout, defaults.AgentReadTimeout)
	or(&l.WriteTimeout, defaults.AgentWriteTimeout)
	or(&l.IdleTimeout, defaults.AgentIdleTimeout)
	if l.MaxConns <= 0 {
		l.MaxConns = defaults.AgentMaxConns
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = defaults.AgentMaxHeaderBytes
	}
	return l
}

// Serve serves the API on ln until it is closed or Shutdown is called on
// the server it returns through srv: with TLS (mutual when ClientCA is
// set) when cert is given, within the limits.
func (a *Agent) Serve(ln net.Listener, cert *tls.Certificate, l ServerLimits, srv chan<- *http.Server) error {
	l = l.withDefaults()
	s := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	ln = netutil.LimitListener(ln, l.MaxConns)
	if cert != nil {
		s.TLSConfig = a.TLSConfig(*cert)
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	if srv != nil {
		srv <- s
	}
	return s.Serve(ln)
}

func (a *Agent) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *Agent) fail(w http.ResponseWriter, k errs.Kind, msg string) {
	a.reply(w, httpStatus(k), errorBody{Error: RemoteError{Node: a.cfg.NodeID, Kind: k.String(), Message: msg}})
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
