package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// listed decodes the array under key of a listing's --json result (its
// last line) into v.
// The exit codes the tests expect, from the one table in package errs
// (docs/exit-codes.md).
var (
	exitError        = errs.Error.ExitCode()
	exitUsage        = errs.Usage.ExitCode()
	exitLockTimeout  = errs.LockTimeout.ExitCode()
	exitVerifyFailed = errs.VerifyFailed.ExitCode()
	exitNotFound     = errs.NotFound.ExitCode()
	exitInternal     = errs.Internal.ExitCode()
)

func listed(out, key string, v any) error {
	var m map[string]json.RawMessage
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		return err
	}
	return json.Unmarshal(m[key], v)
}

// hs runs the CLI in-process and returns exit code, stdout and stderr.
func hs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runCLI(context.Background(), append([]string{"hotsnap"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI_CreateListVerifyDeleteJSON(t *testing.T) {
	dir := testtree.New(t)
	code, out, errs := hs(t, "create", "--data-dir", dir, "--label", "cli", "--app-version", "3.5.1", "--json")
	if code != 0 {
		t.Fatalf("create exit %d: %s %s", code, out, errs)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lastLine(out)), &res); err != nil {
		t.Fatalf("create --json is not one JSON object: %q", out)
	}
	for _, k := range []string{"id", "files", "bytes", "lockHeldMs", "potentiallyInconsistent", "durationMs"} {
		if _, ok := res[k]; !ok {
			t.Errorf("create --json lacks %q: %s", k, out)
		}
	}
	id := res["id"].(string)

	code, out, _ = hs(t, "list", "--data-dir", dir, "--json")
	var list []map[string]any
	if code != 0 || listed(out, "snapshots", &list) != nil || len(list) != 1 {
		t.Fatalf("list --json: exit %d, %q", code, out)
	}
	for _, k := range []string{"id", "createdAt", "appVersion", "files", "bytes", "nodes", "potentiallyInconsistent"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("list --json lacks %q", k)
		}
	}
	if nodes, _ := list[0]["nodes"].([]any); list[0]["appVersion"] != "3.5.1" || len(nodes) != 1 || nodes[0] != "local" {
		t.Errorf("list entry: %v", list[0])
	}

	code, out, _ = hs(t, "verify", "--data-dir", dir, "--id", id, "--json")
	if code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("verify: exit %d %s", code, out)
	}
	// Damage a copy... there are none; remove a symlink from the snapshot instead.
	os.Remove(filepath.Join(dir, "backups", id, "data", "link-rel"))
	code, out, _ = hs(t, "verify", "--data-dir", dir, "--id", id, "--json")
	if code != 4 || !strings.Contains(out, `"kind":"missing"`) || strings.Contains(out, `"event":"error"`) || !strings.HasPrefix(lastLine(out), `{"event":"result"`) {
		t.Fatalf("verify of a damaged snapshot: exit %d, want 4 and the result as the last line, no error: %s", code, out)
	}
	code, _, _ = hs(t, "delete", "--data-dir", dir, "--id", id)
	if code != 0 {
		t.Fatalf("delete exit %d", code)
	}
	code, out, _ = hs(t, "delete", "--data-dir", dir, "--id", id, "--json")
	var e struct {
		Error struct {
			Code int
			Kind string
		}
	}
	if code != 6 || json.Unmarshal([]byte(lastLine(out)), &e) != nil || e.Error.Code != 6 || e.Error.Kind != "not_found" {
		t.Fatalf("delete unknown: exit %d, %s", code, out)
	}
}

