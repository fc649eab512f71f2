package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/archive/repo"
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
		k1, k2, k3 := repo.GenerateKey(), repo.GenerateKey(), repo.GenerateKey()
		r, err := Init(ctx, st, repo.InitOptions{PackSize: 1 << 20, Key: &k1})
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
		if _, err := Open(ctx, st, &k1); !errors.Is(err, repo.ErrWrongKey) {
			t.Fatalf("a revoked key file still opens the archive: %v", err)
		}
		if err := r2.RemoveKeyFile(ctx, k2.ID()); err == nil || !strings.Contains(err.Error(), "last") {
			t.Fatalf("removing the last key file: %v", err)
		}
		if err := r2.RemoveKeyFile(ctx, k3.ID()); !errors.Is(err, repo.ErrNotFound) {
			t.Fatalf("removing an unknown key file: %v", err)
		}
		// Hostile: k2's wrapped key copied under k3's name does not open
		// with k3; a damaged one does not open with k2.
		b, err := st.Get(ctx, "keys/"+k2.ID(), 1<<20)
		must(t, err)
		must(t, st.Put(ctx, "keys/"+k3.ID(), b))
		if _, err := Open(ctx, st, &k3); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("a wrapped key under another key file's name: %v", err)
		}
		b[len(b)-1] ^= 1
		must(t, st.Put(ctx, "keys/"+k2.ID(), b))
		if _, err := Open(ctx, st, &k2); !errors.Is(err, repo.ErrCorrupt) {
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
