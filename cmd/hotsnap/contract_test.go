package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/report"
)

// checkLines holds a --json output to the contract (docs/json.md): every
// line one JSON object whose first field is "event", one of progress,
// warning, item, result, error; the last line a result or an error, an
// error exactly when the exit code is not 0 (a failed verify or check
// ends in its result, with the problems, and exits 4).
func checkLines(t *testing.T, args []string, code int, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if out == "" {
		t.Fatalf("hotsnap %s --json printed nothing (exit %d)", strings.Join(args, " "), code)
	}
	var last string
	for i, line := range lines {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("hotsnap %s: line %d is not a JSON object: %q", strings.Join(args, " "), i+1, line)
		}
		if !strings.HasPrefix(line, `{"event":"`) {
			t.Fatalf("hotsnap %s: line %d does not start with its event: %q", strings.Join(args, " "), i+1, line)
		}
		var ev string
		json.Unmarshal(m["event"], &ev)
		switch ev {
		case report.Progress, report.Warning, report.Item:
			if i == len(lines)-1 {
				t.Fatalf("hotsnap %s: the last line is a %s, not the result or the error: %q", strings.Join(args, " "), ev, line)
			}
		case report.Result, report.Error:
			if i != len(lines)-1 {
				t.Fatalf("hotsnap %s: a %s before the last line: %q", strings.Join(args, " "), ev, line)
			}
		default:
			t.Fatalf("hotsnap %s: line %d has event %q", strings.Join(args, " "), i+1, ev)
		}
		last = ev
	}
	if (last == report.Error) != (code != 0 && code != exitVerifyFailed) && !(last == report.Error && code == exitVerifyFailed) {
		t.Fatalf("hotsnap %s: exit %d with a last line %s", strings.Join(args, " "), code, last)
	}
}

