package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/report"
)

func writeReplace(t *testing.T, p, content string) {
	t.Helper()
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func createLabelled(t *testing.T, dir, label string) string {
	t.Helper()
	code, out, errb := hs(t, "create", "--data-dir", dir, "--quiesce", "none", "--label", label, "--json")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errb)
	}
	var r struct{ ID string }
	json.Unmarshal([]byte(lastLine(out)), &r)
	return r.ID
}

// changesOf runs diff --json and returns "kind path what" lines and the summary.
func changesOf(t *testing.T, args ...string) ([]string, map[string]any) {
	t.Helper()
	code, out, errb := hs(t, append([]string{"diff", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("diff %v: exit %d: %s", args, code, errb)
	}
	var lines []string
	var summary map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("diff --json line %q: %v", l, err)
		}
		if m["event"] == "result" {
			summary = m
			continue
		}
		what := ""
		if w, ok := m["what"].([]any); ok {
			for _, x := range w {
				what += x.(string) + ","
			}
		}
		lines = append(lines, m["kind"].(string)+" "+m["path"].(string)+" "+what)
	}
	sort.Strings(lines)
	return lines, summary
}

// TestCLI_LsDiffCat: ls, diff and cat of local snapshots, of archived
// ones (a file:// archive) and across the two, from manifests alone.
func TestCLI_LsDiffCat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, d := range []string{"db", "logs", "keep"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "db", "a.sst"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(dir, "db", "CURRENT"), []byte("MANIFEST-1"), 0o644)
	os.WriteFile(filepath.Join(dir, "logs", "old.log"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(dir, "keep", "same"), []byte("same"), 0o644)
	os.Symlink("db/CURRENT", filepath.Join(dir, "cur"))
	one := createLabelled(t, dir, "one")

	writeReplace(t, filepath.Join(dir, "db", "CURRENT"), "MANIFEST-2") // content
	os.Remove(filepath.Join(dir, "logs", "old.log"))                   // removed
	os.WriteFile(filepath.Join(dir, "db", "b.sst"), []byte("beta"), 0o644)
	os.Chmod(filepath.Join(dir, "db", "a.sst"), 0o600) // mode
	os.Chown(filepath.Join(dir, "keep", "same"), 12345, 12345)
	os.Remove(filepath.Join(dir, "cur"))
	os.Symlink("db/a.sst", filepath.Join(dir, "cur")) // target
	two := createLabelled(t, dir, "two")

	want := []string{
		"added db/b.sst ",
		"modified cur target,",
		"modified db/CURRENT content,",
		"modified db/a.sst mode,",
		"modified keep/same owner,",
		"removed logs/old.log ",
	}
	sort.Strings(want)
	got, sum := changesOf(t, "--data-dir", dir, one, two)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("diff:\n got %q\nwant %q", got, want)
	}
	if sum["added"] != 1.0 || sum["removed"] != 1.0 || sum["modified"] != 4.0 {
		t.Fatalf("summary %v", sum)
	}
	if got, _ := changesOf(t, "--data-dir", dir, two, two); len(got) != 0 {
		t.Fatalf("a snapshot differs from itself: %q", got)
	}

	// ls: everything, and below paths.
	code, out, _ := hs(t, "ls", "--data-dir", dir, "--id", two)
	if code != 0 || !strings.Contains(out, "lrwxrwxrwx") || !strings.Contains(out, "cur -> db/a.sst") || !strings.Contains(out, "-rw------- ") {
		t.Fatalf("ls: %d\n%s", code, out)
	}
	code, out, _ = hs(t, "ls", "--data-dir", dir, "--id", two, "--json", "db", "./keep/")
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e report.LsEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, `{"event":"result"`) {
			continue
		}
		paths = append(paths, e.Path)
		if e.Path == "db/CURRENT" && (e.Size != 10 || len(e.BLAKE3) != 64 || e.Mode != "0644") {
			t.Fatalf("ls entry %+v", e)
		}
	}
	if strings.Join(paths, " ") != "db db/CURRENT db/a.sst db/b.sst keep keep/same" {
		t.Fatalf("ls db keep: %v", paths)
	}

	// cat: the file, verified; not a file; not there; a damaged snapshot.
	code, out, _ = hs(t, "cat", "--data-dir", dir, "--id", one, "db/CURRENT")
	if code != 0 || out != "MANIFEST-1" {
		t.Fatalf("cat: %d %q", code, out)
	}
	for _, tc := range []struct {
		path string
		code int
	}{{"db", 2}, {"nope", 6}, {"cur", 2}} {
		if code, _, errb := hs(t, "cat", "--data-dir", dir, "--id", one, tc.path); code != tc.code {
			t.Errorf("cat %s: exit %d, want %d: %s", tc.path, code, tc.code, errb)
		}
	}
	if code, _, _ := hs(t, "ls", "--data-dir", dir, "--id", "2020-01-01T00.00.00Z_nope"); code != 6 {
		t.Errorf("ls of an unknown id: exit %d, want 6", code)
	}

	// The archive: ls, cat and diff of archived snapshots, and across.
	remote := "file://" + filepath.Join(t.TempDir(), "archive")
	for _, id := range []string{one, two} {
		if code, _, errb := hs(t, "upload", "--data-dir", dir, "--id", id, "--remote", remote, "-q"); code != 0 {
			t.Fatalf("upload: %s", errb)
		}
	}
	code, local, _ := hs(t, "ls", "--data-dir", dir, "--id", two, "--json")
	code2, archived, _ := hs(t, "ls", "--data-dir", dir, "--id", two, "--remote", remote, "--json")
	if code != 0 || code2 != 0 || local != archived {
		t.Fatalf("ls of the archived snapshot differs from the local one:\n%s\n%s", local, archived)
	}
	code, out, _ = hs(t, "cat", "--data-dir", dir, "--id", one, "--remote", remote, "db/CURRENT")
	if code != 0 || out != "MANIFEST-1" {
		t.Fatalf("cat --remote: %d %q", code, out)
	}
	if got, _ := changesOf(t, "--data-dir", dir, "--remote", remote, "local:"+two, "remote:"+two); len(got) != 0 {
		t.Fatalf("local and archived copies differ: %q", got)
	}
	if got, _ := changesOf(t, "--data-dir", dir, "--remote", remote, "remote:"+one, "local:"+two); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("diff archived one, local two: %q", got)
	}
	// Not local: found in the archive when --remote is given.
	if code, _, errb := hs(t, "delete", "--data-dir", dir, "--id", one); code != 0 {
		t.Fatal(errb)
	}
	if got, _ := changesOf(t, "--data-dir", dir, "--remote", remote, one, two); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("diff with one only archived: %q", got)
	}

	// --live: the live data against the newest snapshot.
	writeReplace(t, filepath.Join(dir, "db", "b.sst"), "beta2")
	os.WriteFile(filepath.Join(dir, "db", "c.sst"), []byte("gamma"), 0o644)
	got, _ = changesOf(t, "--data-dir", dir, "--live", two)
	if strings.Join(got, "|") != "added db/c.sst |modified db/b.sst content," {
		t.Fatalf("diff --live: %q", got)
	}

	// A snapshot file changed behind hotsnap's back: cat refuses (exit 4).
	os.WriteFile(filepath.Join(dir, "backups", two, "data", "db", "b.sst"), []byte("BETA"), 0o644)
	if code, _, errb := hs(t, "cat", "--data-dir", dir, "--id", two, "db/b.sst"); code != 4 || !strings.Contains(errb, "hash") {
		t.Fatalf("cat of a damaged file: exit %d: %s", code, errb)
	}
	// Usage errors.
	for _, args := range [][]string{{"diff", "--data-dir", dir, two}, {"diff", "--data-dir", dir, "--live", one, two}, {"diff", "--data-dir", dir, "--hash", one, two}, {"cat", "--data-dir", dir, "--id", two}} {
		if code, _, _ := hs(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestCLI_PartialRestore: restore --target [--include] from a local
// snapshot and download --target [--include] from an archived one bring
// back only the selected entries, every file checked, into a new
// directory, and leave the data dir alone; bad inputs leave no target.
func TestCLI_PartialRestore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, d := range []string{"db", "logs", "keep"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "db", "a.sst"), []byte("alpha"), 0o640)
	os.WriteFile(filepath.Join(dir, "db", "CURRENT"), []byte("MANIFEST-1"), 0o644)
	os.WriteFile(filepath.Join(dir, "logs", "x.log"), []byte("log"), 0o644)
	os.WriteFile(filepath.Join(dir, "keep", "same"), []byte("same"), 0o644)
	os.Symlink("db/CURRENT", filepath.Join(dir, "cur"))
	id := createLabelled(t, dir, "one")
	out := t.TempDir()
	files := func(root string) []string {
		var got []string
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && p != root {
				r, _ := filepath.Rel(root, p)
				got = append(got, r)
			}
			return nil
		})
		return got
	}
	t1 := filepath.Join(out, "t1")
	if code, _, errb := hs(t, "restore", "--data-dir", dir, "--id", id, "--target", t1, "--include", "db"); code != 0 {
		t.Fatalf("restore --target --include db: %s", errb)
	}
	if got := strings.Join(files(t1), " "); got != "db db/CURRENT db/a.sst" {
		t.Fatalf("--include db brought %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(t1, "db", "a.sst")); string(b) != "alpha" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(t1, "db", "a.sst")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// The restored file is a copy: writing it leaves the snapshot whole.
	os.WriteFile(filepath.Join(t1, "db", "a.sst"), []byte("ALPHA"), 0o640)
	if code, _, errb := hs(t, "verify", "--data-dir", dir, "--id", id); code != 0 {
		t.Fatalf("the snapshot changed through a restored file: %s", errb)
	}
	t2 := filepath.Join(out, "t2")
	if code, _, errb := hs(t, "restore", "--data-dir", dir, "--id", id, "--target", t2, "--include", "*.log", "--include", "cur"); code != 0 {
		t.Fatalf("restore --include *.log: %s", errb)
	}
	if got := strings.Join(files(t2), " "); got != "cur logs logs/x.log" {
		t.Fatalf("--include *.log cur brought %q", got)
	}
	// Everything, without --include.
	t3 := filepath.Join(out, "t3")
	if code, _, errb := hs(t, "restore", "--data-dir", dir, "--id", id, "--target", t3); code != 0 || len(files(t3)) != 8 {
		t.Fatalf("restore --target: %s %v", errb, files(t3))
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--target", t1}, 1}, // exists
		{[]string{"--target", filepath.Join(out, "n"), "--include", "zzz"}, 6},
		{[]string{"--include", "zzz"}, 6}, // into the data dir, matching nothing
		{[]string{"--include", "[bad"}, 2},
		{[]string{"--target", filepath.Join(out, "n"), "--dry-run"}, 2},
		{[]string{"--target", filepath.Join(dir, "inside")}, 2},
		{[]string{"--target", filepath.Join(out, "n"), "--include", "[bad"}, 2},
	} {
		if code, _, errb := hs(t, append([]string{"restore", "--data-dir", dir, "--id", id}, tc.args...)...); code != tc.code {
			t.Errorf("restore %v: exit %d, want %d: %s", tc.args, code, tc.code, errb)
		}
	}
	if _, err := os.Lstat(filepath.Join(out, "n")); err == nil {
		t.Fatal("a refused restore left its target")
	}
	// A damaged file in the selection: exit 4, no target; outside it: fine.
	os.WriteFile(filepath.Join(dir, "backups", id, "data", "keep", "same"), []byte("SAME"), 0o644)
	if code, _, _ := hs(t, "restore", "--data-dir", dir, "--id", id, "--target", filepath.Join(out, "bad"), "--include", "keep"); code != 4 {
		t.Fatalf("a damaged file restored: exit %d", code)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 3 {
		t.Fatalf("a failed restore left something: %v", ents)
	}
	if code, _, _ := hs(t, "restore", "--data-dir", dir, "--id", id, "--target", filepath.Join(out, "t4"), "--include", "db"); code != 0 {
		t.Fatal("a damage outside the selection stopped the restore")
	}
	os.WriteFile(filepath.Join(dir, "backups", id, "data", "keep", "same"), []byte("same"), 0o644)

	// From the archive: only the selected files' chunks are fetched, and
	// no data dir is needed.
	remote := "file://" + filepath.Join(t.TempDir(), "archive")
	if code, _, errb := hs(t, "upload", "--data-dir", dir, "--id", id, "--remote", remote, "-q"); code != 0 {
		t.Fatalf("upload: %s", errb)
	}
	t5 := filepath.Join(out, "t5")
	code, js, errb := hs(t, "download", "--id", id, "--remote", remote, "--target", t5, "--include", "db/CURRENT", "--json")
	if code != 0 {
		t.Fatalf("download --target --include: %s", errb)
	}
	var res struct{ Files, ChunksFetched int64 }
	json.Unmarshal([]byte(js), &res)
	if got := strings.Join(files(t5), " "); got != "db db/CURRENT" || res.Files != 1 || res.ChunksFetched != 1 {
		t.Fatalf("download --include db/CURRENT: %q, %s", got, js)
	}
	if b, _ := os.ReadFile(filepath.Join(t5, "db", "CURRENT")); string(b) != "MANIFEST-1" {
		t.Fatalf("content %q", b)
	}
	if code, _, _ := hs(t, "download", "--data-dir", dir, "--id", id, "--remote", remote, "--include", "db"); code != 2 {
		t.Fatalf("download --include without --target: exit %d", code)
	}

	// Into the live data dir: db comes back whole (its new file goes to the
	// failsafe), logs and keep are left as they are.
	writeReplace(t, filepath.Join(dir, "db", "a.sst"), "ALPHA-2")
	os.WriteFile(filepath.Join(dir, "db", "b.sst"), []byte("beta"), 0o644)
	os.WriteFile(filepath.Join(dir, "logs", "y.log"), []byte("newer log"), 0o644)
	code, js, errb = hs(t, "restore", "--data-dir", dir, "--id", id, "--include", "db", "--json")
	if code != 0 {
		t.Fatalf("restore --include db: exit %d %s %s", code, errb, js)
	}
	var rr struct {
		Include  []string
		Files    int64
		Failsafe string
		Plan     struct{ Removed, Changed []string }
	}
	json.Unmarshal([]byte(lastLine(js)), &rr)
	if strings.Join(rr.Include, ",") != "db" || rr.Files != 2 || strings.Join(rr.Plan.Removed, ",") != "db/b.sst" || strings.Join(rr.Plan.Changed, ",") != "db/a.sst" {
		t.Fatalf("restore --include db --json: %s", js)
	}
	if got := strings.Join(files(filepath.Join(dir, "db")), " "); got != "CURRENT a.sst" {
		t.Fatalf("db after the partial restore: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "db", "a.sst")); string(b) != "alpha" {
		t.Fatalf("db/a.sst %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "logs", "y.log")); string(b) != "newer log" {
		t.Fatal("a partial restore of db touched logs")
	}
	if got := strings.Join(files(rr.Failsafe), " "); got != "db db/CURRENT db/a.sst db/b.sst" {
		t.Fatalf("failsafe holds %q", got)
	}
}

// TestCLI_KeyRotation: archive key add/list/remove on an encrypted
// file:// archive, end to end: the archive made with k1 gains k2, k1 is
// revoked (with k2), k1 no longer opens it, k2 reads the data, and the
// last key file cannot be removed.
func TestCLI_KeyRotation(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "f"), []byte("secret data"), 0o644)
	id := createLabelled(t, dir, "k")
	keyIDs := map[string]string{}
	k1, k2 := filepath.Join(tmp, "k1"), filepath.Join(tmp, "k2")
	for _, k := range []string{k1, k2} {
		code, out, errb := hs(t, "archive", "keygen", "--output", k, "--json")
		var r struct{ KeyID string }
		json.Unmarshal([]byte(lastLine(out)), &r)
		if code != 0 || r.KeyID == "" {
			t.Fatal(errb, out)
		}
		keyIDs[k] = r.KeyID
	}
	remote := "file://" + filepath.Join(tmp, "archive")
	if code, _, errb := hs(t, "upload", "--data-dir", dir, "--id", id, "--remote", remote, "--encryption-key-file", k1, "-q"); code != 0 {
		t.Fatalf("upload: %s", errb)
	}
	if code, _, errb := hs(t, "archive", "key", "add", "--remote", remote, "--encryption-key-file", k1, "--new-key-file", k2); code != 0 {
		t.Fatalf("key add: %s", errb)
	}
	code, out, _ := hs(t, "archive", "key", "list", "--remote", remote, "--encryption-key-file", k2, "--json")
	var list struct{ KeyFiles []string }
	json.Unmarshal([]byte(lastLine(out)), &list)
	if code != 0 || strings.Join(list.KeyFiles, ",") != strings.Join(sortedPair(keyIDs[k1], keyIDs[k2]), ",") {
		t.Fatalf("key list: %d %s", code, out)
	}
	if code, _, errb := hs(t, "archive", "key", "remove", "--remote", remote, "--encryption-key-file", k2, "--key-id", keyIDs[k1]); code != 0 {
		t.Fatalf("key remove: %s", errb)
	}
	if code, _, errb := hs(t, "archive", "ls", "--remote", remote, "--encryption-key-file", k1); code != 5 || !strings.Contains(errb, "wrong encryption key") {
		t.Fatalf("the revoked key file: exit %d: %s", code, errb)
	}
	if code, out, errb := hs(t, "cat", "--data-dir", dir, "--id", id, "--remote", remote, "--encryption-key-file", k2, "f"); code != 0 || out != "secret data" {
		t.Fatalf("cat with the remaining key file: %s", errb)
	}
	if code, _, errb := hs(t, "archive", "key", "remove", "--remote", remote, "--encryption-key-file", k2, "--key-id", keyIDs[k2]); code != 2 || !strings.Contains(errb, "last") {
		t.Fatalf("removing the last key file: exit %d: %s", code, errb)
	}
	if code, _, _ := hs(t, "archive", "key", "add", "--remote", remote, "--new-key-file", k1); code != 2 {
		t.Fatalf("key add without a key file that opens the archive: exit %d", code)
	}
}

func sortedPair(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
}
