package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
	"github.com/hotsnap/hotsnap/snapshot/freezer/freezertest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
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

// hostileNames are names the application may give its files: each would
// forge a line of text output, or send the terminal an escape, if printed
// raw.
var hostileNames = []string{
	"x\n-rwsr-xr-x     0:0     4096 2026-01-01 00:00:00 forged-suid",
	"y\n- file    removed-by-nobody",
	"esc\x1b[2J\x1b[Hclear",
	"bad\xff\xfeutf8",
	"rtl\u202egnp.exe",
}

// noControl fails the test if any line of out holds a control character
// or a forged line (one that starts as the names' payloads do).
func noControl(t *testing.T, what, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		for _, r := range line {
			if r < 0x20 && r != '\t' || r == 0x7f || r == 0x1b || r == '\u202e' || r == utf8.RuneError {
				t.Fatalf("%s: a line holds the control character %U: %q", what, r, line)
			}
		}
		if strings.HasPrefix(line, "-rwsr-xr-x") || strings.HasPrefix(line, "- file    removed-by-nobody") {
			t.Fatalf("%s: a forged line: %q", what, line)
		}
	}
}

// TestSecurity_NamesInTextOutput (security-names-unescaped-in-text-output):
// names the application chose are quoted in every text output that prints
// them (ls, diff, diff --live, create's warnings, restore's plan, verify,
// errors): one line each, no control character.
func TestSecurity_NamesInTextOutput(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testuser.DataDir(t)
	for _, n := range hostileNames {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Lchown(filepath.Join(dir, n), testuser.UID, testuser.GID)
	}
	// A fifo under a hostile name: create leaves it out with a warning.
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo\n  warning: forged"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errb := hs(t, "create", "--data-dir", dir, "--quiesce", "none", "--label", "one")
	if code != 0 || !strings.Contains(out, `fifo\n  warning: forged`) {
		t.Fatalf("create: exit %d %s %s", code, out, errb)
	}
	noControl(t, "create", out+errb)
	id1 := strings.Fields(strings.SplitN(out, "\n", 2)[0])[1]
	// The second snapshot lacks one hostile file and has a new one.
	os.Remove(filepath.Join(dir, hostileNames[1]))
	os.WriteFile(filepath.Join(dir, "new\nfile"), []byte("n"), 0o644)
	code, out, errb = hs(t, "create", "--data-dir", dir, "--quiesce", "none", "--label", "two")
	if code != 0 {
		t.Fatalf("create: exit %d %s %s", code, out, errb)
	}
	id2 := strings.Fields(strings.SplitN(out, "\n", 2)[0])[1]
	for _, args := range [][]string{
		{"ls", "--data-dir", dir, "--id", id1},
		{"diff", "--data-dir", dir, id1, id2},
		{"diff", "--data-dir", dir, "--live", id1},
		{"restore", "--data-dir", dir, "--id", id1, "--dry-run"},
	} {
		code, out, errb := hs(t, args...)
		if code != 0 || !strings.Contains(out, `\n`) {
			t.Fatalf("%s: exit %d %s %s", args[0], code, out, errb)
		}
		noControl(t, strings.Join(args[:2], " "), out+errb)
	}
	// verify and errors: a snapshot file changed under a hostile name.
	l := filepath.Join(dir, "backups", id1, "data", hostileNames[0])
	os.WriteFile(l+".tmp", []byte("changed"), 0o644)
	os.Rename(l+".tmp", l)
	code, out, errb = hs(t, "verify", "--data-dir", dir, "--id", id1)
	if code != exitVerifyFailed || !strings.Contains(out+errb, `forged-suid`) {
		t.Fatalf("verify of a changed file: exit %d %s %s", code, out, errb)
	}
	noControl(t, "verify", out+errb)
}