func TestCLI_ExitCodes(t *testing.T) {
	dir := testtree.New(t)
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"NoDataDir", []string{"list"}, 2, "--data-dir"},
		{"UnknownFlag", []string{"list", "--data-dir", dir, "--bogus"}, 2, "bogus"},
		{"UnknownCommand", []string{"frobnicate"}, 2, ""},
		{"MissingDataDir", []string{"list", "--data-dir", filepath.Join(dir, "nope")}, 6, "does not exist"},
		{"BadLabel", []string{"create", "--data-dir", dir, "--label", "a/b"}, 2, "label"},
		{"BadQuiesce", []string{"create", "--data-dir", dir, "--quiesce", "magic"}, 2, "--quiesce"},
		{"ExecWithoutCmds", []string{"create", "--data-dir", dir, "--quiesce", "exec"}, 2, "--lock-cmd"},
		{"LockCmdFails", []string{"create", "--data-dir", dir, "--quiesce", "exec", "--lock-cmd", "exit 9", "--unlock-cmd", "true"}, 1, "status 9"},
		{"LockTimeout", []string{"create", "--data-dir", dir, "--quiesce", "exec", "--lock-cmd", "exit 75", "--unlock-cmd", "true", "--max-wait-for-lock", "300ms", "--lock-period", "50ms"}, 3, "could not be stopped"},
		{"NoID", []string{"verify", "--data-dir", dir}, 2, "--id"},
		{"UnknownID", []string{"verify", "--data-dir", dir, "--id", "2020-01-01T00.00.00Z_x"}, 6, "not found"},
		{"StrayArg", []string{"list", "--data-dir", dir, "extra"}, 2, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := hs(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, c.code, out, errs)
			}
			if !strings.Contains(out+errs, c.says) {
				t.Fatalf("output does not say %q: %q %q", c.says, out, errs)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "backups")); err == nil {
		if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) > 0 {
			t.Fatalf("failed commands left snapshots: %v", ents)
		}
	}
}

func TestCLI_AllowInconsistentFlagged(t *testing.T) {
	dir := testtree.New(t)
	code, out, _ := hs(t, "create", "--data-dir", dir, "--quiesce", "exec", "--lock-cmd", "exit 75", "--unlock-cmd", "true",
		"--max-wait-for-lock", "200ms", "--lock-period", "50ms", "--allow-inconsistent", "--json")
	if code != 0 || !strings.Contains(out, `"potentiallyInconsistent":true`) {
		t.Fatalf("exit %d: %s", code, out)
	}
	_, out, _ = hs(t, "list", "--data-dir", dir)
	if !strings.Contains(out, "true") {
		t.Fatalf("list does not show the flag: %s", out)
	}
}