// TestContract_JSONLines (contract): every command's --json output, on
// success and on a failure, is one object per line, each with its event,
// ending in a result or an error.
func TestContract_JSONLines(t *testing.T) {
	dir := testtree.New(t)
	repo := "file://" + t.TempDir() + "/repo"
	key := filepath.Join(t.TempDir(), "k")
	id := createID(t, "--data-dir", dir, "--quiesce", "none")
	id2 := createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "two")
	d := []string{"--data-dir", dir}
	r := []string{"--remote", repo}
	cat := func(parts ...[]string) []string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	repo2 := "file://" + t.TempDir() + "/encrypted"
	k1, k2 := filepath.Join(t.TempDir(), "k1"), filepath.Join(t.TempDir(), "k2")
	pol := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(pol, []byte(`{"label": "pol", "remote": "`+repo+`", "keepLocal": {"last": 5}, "keepRemote": {"last": 5}}`), 0o644)
	cases := []struct {
		args []string
		code int
	}{
		{cat([]string{"create", "--quiesce", "none", "--label", "three"}, d), 0},
		{cat([]string{"create", "--quiesce", "none", "--label", "bad label"}, d), exitUsage},
		{cat([]string{"list"}, d), 0},
		{[]string{"list"}, exitUsage},
		{cat([]string{"verify", "--id", id}, d), 0},
		{cat([]string{"verify", "--id", "2020-01-01T00.00.00Z_nope"}, d), exitNotFound},
		{cat([]string{"ls", "--id", id}, d), 0},
		{cat([]string{"ls", "--json", "--id", id}, d, []string{"db"}), 0},
		{cat([]string{"ls", "--json", "--id", id}, d, []string{"no/such/path"}), exitNotFound},
		{cat([]string{"diff", "--json"}, d, []string{id, id2}), 0},
		{cat([]string{"diff", "--json"}, d, []string{id}), exitUsage},
		{cat([]string{"usage"}, d), 0},
		{cat([]string{"prune", "--keep-last", "1", "--dry-run"}, d), 0},
		{cat([]string{"failsafe", "list"}, d), 0},
		{cat([]string{"recover"}, d), 0},
		{cat([]string{"restore", "--id", id, "--dry-run", "--quiesce", "none"}, d), 0},
		{cat([]string{"restore", "--id", "2020-01-01T00.00.00Z_nope", "--quiesce", "none"}, d), exitNotFound},
		{cat([]string{"upload", "--id", id}, d, r), 0},
		{cat([]string{"upload", "--id", id}, d), exitUsage},
		{cat([]string{"archive", "ls"}, r), 0},
		{cat([]string{"archive", "check"}, r), 0},
		{cat([]string{"archive", "forget", "--keep-last", "1", "--dry-run"}, r), 0},
		{cat([]string{"archive", "gc", "--dry-run"}, r), 0},
		{cat([]string{"archive", "unlock"}, r), 0},
		{cat([]string{"archive", "ls", "--remote", "ftp://x"}), exitUsage},
		{[]string{"archive", "keygen", "--output", key}, 0},
		{[]string{"archive", "keygen", "--output", k1}, 0},
		{[]string{"archive", "keygen", "--output", k2}, 0},
		{[]string{"archive", "init", "--remote", repo2, "--encryption-key-file", k1}, 0},
		{[]string{"archive", "init", "--remote", repo2, "--encryption-key-file", k1}, exitError},
		{[]string{"archive", "key", "add", "--remote", repo2, "--encryption-key-file", k1, "--new-key-file", k2}, 0},
		{[]string{"archive", "key", "list", "--remote", repo2, "--encryption-key-file", k2}, 0},
		{[]string{"archive", "key", "list", "--remote", repo2}, exitUsage},
		{[]string{"archive", "ls", "--remote", repo2}, 5},
		{cat([]string{"run", "--quiesce", "none", "--policy", pol}, d), 0},
		{cat([]string{"run", "--quiesce", "none"}, d), exitUsage},
		{cat([]string{"failsafe", "drop", "--all"}, d), 0},
		{cat([]string{"download", "--id", id, "--target", filepath.Join(t.TempDir(), "t")}, r), 0},
		{cat([]string{"download", "--id", "2020-01-01T00.00.00Z_nope", "--target", filepath.Join(t.TempDir(), "t")}, r), exitNotFound},
		{cat([]string{"delete", "--id", id2}, d), 0},
		{cat([]string{"delete", "--id", id2}, d), exitNotFound},
		{[]string{"version"}, 0},
		{[]string{"create", "--lable", "x"}, exitUsage},
	}
	for _, c := range cases {
		args := append([]string{}, c.args...)
		if !strings.Contains(strings.Join(args, " "), "--json") {
			args = append(args, "--json")
		}
		code, out, errOut := hs(t, args...)
		if code != c.code {
			t.Fatalf("hotsnap %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, c.code, out, errOut)
		}
		checkLines(t, args, code, out)
		validateLines(t, args, out)
	}
	// A flag after the arguments is refused, never taken as a path.
	code, out, _ := hs(t, "ls", "--data-dir", dir, "--id", id, "db", "--json")
	if code != exitUsage || !strings.Contains(out+"", "") {
		t.Fatalf("ls PATH --json: exit %d %s", code, out)
	}
	os.Remove(key)
}

// TestContract_Usage: a mistyped flag is named as written, with a
// suggestion; a duration takes a bare number as seconds.
func TestContract_Usage(t *testing.T) {
	dir := testtree.New(t)
	if _, _, errOut := hs(t, "create", "--data-dir", dir, "--lable", "x"); !strings.Contains(errOut, "unknown flag --lable; did you mean --label?") {
		t.Fatalf("a mistyped flag: %s", errOut)
	}
	if code, out, errOut := hs(t, "create", "--data-dir", dir, "--quiesce", "none", "--max-wait-for-lock", "5", "--lock-period=0.5", "--json"); code != 0 || !bytes.Contains([]byte(out), []byte(`"event":"result"`)) {
		t.Fatalf("bare seconds: exit %d %s %s", code, out, errOut)
	}
	if _, out, _ := hs(t, "version"); !strings.Contains(out, "manifest format") {
		t.Fatalf("version: %s", out)
	}
}