// TestSecurity_SignalPidFileDirSymlink (security-signal-pidfile-dir-symlink):
// the application replaces a directory above its pid file with a symlink
// to a directory holding a root-owned pid file of the same name, which
// names root's processes; or root's own pid file stands in a directory of
// the application's. hotsnap (root) refuses both, and root's processes
// are never stopped.
func TestSecurity_SignalPidFileDirSymlink(t *testing.T) {
	testuser.RequireRoot(t)
	victim, rootPid, files := startTree(t) // root's processes; their pid file is root's, in root's directory
	dir := testuser.DataDir(t)
	if _, err := quiesce.ReadPidFile(rootPid); err != nil {
		t.Fatalf("root's own pid file in root's directory: %v", err)
	}
	run := filepath.Join(dir, "run")
	as(t, fmt.Sprintf("ln -s %s %s", filepath.Dir(rootPid), run))
	code, _, errb := hs(t, "create", "--data-dir", dir, "--quiesce", "signal", "--pid-file", filepath.Join(run, filepath.Base(rootPid)))
	if code != exitVerifyFailed || !strings.Contains(errb, "symlink") {
		t.Fatalf("a pid file under a symlinked directory: exit %d %s", code, errb)
	}
	freezertest.WaitAdvancing(t, files...)
	// Root's pid file in the application's directory: only as trusted as
	// the application's user, who may not aim hotsnap at root's process.
	as(t, fmt.Sprintf("rm %s && mkdir %s", run, run))
	planted := filepath.Join(run, "app.pid")
	os.WriteFile(planted, []byte(strconv.Itoa(victim)), 0o644)
	code, _, errb = hs(t, "create", "--data-dir", dir, "--quiesce", "signal", "--pid-file", planted)
	if code != exitVerifyFailed || !strings.Contains(errb, "another user's process") {
		t.Fatalf("root's pid file in the application's directory: exit %d %s", code, errb)
	}
	freezertest.WaitAdvancing(t, files...)
	if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
		t.Fatalf("a refused create left %v", ents)
	}
}

// TestSecurity_CaptureForeignHardlinkRace (security-capture-foreign-hardlink-race):
// with fs.protected_hardlinks=0 the application's user hard-links a
// root-only file from outside the data dir into it and swaps that link
// with its own file (renameat2 RENAME_EXCHANGE) while creates run: the
// name the listing saw as the user's own may hold root's inode when it is
// linked or copied. The capture checks the inode it linked or opened, so
// root's file never enters a snapshot.
func TestSecurity_CaptureForeignHardlinkRace(t *testing.T) {
	testuser.RequireRoot(t)
	const knob = "/proc/sys/fs/protected_hardlinks"
	was, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knob, []byte("0"), 0o644); err != nil {
		t.Fatalf("set %s: %v", knob, err)
	}
	t.Cleanup(func() { os.WriteFile(knob, was, 0o644) })
	dir := secureDataDir(t)
	victim := testuser.NewVictim(t)
	own, link := filepath.Join(dir, "own"), filepath.Join(dir, "link")
	as(t, fmt.Sprintf("echo mine > %s && ln %s %s", own, filepath.Join(victim.Dir, "secret"), link))
	stop := filepath.Join(filepath.Dir(dir), "stop")
	swapper := testuser.Command(t, "exchange", stop, own, link)
	if err := swapper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(stop, nil, 0o644)
		swapper.Wait()
	}()
	created, leftOut := 0, 0
	for i := 0; i < 100; i++ { // (without the check, about 1 in 40 creates took root's file)
		args := []string{"create", "--data-dir", dir, "--json", "--quiesce", "none"}
		if i%2 == 1 {
			args = append(args, "--copy", "*") // copies read the bytes
		}
		code, out, errs := hs(t, args...)
		switch code {
		case 0:
			created++
			leftOut += strings.Count(out, "left out: a file of uid 0")
		case exitError, exitVerifyFailed:
			if !strings.Contains(out+errs, "error") {
				t.Fatalf("create failed without saying why: %s %s", out, errs)
			}
		default:
			t.Fatalf("create exit %d: %s %s", code, out, errs)
		}
	}
	os.WriteFile(stop, nil, 0o644)
	if err := swapper.Wait(); err != nil {
		t.Fatalf("the swapper failed: %v", err)
	}
	t.Logf("%d creates, %d times root's file was left out", created, leftOut)
	if created == 0 || leftOut == 0 {
		t.Fatalf("%d creates succeeded, root's file left out %d times: nothing was proven", created, leftOut)
	}
	victim.NoSecretIn(t, filepath.Join(dir, "backups"))
	victim.NoSecretIn(t, filepath.Join(dir, ".hotsnap"))
	// (victim.Check does not apply: the attacker's own link changed the
	// secret's link count and ctime.)
}

