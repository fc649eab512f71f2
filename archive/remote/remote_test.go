package remote

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
)

// TestRegister: a third backend is one Register call; it serves both its
// scheme and named remotes of its type, with the named remote's settings.
func TestRegister(t *testing.T) {
	root := t.TempDir()
	var got []Target
	Register("memtest", func(_ context.Context, tg Target) (store.Store, error) {
		got = append(got, tg)
		return fsstore.New(filepath.Join(root, strings.ReplaceAll(tg.Location, "/", "_")))
	})
	ctx := context.Background()
	r, err := Open(ctx, "memtest://bucket/a", Options{S3Endpoint: "ignored:1"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(ctx); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "remotes.json")
	if err := os.WriteFile(conf, []byte(`{"m": {"type": "memtest", "endpoint": "e:9", "access_key_id": "ak"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, "m:bucket/b", Options{ConfigFile: conf}, true); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Location != "bucket/a" || !got[0].Create || got[1].Location != "bucket/b" || got[1].Endpoint != "e:9" || got[1].AccessKey != "ak" {
		t.Fatalf("targets: %+v", got)
	}
	if _, err := Open(ctx, "memtest://bucket/a", Options{}, false); err != nil {
		t.Fatalf("reopen: %v", err)
	}
}

// TestBadSpecs: every spec that cannot be used is a usage error naming it.
func TestBadSpecs(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "remotes.json")
	os.WriteFile(conf, []byte(`{"f": {"type": "file", "path": "/srv/archive"}, "rel": {"type": "file", "path": "srv"}, "notype": {}}`), 0o600)
	open := filepath.Join(t.TempDir(), "open.json")
	os.WriteFile(open, []byte(`{}`), 0o644)
	for _, c := range []struct{ spec, conf, want string }{
		{"", "", "no remote given"},
		{"ftp://x", "", `unknown scheme "ftp"`},
		{"file://relative/path", "", "want file:///absolute/path"},
		{"s3://bucket/x", "", "no endpoint"},
		{"nocolon", "", "want file:///path"},
		{"f:x", "", "--remote-config"},
		{"f:../../etc", conf, "must stay inside the remote's root"},
		{"rel:x", conf, "must be absolute"},
		{"notype:x", conf, "has no type"},
		{"missing:x", conf, "is not in"},
		{"f:x", open, "insecure"},
	} {
		_, err := Store(context.Background(), c.spec, Options{ConfigFile: c.conf}, false)
		if err == nil || !strings.Contains(err.Error(), c.want) || errs.Of(err) != errs.Usage {
			t.Errorf("%q: %v (kind %s), want a usage error with %q", c.spec, err, errs.Of(err), c.want)
		}
	}
	if _, err := Open(context.Background(), "file://"+t.TempDir(), Options{}, false); !errors.Is(err, repo.ErrNotInitialised) {
		t.Errorf("an empty directory: %v", err)
	}
}
