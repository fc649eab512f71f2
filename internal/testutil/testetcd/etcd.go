// Package testetcd runs a real, single-member etcd inside the test process
// (go.etcd.io/etcd/server/v3/embed), listening on loopback ports, removed
// when the test ends. It is secured as production etcd should be: TLS with
// client certificates required (generated here with crypto/x509) and
// etcd's authentication on (user root).
package testetcd

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"golang.org/x/crypto/bcrypt"

	"github.com/hotsnap/hotsnap/internal/testutil/etcdembed"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
)

// Etcd is a running etcd.
type Etcd struct {
	URL string // https://127.0.0.1:port
	*etcdembed.Files
	e *embed.Etcd
}

// Start starts a secured etcd with its own temp dir; it stops when the
// test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	files, err := etcdembed.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := etcdembed.Config(t.TempDir(), testserver.FreePort(t), testserver.FreePort(t))
	etcdembed.Secure(cfg, files)
	// A test's etcd lives for one test in a temp dir: its WAL need not
	// reach the disk, and root's password is hashed at bcrypt's lowest
	// cost (the default costs about a second of CPU per login under the
	// race detector, and every CLI call logs in).
	cfg.UnsafeNoFsync = true
	cfg.BcryptCost = uint(bcrypt.MinCost)
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := etcdembed.EnableAuth(ctx, cfg.ListenClientUrls[0], files); err != nil {
		t.Fatal(err)
	}
	return &Etcd{URL: cfg.ListenClientUrls[0].String(), Files: files, e: e}
}

// TLS is the root client's TLS configuration.
func (e *Etcd) TLS(t testing.TB) *tls.Config {
	t.Helper()
	c, err := e.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