// TestSecurity_CopyCaptureMountedSetuid (security-copy-capture-fuse-fake-setuid-root):
// the application mounts another filesystem over one of its own files (a
// FUSE daemon reporting uid 0 and mode 04755 there; here a bind mount of
// a root-owned 04755 file from a tmpfs, which looks the same to the
// capture). Captured as a copy (--copy '*.log', as the systemd example
// does) or as a link, the file is left out with a warning: never read,
// never given the reported owner or mode. Neither the snapshot, nor a
// restore --target, nor a whole restore makes a setuid file.
func TestSecurity_CopyCaptureMountedSetuid(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testuser.DataDir(t)
	as(t, fmt.Sprintf("echo log > %s/db.log", dir))
	shm, err := os.MkdirTemp("/dev/shm", "hotsnap-fuse-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shm)
	evil := filepath.Join(shm, "evil")
	os.WriteFile(evil, []byte("#!/bin/sh\nid\n"), 0o755)
	if err := syscall.Chmod(evil, 0o4755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "db.log")
	if err := syscall.Mount(evil, target, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	defer syscall.Unmount(target, syscall.MNT_DETACH)
	var ids []string
	for _, args := range [][]string{{"--copy", "*.log"}, {}} {
		code, out, errb := hs(t, append([]string{"create", "--data-dir", dir, "--quiesce", "none"}, args...)...)
		if code != 0 || !strings.Contains(out, "db.log: left out: on another filesystem") {
			t.Fatalf("create %v over a mount: exit %d %s %s", args, code, out, errb)
		}
		ids = append(ids, strings.Fields(strings.SplitN(out, "\n", 2)[0])[1])
	}
	syscall.Unmount(target, syscall.MNT_DETACH)
	testuser.NoSetID(t, dir, nil)
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errb := hs(t, "restore", "--data-dir", dir, "--id", ids[0], "--target", restored); code != 0 {
		t.Fatalf("restore --target: exit %d %s %s", code, out, errb)
	}
	testuser.NoSetID(t, restored, nil)
	if code, out, errb := hs(t, "restore", "--data-dir", dir, "--id", ids[0], "--quiesce", "none"); code != 0 {
		t.Fatalf("restore: exit %d %s %s", code, out, errb)
	}
	testuser.NoSetID(t, dir, nil)
	if b, err := os.ReadFile(target); err == nil {
		t.Fatalf("the mounted file came back from the snapshot: %q", b)
	}
}

// TestSecurity_DownloadProofLiveInode (security-download-proof-live-inode-tamper):
// a download takes an unchanged file from the newest local snapshot by
// hard-linking its inode, which is the live file the application writes.
// The application rewrites it in place (same size, mtime put back) before
// the proof's mark is taken (here: the mark is taken again after the
// write, which is what that race gives). The proof does not cover a file
// of several links, so the restore re-hashes and refuses the tampered
// bytes (exit 4), never saying "verified": "proof".
func TestSecurity_DownloadProofLiveInode(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testuser.DataDir(t)
	remote := "file://" + filepath.Join(t.TempDir(), "archive")
	mustCode(t, 0, "", "archive", "init", "--remote", remote)
	id1 := createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "one")
	mustCode(t, 0, "", "upload", "--data-dir", dir, "--id", id1, "--remote", remote)
	createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "two")
	mustCode(t, 0, "", "delete", "--data-dir", dir, "--id", id1)
	mustCode(t, 0, `"filesLocal":4`, "download", "--data-dir", dir, "--id", id1, "--remote", remote, "--json")
	got := filepath.Join(dir, "backups", id1, "data", "a.txt")
	var st syscall.Stat_t
	if err := syscall.Stat(got, &st); err != nil || st.Nlink < 2 {
		t.Fatalf("the download did not take a.txt from the local snapshot by link (nlink %d, %v): nothing to prove", st.Nlink, err)
	}
	// The application writes its live file in place, size and mtime put back.
	live := filepath.Join(dir, "a.txt")
	as(t, fmt.Sprintf("t=$(stat -c %%y %[1]s) && printf 'ALPHA\\n' | dd of=%[1]s conv=notrunc 2>/dev/null && touch -d \"$t\" %[1]s", live))
	if b, _ := os.ReadFile(got); string(b) != "ALPHA\n" {
		t.Fatalf("the downloaded file is not the live inode: %q", b)
	}
	// The proof's mark, taken after that write (the race's outcome).
	backups, _ := fsutil.OpenDir(filepath.Join(dir, "backups"))
	mark, err := fsutil.CtimeMark(backups)
	backups.Close()
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, "backups", id1, "proof.json")
	b, _ := json.Marshal(map[string]any{"version": 1, "id": id1, "provenAt": time.Now().UTC(), "ctimeMarkNs": mark})
	os.WriteFile(pf+".new", b, 0o644)
	os.Rename(pf+".new", pf)
	code, out, errb := hs(t, "restore", "--data-dir", dir, "--id", id1, "--dry-run", "--json")
	if code != exitVerifyFailed || strings.Contains(out, `"verified":"proof"`) || !strings.Contains(out+errb, "a.txt") {
		t.Fatalf("restore of a tampered borrowed file: exit %d %s %s", code, out, errb)
	}
	// The restore itself, whose build checks the proof as it links: the
	// same refusal, and the live file is left as the application wrote it.
	code, out, errb = hs(t, "restore", "--data-dir", dir, "--id", id1, "--quiesce", "none", "--json")
	if code != exitVerifyFailed || strings.Contains(out, `"verified":"proof"`) || !strings.Contains(out+errb, "a.txt") {
		t.Fatalf("restore of a tampered borrowed file: exit %d %s %s", code, out, errb)
	}
	if b, _ := os.ReadFile(live); string(b) != "ALPHA\n" {
		t.Fatalf("a refused restore changed the live file: %q", b)
	}
}

