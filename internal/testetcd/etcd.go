// Package testetcd runs a real, single-member etcd inside the test process
// (go.etcd.io/etcd/server/v3/embed), listening on loopback ports, removed
// when the test ends.
package testetcd

import (
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/hotsnap/hotsnap/internal/etcdembed"
	"github.com/hotsnap/hotsnap/internal/testserver"
)

// Etcd is a running etcd.
type Etcd struct {
	URL string // http://127.0.0.1:port
	e   *embed.Etcd
}

// Start starts etcd with its own temp dir; it stops when the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	cfg := etcdembed.Config(t.TempDir(), testserver.FreePort(t), testserver.FreePort(t))
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		t.Fatal("etcd did not become ready in 60s")
	}
	t.Cleanup(e.Close)
	return &Etcd{URL: cfg.ListenClientUrls[0].String(), e: e}
}
