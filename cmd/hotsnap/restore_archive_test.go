package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// TestRestore_FromArchive: restore --from-archive puts an archived
// snapshot back as a data dir that never had it, with no local snapshot
// kept, the tree exactly the original's; refusals (another engine, a
// damaged pack, flags that do not go with it) leave the data dir as it was
// and nothing behind in the private state dir.
func TestRestore_FromArchive(t *testing.T) {
	src := testtree.New(t)
	code, out, errb := hs(t, "create", "--data-dir", src, "--app-engine", "pebble", "--json")
	if code != 0 {
		t.Fatalf("create: %s", errb)
	}
	var created struct{ ID string }
	lastJSON(t, out, &created)
	id := created.ID
	archiveDir := filepath.Join(t.TempDir(), "archive")
	remote := "file://" + archiveDir
	if code, _, errb := hs(t, "upload", "--data-dir", src, "--id", id, "--remote", remote, "-q"); code != 0 {
		t.Fatalf("upload: %s", errb)
	}
	want := testtree.Snapshot(t, src, "backups", ".hotsnap")

	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := os.MkdirAll(filepath.Join(fresh, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fresh, "old", "f"), []byte("the state before"), 0o644)
	before := testtree.Snapshot(t, fresh, ".hotsnap")
	unchanged := func(what string) {
		t.Helper()
		if d := testtree.Diff(before, testtree.Snapshot(t, fresh, ".hotsnap", "backups")); d != "" {
			t.Fatalf("%s changed the data dir:\n%s", what, d)
		}
		if ents, _ := os.ReadDir(filepath.Join(fresh, ".hotsnap", "private", "restoring")); len(ents) != 0 {
			t.Fatalf("%s left %d entries in the restoring dir", what, len(ents))
		}
	}
	restore := func(args ...string) (int, string, string) {
		return hs(t, append([]string{"restore", "--data-dir", fresh, "--id", id, "--remote", remote, "--from-archive"}, args...)...)
	}

	// Flags that do not go with it, and the engine rule: refused first.
	for _, args := range [][]string{{"--include", "db"}, {"--fast-verify"}} {
		if code, _, errb := restore(args...); code != 2 {
			t.Fatalf("restore --from-archive %v: exit %d (%s), want 2", args, code, errb)
		}
	}
	if code, _, errb := hs(t, "restore", "--data-dir", fresh, "--id", id, "--allow-setid"); code != 2 {
		t.Fatalf("--allow-setid without --from-archive: exit %d (%s)", code, errb)
	}
	if code, _, errb := restore("--app-engine", "rocksdb"); code != 5 || !strings.Contains(errb, "nothing was changed") {
		t.Fatalf("another engine: exit %d: %s", code, errb)
	}
	unchanged("a refused restore")

	// A damaged pack: the fill finds it, the swap never happens.
	packs, _ := filepath.Glob(filepath.Join(archiveDir, "packs", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no packs in the archive")
	}
	var biggest string
	var size int64
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	good, _ := os.ReadFile(biggest)
	bad := append([]byte(nil), good...)
	bad[len(bad)/3] ^= 0xff
	os.WriteFile(biggest, bad, 0o644)
	if code, _, errb := restore(); code == 0 {
		t.Fatalf("a damaged pack was restored: %s", errb)
	}
	unchanged("a restore from a damaged archive")
	os.WriteFile(biggest, good, 0o644)

	// A dry run proves the manifest and says so, changing nothing.
	code, out, errb = restore("--app-engine", "pebble", "--dry-run", "--json")
	var dry struct{ Verified string }
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errb)
	}
	lastJSON(t, out, &dry)
	if dry.Verified != "manifest" {
		t.Fatalf("dry run says verified %q", dry.Verified)
	}
	unchanged("a dry run")

	// The real thing.
	code, out, errb = restore("--app-engine", "pebble", "--json")
	if code != 0 {
		t.Fatalf("restore --from-archive: exit %d: %s", code, errb)
	}
	var res struct {
		Verified string
		Failsafe string
	}
	lastJSON(t, out, &res)
	if res.Verified != "download" || res.Failsafe == "" {
		t.Fatalf("result: %+v in %s", res, out)
	}
	if d := testtree.Diff(want, testtree.Snapshot(t, fresh, "backups", ".hotsnap")); d != "" {
		t.Fatalf("the restored data dir differs from the original:\n%s", d)
	}
	var list []map[string]any
	if _, out, _ := hs(t, "list", "--data-dir", fresh, "--json"); listed(out, "snapshots", &list) != nil || len(list) != 0 {
		t.Fatalf("restore --from-archive kept a local snapshot: %s", out)
	}
	// The state before is the failsafe.
	if b, err := os.ReadFile(filepath.Join(res.Failsafe, "old", "f")); err != nil || string(b) != "the state before" {
		t.Fatalf("failsafe: %q %v", b, err)
	}
}