// TestSecurity_LayoutDirsRenamed: in the default layout, backups/ and
// .hotsnap/ stand in the application's data dir, which its user may
// rename things in. Renamed away (and a fake put in their place), every
// outcome fails closed: the fake is refused, a create never captures the
// real snapshots or hotsnap's state as data, and a restore never moves
// them into a failsafe.
func TestSecurity_LayoutDirsRenamed(t *testing.T) {
	testuser.RequireRoot(t)
	dir := secureDataDir(t) // .hotsnap is the application's, as with the write gate
	id := createID(t, "--data-dir", dir, "--quiesce", "none", "--label", "one")
	backups := func() []string {
		ents, _ := os.ReadDir(filepath.Join(dir, "backups"))
		var ids []string
		for _, e := range ents {
			ids = append(ids, e.Name())
		}
		return ids
	}

	// backups/ renamed, a fake in its place: refused, as not hotsnap's.
	as(t, fmt.Sprintf("mv %[1]s/backups %[1]s/stolen && mkdir -p %[1]s/backups/2026-01-01T00.00.00Z_fake/data", dir))
	mustCode(t, exitUsage, "--backups-dir", "list", "--data-dir", dir)
	mustCode(t, exitUsage, "--backups-dir", "create", "--data-dir", dir, "--quiesce", "none")
	// The fake removed: a create makes a new backups dir, finds the real
	// one inside the data dir, and refuses to take it as data.
	as(t, fmt.Sprintf("rm -r %s/backups", dir))
	mustCode(t, exitVerifyFailed, "stolen is marked", "create", "--data-dir", dir, "--quiesce", "none")
	if got := backups(); len(got) != 0 {
		t.Fatalf("a refused create published %v", got)
	}
	// Moved back (by root, after checking it): all is as before.
	os.Remove(filepath.Join(dir, "backups"))
	if err := os.Rename(filepath.Join(dir, "stolen"), filepath.Join(dir, "backups")); err != nil {
		t.Fatal(err)
	}
	mustCode(t, 0, id, "list", "--data-dir", dir)

	// .hotsnap/ renamed (its private dir holds journals, thaw records and
	// failsafes): neither a create nor a restore takes or moves it.
	as(t, fmt.Sprintf("mv %[1]s/.hotsnap %[1]s/elsewhere", dir))
	mustCode(t, exitVerifyFailed, "elsewhere/private is marked", "create", "--data-dir", dir, "--quiesce", "none")
	mustCode(t, exitVerifyFailed, "would move it into the failsafe", "restore", "--data-dir", dir, "--id", id, "--quiesce", "none")
	if _, err := os.Stat(filepath.Join(dir, "elsewhere", "private")); err != nil {
		t.Fatalf("the renamed state dir was moved: %v", err)
	}
	if got := backups(); len(got) != 1 || got[0] != id {
		t.Fatalf("snapshots now: %v", got)
	}
}

