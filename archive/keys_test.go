package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/snapshot"
)

// TestKeyFiles_Rotation: a key file added opens the archive and reads its
// data back; a removed one no longer opens it; the last one is never
// removed; a wrapped key object that is damaged, or another key file's
// moved under this name, is refused as corrupt, never used.
func TestKeyFiles_Rotation(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		k1, k2, k3 := GenerateKey(), GenerateKey(), GenerateKey()
		r, err := Init(ctx, st, InitOptions{PackSize: 1 << 20, Key: &k1})
		must(t, err)
		if r.KeyID() == k1.ID() {
			t.Fatal("the data key is the key file: it could never be revoked")
		}
		dir := dataDir(t)
		must(t, os.WriteFile(filepath.Join(dir, "f"), []byte(strings.Repeat("data ", 5000)), 0o644))
		l, id := snap(t, dir)
		_, err = Upload(ctx, r, l, id, UploadOptions{})
		must(t, err)

		must(t, r.AddKeyFile(ctx, k2))
		if err := r.AddKeyFile(ctx, k2); !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("adding a key file twice: %v", err)
		}
		r2, err := Open(ctx, st, &k2)
		must(t, err)
		must(t, snapshot.Delete(ctx, l, id, nil))
		_, err = Download(ctx, r2, l, id, DownloadOptions{})
		must(t, err)
		ids, legacy, err := r2.KeyFiles(ctx)
		must(t, err)
		if legacy != "" || strings.Join(ids, ",") != strings.Join(sorted(k1.ID(), k2.ID()), ",") {
			t.Fatalf("key files %v legacy %q", ids, legacy)
		}
		// Revoke k1 with k2.
		must(t, r2.RemoveKeyFile(ctx, k1.ID()))
		if _, err := Open(ctx, st, &k1); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("a revoked key file still opens the archive: %v", err)
		}
		if err := r2.RemoveKeyFile(ctx, k2.ID()); err == nil || !strings.Contains(err.Error(), "last") {
			t.Fatalf("removing the last key file: %v", err)
		}
		if err := r2.RemoveKeyFile(ctx, k3.ID()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removing an unknown key file: %v", err)
		}
		// Hostile: k2's wrapped key copied under k3's name does not open
		// with k3; a damaged one does not open with k2.
		b, err := st.Get(ctx, keysPrefix+k2.ID(), maxKeyObject)
		must(t, err)
		must(t, st.Put(ctx, keysPrefix+k3.ID(), b))
		if _, err := Open(ctx, st, &k3); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a wrapped key under another key file's name: %v", err)
		}
		b[len(b)-1] ^= 1
		must(t, st.Put(ctx, keysPrefix+k2.ID(), b))
		if _, err := Open(ctx, st, &k2); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a damaged wrapped key: %v", err)
		}
	})
}

func fsStore(t *testing.T) store.Store {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sorted(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
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
	must(t, a.checkConfig(ctx))
	must(t, st.Delete(ctx, "config"))
	_, err = Init(ctx, st, InitOptions{Key: &k})
	must(t, err)
	if err := a.checkConfig(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a replaced config: %v", err)
	}
}
