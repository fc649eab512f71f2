package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testuser"
)

// TestSecurity_PolicyFileAppWritable (security-policy-file-app-writable):
// a policy file the application's user can change (its own, group- or
// world-writable, in a directory of the application's, or reached through
// a symlink) is refused before anything is created, pruned or forgotten.
func TestSecurity_PolicyFileAppWritable(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testuser.DataDir(t)
	archive := filepath.Join(t.TempDir(), "archive")
	body := `{"remote": "file://` + archive + `", "keepLocal": {"last": 1}}`
	good := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(good, []byte(body), 0o644)
	appDir := filepath.Join(dir, "conf") // a directory of the application's
	as(t, fmt.Sprintf("mkdir %s && printf '%%s' '%s' > %s/policy.json", appDir, body, appDir))
	rootInAppDir := filepath.Join(appDir, "root-policy.json")
	os.WriteFile(rootInAppDir, []byte(body), 0o644) // root's file, in a directory the app may rename it out of
	writable := filepath.Join(t.TempDir(), "writable.json")
	os.WriteFile(writable, []byte(body), 0o644)
	os.Chmod(writable, 0o666)
	groupw := filepath.Join(t.TempDir(), "groupw.json")
	os.WriteFile(groupw, []byte(body), 0o644)
	os.Chmod(groupw, 0o664)
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("agent-token-0123456789abcdef\n"), 0o600)
	linkDir := filepath.Join(t.TempDir(), "via")
	os.Symlink(filepath.Dir(good), linkDir)
	for _, c := range []struct{ name, path, says string }{
		{"owned by the application", filepath.Join(appDir, "policy.json"), "is owned by uid"},
		{"in the application's directory", rootInAppDir, "directory " + appDir + " is owned by uid"},
		{"world-writable", writable, "others may write it"},
		{"group-writable", groupw, "others may write it"},
		{"through a symlinked directory", filepath.Join(linkDir, "policy.json"), "is a symlink"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"run", "--data-dir", dir, "--policy", c.path, "--quiesce", "none"},
				{"agent", "--data-dir", dir, "--node-id", "n1", "--policy", c.path, "--token-file", token, "--etcd", "http://127.0.0.1:1"},
			} {
				code, out, errb := hs(t, args...)
				if code != exitUsage || !strings.Contains(out+errb, c.says) || !strings.Contains(out+errb, "fix:") {
					t.Fatalf("%s: exit %d %s %s (want exit 2 saying %q and the fix)", args[0], code, out, errb, c.says)
				}
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
		t.Fatalf("a refused policy made snapshots: %v", ents)
	}
	// The same policy, root's, in root's directory, runs.
	if code, out, errb := hs(t, "run", "--data-dir", dir, "--policy", good, "--quiesce", "none"); code != 0 {
		t.Fatalf("a trusted policy: exit %d %s %s", code, out, errb)
	}
}