func TestCLI_ReadOnlyCommandsChangeNothing(t *testing.T) {
	dir := testtree.New(t)
	if code, _, errs := hs(t, "create", "--data-dir", dir, "--label", "ro"); code != 0 {
		t.Fatal(errs)
	}
	before := testtree.Snapshot(t, dir)
	_, out, _ := hs(t, "list", "--data-dir", dir, "--json")
	var list []struct{ ID string }
	listed(out, "snapshots", &list)
	for _, args := range [][]string{
		{"list", "--data-dir", dir}, {"list", "--data-dir", dir, "--json"},
		{"verify", "--data-dir", dir, "--id", list[0].ID}, {"verify", "--data-dir", dir, "--id", list[0].ID, "--fast"},
	} {
		if code, _, errs := hs(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	if d := testtree.Diff(before, testtree.Snapshot(t, dir)); d != "" {
		t.Fatalf("read-only commands changed the tree:\n%s", d)
	}
}

func TestCLI_DataDirFromEnv(t *testing.T) {
	dir := testtree.New(t)
	t.Setenv("HOTSNAP_DATA_DIR", dir)
	if code, _, errs := hs(t, "create", "--quiet"); code != 0 {
		t.Fatalf("create with HOTSNAP_DATA_DIR: %s", errs)
	}
	_, out, _ := hs(t, "list", "--json")
	if !strings.Contains(out, `"files":10`) {
		t.Fatalf("list: %s", out)
	}
}

func TestCLI_Restore(t *testing.T) {
	dir := testtree.New(t)
	_, out, _ := hs(t, "create", "--data-dir", dir, "--app-version", "3.5.1", "--json")
	var res struct{ ID string }
	json.Unmarshal([]byte(lastLine(out)), &res)
	os.Remove(filepath.Join(dir, "a.txt"))
	before := testtree.Snapshot(t, dir, ".hotsnap")

	code, _, errs := hs(t, "restore", "--data-dir", dir, "--id", res.ID, "--app-version", "3.4.0")
	if code != 5 || !strings.Contains(errs, "minor 4 < 5") {
		t.Fatalf("minor downgrade: exit %d %s", code, errs)
	}
	code, out, _ = hs(t, "restore", "--data-dir", dir, "--id", res.ID, "--app-version", "3.5.1", "--dry-run", "--json")
	if code != 0 || !strings.Contains(out, `"dryRun":true`) || !strings.Contains(out, `"added":["a.txt"]`) {
		t.Fatalf("dry run: exit %d %s", code, out)
	}
	if d := testtree.Diff(before, testtree.Snapshot(t, dir, ".hotsnap")); d != "" {
		t.Fatalf("refused or dry-run restore changed the data dir:\n%s", d)
	}
	code, out, _ = hs(t, "restore", "--data-dir", dir, "--id", res.ID, "--app-version", "9.0.0", "--ignore-version", "--json")
	if code != 0 || !strings.Contains(out, `"ignoredVersion":true`) || !strings.Contains(out, `"restored":true`) {
		t.Fatalf("restore: exit %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal("a.txt not restored")
	}
	// A damaged snapshot is refused with exit 4, naming the file.
	os.Remove(filepath.Join(dir, "backups", res.ID, "data", "empty"))
	code, _, errs = hs(t, "restore", "--data-dir", dir, "--id", res.ID, "--app-version", "3.5.1")
	if code != 4 || !strings.Contains(errs, "empty: missing") {
		t.Fatalf("damaged snapshot: exit %d %s", code, errs)
	}
}

func TestCLI_Archive(t *testing.T) {
	dir := testtree.New(t)
	repo := "file://" + t.TempDir() + "/repo"
	_, out, _ := hs(t, "create", "--data-dir", dir, "--json")
	var res struct{ ID string }
	json.Unmarshal([]byte(lastLine(out)), &res)

	code, out, _ := hs(t, "upload", "--data-dir", dir, "--id", res.ID, "--remote", repo, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || !strings.Contains(lines[0], `"event":"progress"`) || !strings.Contains(lines[len(lines)-1], `"filesRead":`) {
		t.Fatalf("upload --json: exit %d, want progress lines then the result:\n%s", code, out)
	}
	code, out, _ = hs(t, "archive", "ls", "--remote", repo, "--json")
	if code != 0 || !strings.Contains(out, res.ID) {
		t.Fatalf("archive ls: %d %s", code, out)
	}
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"NoRemote", []string{"archive", "ls"}, 2, "--remote"},
		{"BadRemote", []string{"archive", "ls", "--remote", "ftp://x"}, 2, "want file:///path"},
		{"NotInitialised", []string{"archive", "ls", "--remote", "file://" + t.TempDir()}, 1, "not initialised"},
		{"UnknownID", []string{"download", "--data-dir", dir, "--id", "2020-01-01T00.00.00Z_x", "--remote", repo}, 6, "not in the archive"},
		{"Exists", []string{"download", "--data-dir", dir, "--id", res.ID, "--remote", repo}, 1, "already exists"},
		{"BadSubset", []string{"archive", "check", "--remote", repo, "--read-data-subset", "200%"}, 2, "percentage"},
		{"S3NoEndpoint", []string{"archive", "ls", "--remote", "s3://bucket/x"}, 2, "no endpoint"},
		{"NamedWithoutConfig", []string{"archive", "ls", "--remote", "minio:bucket/x"}, 2, "--remote-config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := hs(t, c.args...)
			if code != c.code || !strings.Contains(out+errs, c.says) {
				t.Fatalf("exit %d (want %d), output %q %q (want %q)", code, c.code, out, errs, c.says)
			}
		})
	}
	// Damage a pack: check exits 4 and lists the problem.
	root := strings.TrimPrefix(repo, "file://")
	packs, _ := filepath.Glob(filepath.Join(root, "packs", "*", "*"))
	b, _ := os.ReadFile(packs[0])
	b[len(b)-1] ^= 0xff
	os.WriteFile(packs[0], b, 0o644)
	code, out, _ = hs(t, "archive", "check", "--remote", repo, "--read-data", "--json")
	if code != 4 || !strings.Contains(out, "problems") {
		t.Fatalf("check of a damaged archive: exit %d %s", code, out)
	}
}

func TestCLI_SecretsNeverPrinted(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "super-secret-value-123")
	code, out, errs := hs(t, "archive", "ls", "--remote", "s3://bucket/p", "--s3-endpoint", "127.0.0.1:1", "--s3-insecure", "--log-level", "debug")
	if code == 0 {
		t.Fatal("listing an unreachable endpoint succeeded")
	}
	if strings.Contains(out+errs, "super-secret-value-123") {
		t.Fatalf("the secret key was printed: %s %s", out, errs)
	}
}