// TestSecurity_HungFUSE: the application mounts a FUSE filesystem whose
// daemon never answers over one of its files and one of its directories;
// its root claims to be a setuid-root file. A create (with --copy too)
// neither hangs nor takes the file: it is seen as another filesystem by
// its cached attributes, asked nothing, and left out (the directory is
// refused as a mount point, naming --exclude). Run as a process with a
// deadline, so a hang fails the test instead of holding it.
func TestSecurity_HungFUSE(t *testing.T) {
	testuser.RequireRoot(t)
	bin := buildTestBinary(t)
	dir := testuser.DataDir(t)
	as(t, fmt.Sprintf("echo log > %[1]s/db.log && mkdir %[1]s/mnt", dir))
	testserver.MountHungFUSE(t, filepath.Join(dir, "db.log"), false, 0o4755)
	run := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("hotsnap %v hung on the FUSE mount: %s", args, out)
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, string(out)
	}
	for _, args := range [][]string{{}, {"--copy", "*.log"}} {
		code, out := run(append([]string{"create", "--data-dir", dir, "--quiesce", "none"}, args...)...)
		if code != 0 || !strings.Contains(out, "db.log: left out: on another filesystem") {
			t.Fatalf("create %v over a hung FUSE file: exit %d %s", args, code, out)
		}
	}
	testserver.MountHungFUSE(t, filepath.Join(dir, "mnt"), true, 0o755)
	code, out := run("create", "--data-dir", dir, "--quiesce", "none")
	if code == 0 || !strings.Contains(out, "mnt is a mount point") || !strings.Contains(out, "--exclude") {
		t.Fatalf("create over a hung FUSE dir: exit %d %s", code, out)
	}
	if code, out := run("create", "--data-dir", dir, "--quiesce", "none", "--exclude", "mnt"); code != 0 {
		t.Fatalf("create with the mount excluded: exit %d %s", code, out)
	}
	testuser.NoSetID(t, filepath.Join(dir, "backups"), nil)
}

// TestSecurity_SetIDFromUnauthenticatedArchive: an unencrypted archive
// cannot prove who wrote its manifests, so whoever can write the bucket
// could name a setuid-root file. A download as root of a snapshot that
// names setuid or setgid files is refused before anything is written,
// into the backups dir or a --target, unless --allow-setid says the
// archive's storage is trusted; from an encrypted (authenticated) archive
// they are made as recorded.
func TestSecurity_SetIDFromUnauthenticatedArchive(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testtree.New(t)
	suid := filepath.Join(dir, "tool")
	os.WriteFile(suid, []byte("#!/bin/sh\n"), 0o755)
	if err := syscall.Chmod(suid, 0o4755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "key")
	mustCode(t, 0, "", "archive", "keygen", "--output", key)
	plain := "file://" + filepath.Join(t.TempDir(), "plain")
	sealed := "file://" + filepath.Join(t.TempDir(), "sealed")
	mustCode(t, 0, "", "archive", "init", "--remote", plain)
	mustCode(t, 0, "", "archive", "init", "--remote", sealed, "--encryption-key-file", key)
	id := createID(t, "--data-dir", dir, "--quiesce", "none")
	mustCode(t, 0, "", "upload", "--data-dir", dir, "--id", id, "--remote", plain)
	mustCode(t, 0, "", "upload", "--data-dir", dir, "--id", id, "--remote", sealed, "--encryption-key-file", key)
	mustCode(t, 0, "", "delete", "--data-dir", dir, "--id", id)
	target := filepath.Join(t.TempDir(), "out")
	mustCode(t, exitVerifyFailed, "--allow-setid", "download", "--data-dir", dir, "--id", id, "--remote", plain)
	mustCode(t, exitVerifyFailed, "--allow-setid", "download", "--id", id, "--remote", plain, "--target", target)
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a refused download --target left its target")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
		t.Fatalf("a refused download left %v", ents)
	}
	setuid := func(p string) bool {
		var st syscall.Stat_t
		return syscall.Stat(p, &st) == nil && st.Mode&syscall.S_ISUID != 0 && st.Uid == 0
	}
	mustCode(t, 0, "", "download", "--id", id, "--remote", plain, "--target", target, "--allow-setid")
	if !setuid(filepath.Join(target, "tool")) {
		t.Fatal("--allow-setid: the setuid file was not made as recorded")
	}
	mustCode(t, 0, "", "download", "--data-dir", dir, "--id", id, "--remote", sealed, "--encryption-key-file", key)
	if !setuid(filepath.Join(dir, "backups", id, "data", "tool")) {
		t.Fatal("from an encrypted archive: the setuid file was not made as recorded")
	}
}
