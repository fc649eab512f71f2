package repo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
)

func fsStore(t *testing.T) store.Store {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeyFiles_Legacy: an archive made as hotsnap 0.2 made them (the first
// key file is the data key) still opens with that key file, gains key
// files, and refuses to revoke the first one.
func TestKeyFiles_Legacy(t *testing.T) {
	ctx := context.Background()
	st := fsStore(t)
	k1, k2 := GenerateKey(), GenerateKey()
	r, err := Init(ctx, st, InitOptions{PackSize: 1 << 20, Key: &k1, directKey: true})
	must(t, err)
	if r.KeyID() != k1.ID() {
		t.Fatal("not the old format")
	}
	r, err = Open(ctx, st, &k1)
	must(t, err)
	must(t, r.AddKeyFile(ctx, k2))
	r2, err := Open(ctx, st, &k2)
	must(t, err)
	ids, legacy, err := r2.KeyFiles(ctx)
	must(t, err)
	if legacy != k1.ID() || len(ids) != 1 || ids[0] != k2.ID() {
		t.Fatalf("key files %v legacy %q", ids, legacy)
	}
	if err := r2.RemoveKeyFile(ctx, k1.ID()); err == nil || !strings.Contains(err.Error(), "data key itself") {
		t.Fatalf("revoking the data key: %v", err)
	}
	must(t, r2.RemoveKeyFile(ctx, k2.ID())) // k1 still opens it
	if _, err := Open(ctx, st, &k1); err != nil {
		t.Fatal(err)
	}
}

// TestCheckConfig: a config replaced by a concurrent init is noticed
// before a commit.
func TestCheckConfig(t *testing.T) {
	ctx := context.Background()
	st := fsStore(t)
	k := GenerateKey()
	a, err := Init(ctx, st, InitOptions{Key: &k})
	must(t, err)
	must(t, a.CheckConfig(ctx))
	must(t, st.Delete(ctx, "config"))
	_, err = Init(ctx, st, InitOptions{Key: &k})
	must(t, err)
	if err := a.CheckConfig(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a replaced config: %v", err)
	}
}