func TestCLI_UsageAndPrune(t *testing.T) {
	dir := testtree.New(t)
	for i := 0; i < 3; i++ {
		if code, _, errs := hs(t, "create", "--data-dir", dir, "-q"); code != 0 {
			t.Fatal(errs)
		}
	}
	code, out, _ := hs(t, "usage", "--data-dir", dir, "--json")
	if code != 0 || !strings.Contains(out, `"liveBytes"`) || strings.Count(out, `"exclusiveBytes"`) != 3 {
		t.Fatalf("usage: %d %s", code, out)
	}
	if code, _, errs := hs(t, "prune", "--data-dir", dir); code != 2 || !strings.Contains(errs, "no keep rule") {
		t.Fatalf("prune without rules: %d %s", code, errs)
	}
	code, out, _ = hs(t, "prune", "--data-dir", dir, "--keep-last", "1", "--dry-run", "--json")
	if code != 0 || !strings.Contains(out, `"dryRun":true`) {
		t.Fatalf("dry run: %d %s", code, out)
	}
	_, out, _ = hs(t, "list", "--data-dir", dir, "--json")
	if strings.Count(out, `"id"`) != 3 {
		t.Fatal("dry run removed snapshots")
	}
	if code, _, errs := hs(t, "prune", "--data-dir", dir, "--keep-last", "1"); code != 0 {
		t.Fatal(errs)
	}
	_, out, _ = hs(t, "list", "--data-dir", dir, "--json")
	if strings.Count(out, `"id"`) != 1 {
		t.Fatalf("after prune --keep-last 1: %s", out)
	}
}

func TestCLI_ArchiveForgetGC(t *testing.T) {
	dir := testtree.New(t)
	repo := "file://" + t.TempDir() + "/repo"
	for i := 0; i < 3; i++ {
		os.WriteFile(filepath.Join(dir, "churn"), []byte(strings.Repeat("x", 1000*(i+1))), 0o644)
		_, out, _ := hs(t, "create", "--data-dir", dir, "--json")
		var res struct{ ID string }
		json.Unmarshal([]byte(lastLine(out)), &res)
		if code, _, errs := hs(t, "upload", "--data-dir", dir, "--id", res.ID, "--remote", repo, "-q"); code != 0 {
			t.Fatal(errs)
		}
	}
	if code, _, errs := hs(t, "archive", "forget", "--remote", repo); code != 2 || !strings.Contains(errs, "no keep rule") {
		t.Fatalf("forget without rules: %d %s", code, errs)
	}
	code, out, _ := hs(t, "archive", "forget", "--remote", repo, "--keep-last", "1", "--json")
	if code != 0 || strings.Count(out, `"reasons":[]`) != 2 {
		t.Fatalf("forget: %d %s", code, out)
	}
	code, out, _ = hs(t, "archive", "gc", "--remote", repo, "--json")
	if code != 0 || !strings.Contains(out, `"packsDeleted"`) {
		t.Fatalf("gc: %d %s", code, out)
	}
	// A live lock (another process's upload) makes gc exit 3.
	root := strings.TrimPrefix(repo, "file://")
	os.WriteFile(filepath.Join(root, "locks", "0123"), []byte(`{"kind":"shared","op":"upload x","host":"h","pid":1,"created":"2026-01-01T00:00:00Z","expires":"2099-01-01T00:00:00Z"}`), 0o644)
	if code, _, errs := hs(t, "archive", "gc", "--remote", repo); code != 3 || !strings.Contains(errs, "upload x") {
		t.Fatalf("gc under a live lock: %d %s", code, errs)
	}
	if code, out, _ := hs(t, "archive", "check", "--remote", repo, "--read-data", "--json"); code != 0 {
		t.Fatalf("check after gc: %d %s", code, out)
	}
}

func TestCLI_EncryptedArchive(t *testing.T) {
	dir := testtree.New(t)
	repo := "file://" + t.TempDir() + "/repo"
	keyFile := filepath.Join(t.TempDir(), "key")
	code, out, errs := hs(t, "archive", "keygen", "--output", keyFile, "--json")
	if code != 0 || !strings.Contains(out, `"keyId"`) {
		t.Fatalf("keygen: %d %q %s", code, out, errs)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(keyFile); len(strings.TrimSpace(string(b))) != 64 {
		t.Fatalf("key file: %q", b)
	}
	if code, _, errs := hs(t, "archive", "keygen", "--output", keyFile); code != 2 || !strings.Contains(errs, "already exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, errs)
	}
	if code, _, _ := hs(t, "archive", "keygen"); code != 2 {
		t.Fatalf("keygen without --output: %d", code)
	}
	// A key file others can read is refused, as ssh refuses a private key.
	open := filepath.Join(t.TempDir(), "open-key")
	b, _ := os.ReadFile(keyFile)
	os.WriteFile(open, b, 0o644)
	os.Chmod(open, 0o644)
	if code, _, errs := hs(t, "archive", "init", "--remote", repo, "--encryption-key-file", open); code != 2 || !strings.Contains(errs, "chmod 600") {
		t.Fatalf("a 0644 key file: %d %s", code, errs)
	}
	if code, out, errs := hs(t, "archive", "init", "--remote", repo, "--encryption-key-file", keyFile, "--json"); code != 0 || !strings.Contains(out, `"keyId":"`) {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	_, out, _ = hs(t, "create", "--data-dir", dir, "--json")
	var res struct{ ID string }
	json.Unmarshal([]byte(lastLine(out)), &res)
	if code, _, errs := hs(t, "upload", "--data-dir", dir, "--id", res.ID, "--remote", repo, "--encryption-key-file", keyFile, "-q"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := hs(t, "upload", "--data-dir", dir, "--id", res.ID, "--remote", repo); code != 5 || !strings.Contains(errs, "encryption-key-file") {
		t.Fatalf("upload without the key: %d %s", code, errs)
	}
	other := filepath.Join(t.TempDir(), "other")
	_, k2, _ := hs(t, "archive", "keygen", "--output", "-")
	os.WriteFile(other, []byte(k2), 0o600)
	if code, _, errs := hs(t, "archive", "ls", "--remote", repo, "--encryption-key-file", other); code != 5 || !strings.Contains(errs, "wrong encryption key") {
		t.Fatalf("wrong key: %d %s", code, errs)
	}
	os.WriteFile(other, []byte("not a key"), 0o600)
	if code, _, _ := hs(t, "archive", "ls", "--remote", repo, "--encryption-key-file", other); code != 2 {
		t.Fatalf("malformed key file: %d", code)
	}
	if code, out, _ := hs(t, "archive", "check", "--remote", repo, "--encryption-key-file", keyFile, "--read-data", "--json"); code != 0 {
		t.Fatalf("check: %d %s", code, out)
	}
}

func TestCLI_QuiesceHTTP(t *testing.T) {
	dir := testtree.New(t)
	var locks, unlocks int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/lock" {
			locks++
		} else {
			unlocks++
		}
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	code, _, errs := hs(t, "create", "--data-dir", dir, "--quiesce", "http", "--lock-url", srv.URL+"/lock", "--unlock-url", srv.URL+"/unlock", "--lock-token-file", tok, "-q")
	if code != 0 || locks != 1 || unlocks != 1 {
		t.Fatalf("exit %d (%s), %d locks, %d unlocks", code, errs, locks, unlocks)
	}
	if code, _, errs := hs(t, "create", "--data-dir", dir, "--quiesce", "http", "--lock-url", srv.URL+"/lock"); code != 2 || !strings.Contains(errs, "--unlock-url") {
		t.Fatalf("missing unlock url: %d %s", code, errs)
	}
}

func TestCLI_ArchiveInitBadPackSize(t *testing.T) {
	code, _, errs := hs(t, "archive", "init", "--remote", "file://"+t.TempDir(), "--pack-size", "5")
	if code != 2 || !strings.Contains(errs, "pack size 5") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// TestCLI_AppVersionAndEngine: --app-version must be major.minor.patch at
// create (exit 2); --app-engine is recorded and a restore under another
// engine, or one that does not say, is refused (exit 5); a snapshot that
// names no engine is restored with a warning that the rule was not checked.
func TestCLI_AppVersionAndEngine(t *testing.T) {
	dir := testtree.New(t)
	for _, v := range []string{"banana", "v2.0.0", "2.0", "1.x.3"} {
		if code, _, errb := hs(t, "create", "--data-dir", dir, "--quiesce", "none", "--app-version", v); code != exitUsage || !strings.Contains(errb, "major.minor.patch") {
			t.Fatalf("--app-version %s: exit %d %s", v, code, errb)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
		t.Fatalf("refused creates left %v", ents)
	}
	old := createID(t, "--data-dir", dir, "--quiesce", "none", "--app-version", "3.5.1-rc2")
	id := createID(t, "--data-dir", dir, "--quiesce", "none", "--app-version", "3.5.1", "--app-engine", "pebble")
	m, err := manifest.Read(filepath.Join(dir, "backups", id, "manifest.json"))
	if err != nil || m.AppEngine != "pebble" {
		t.Fatalf("manifest engine %q, %v", m.AppEngine, err)
	}
	for _, c := range []struct {
		engine string
		code   int
	}{{"sqlite", 5}, {"", 5}, {"pebble", 0}} {
		args := []string{"restore", "--data-dir", dir, "--id", id, "--quiesce", "none", "--dry-run", "--app-version", "3.5.1"}
		if c.engine != "" {
			args = append(args, "--app-engine", c.engine)
		}
		if code, out, errb := hs(t, args...); code != c.code {
			t.Fatalf("restore with engine %q: exit %d (want %d) %s %s", c.engine, code, c.code, out, errb)
		}
	}
	code, out, errb := hs(t, "restore", "--data-dir", dir, "--id", old, "--quiesce", "none", "--dry-run", "--app-version", "3.5.1", "--app-engine", "pebble")
	if code != 0 || !strings.Contains(out, "names no storage engine") {
		t.Fatalf("restore of a snapshot without an engine: exit %d %s %s", code, out, errb)
	}
}

// TestCLI_ListIsHonest: list says whether each manifest's seal holds: by
// the record hotsnap wrote beside it ("recorded"), by reading it whole
// when the record is missing or does not match ("proven"), and a manifest
// edited to flip potentiallyInconsistent is listed as damaged, in text and
// JSON, never as a normal snapshot.
func TestCLI_ListIsHonest(t *testing.T) {
	dir := testtree.New(t)
	a := createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "a")
	b := createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "b")
	c := createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "c")
	os.Remove(filepath.Join(dir, "backups", b, "seal.json"))
	mp := filepath.Join(dir, "backups", c, "manifest.json")
	m, _ := os.ReadFile(mp)
	forged := bytes.Replace(m, []byte(`"potentiallyInconsistent":false`), []byte(`"potentiallyInconsistent":true`), 1)
	if bytes.Equal(forged, m) {
		t.Fatal("no flag to flip")
	}
	os.WriteFile(mp+".new", forged, 0o600)
	os.Rename(mp+".new", mp)
	code, out, errb := hs(t, "list", "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("list: exit %d %s %s", code, out, errb)
	}
	var infos []report.ListItem
	if err := listed(out, "snapshots", &infos); err != nil || len(infos) != 3 {
		t.Fatalf("list --json: %v %s", err, out)
	}
	want := map[string]string{a: snapshot.SealRecorded, b: snapshot.SealProven, c: snapshot.SealDamaged}
	for _, i := range infos {
		if i.Seal != want[i.ID] || i.Available != (i.ID != c) {
			t.Errorf("%s: seal %q, want %q; available %v (%v)", i.ID, i.Seal, want[i.ID], i.Available, i.Problems)
		}
	}
	code, out, _ = hs(t, "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, c+"  DAMAGED") {
		t.Fatalf("list (text): %s", out)
	}
}

// TestCLI_QuiesceReport (no-silent-gaps): a create says what its
// quiescer stopped. In a fresh data dir with a plain writer that does not
// use the gate, the flock quiescer held 0 processes and the create says
// that no writer was coordinated; with a writer that has the gate open, it
// counts it.
func TestCLI_QuiesceReport(t *testing.T) {
	dir := testtree.New(t)
	plain := exec.Command("sh", "-c", `i=0; while :; do i=$((i+1)); echo $i > "$0/plain.tmp"; mv "$0/plain.tmp" "$0/plain.dat"; sleep 0.01; done`, dir)
	plain.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	// The whole group goes, and is gone before the data dir is removed: a
	// mv left running after its shell was killed renamed into the dir
	// while t.TempDir's cleanup emptied it ("directory not empty").
	defer func() {
		syscall.Kill(-plain.Process.Pid, syscall.SIGKILL)
		plain.Wait()
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-plain.Process.Pid, 0) == nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	code, out, errb := hs(t, "create", "--data-dir", dir, "--json")
	var res snapshot.CreateResult
	if code != 0 || json.Unmarshal([]byte(lastLine(out)), &res) != nil || res.Quiesced == nil {
		t.Fatalf("create: exit %d %s %s", code, out, errb)
	}
	if res.Quiesced.Mode != "flock" || res.Quiesced.Processes != 0 || !strings.Contains(strings.Join(res.Warnings, " "), "no writer was coordinated") {
		t.Fatalf("create beside a writer that ignores the gate: %+v %v", res.Quiesced, res.Warnings)
	}
	g, err := writegate.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// A writer process holding the gate open (this test process holds it
	// too, but a create never counts itself: use a child).
	child := exec.Command("sh", "-c", `exec 3<"$0/.hotsnap/gate.lock" 4<"$0/.hotsnap/write.lock"; exec sleep 60`, dir)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", child.Process.Pid)); len(fds) >= 5 || time.Now().After(deadline) {
			break
		}
	}
	code, out, errb = hs(t, "create", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "quiesced: flock, 1 process(es) held") || strings.Contains(out, "no writer was coordinated") {
		t.Fatalf("create with a writer at the gate: exit %d %s %s", code, out, errb)
	}
}

// TestCLI_Failsafes: a restore's failsafe shows in usage and failsafe
// list with the bytes it pins, and is dropped by failsafe drop or by
// prune --failsafe-older-than.
func TestCLI_Failsafes(t *testing.T) {
	dir := testtree.New(t)
	id := createID(t, "--data-dir", dir, "--quiesce", "none")
	big := make([]byte, 1<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(dir, "new.bin"), big, 0o644) // the restore moves it into the failsafe
	mustCode(t, 0, "", "restore", "--data-dir", dir, "--id", id, "--quiesce", "none")
	code, out, _ := hs(t, "usage", "--data-dir", dir, "--json")
	var u snapshot.UsageResult
	if code != 0 || json.Unmarshal([]byte(lastLine(out)), &u) != nil || len(u.Failsafes) != 1 || u.Failsafes[0].Bytes < 1<<20 || u.Failsafes[0].Restored != id {
		t.Fatalf("usage: exit %d %s", code, out)
	}
	mustCode(t, 0, u.Failsafes[0].Name, "failsafe", "list", "--data-dir", dir)
	out = mustCode(t, 0, "", "prune", "--data-dir", dir, "--failsafe-older-than", "1h", "--json")
	if !strings.Contains(out, `"failsafesDropped":[]`) {
		t.Fatalf("prune of failsafes older than 1h dropped a new one: %s", out)
	}
	mustCode(t, exitUsage, "one of", "failsafe", "drop", "--data-dir", dir)
	mustCode(t, exitNotFound, "not found", "failsafe", "drop", "--data-dir", dir, "--name", "nope")
	// (a failsafe's time is its name's, to the second: always before now)
	out = mustCode(t, 0, u.Failsafes[0].Name, "prune", "--data-dir", dir, "--failsafe-older-than", "1ns", "--json")
	code, out, _ = hs(t, "usage", "--data-dir", dir, "--json")
	if json.Unmarshal([]byte(lastLine(out)), &u) != nil || len(u.Failsafes) != 0 {
		t.Fatalf("usage after the drop: %s", out)
	}
}
