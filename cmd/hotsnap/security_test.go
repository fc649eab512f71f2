package main

// The security tests attack hotsnap, run as root, the way the application's
// own unprivileged user could (README "Security"): as a throwaway uid they
// plant symlinks, forged journals and manifests, swap directories during
// captures, and use the lock files. Each proves that nothing outside the data
// dir changed (the victim tree: every byte, mode, owner and ctime), that no
// setuid file appears, and that hotsnap fails clearly where it must. They need
// root, and fail rather than skip under CI=true.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// attackerRoles are what the test binary does as the throwaway user.
var attackerRoles = map[string]testuser.Role{
	// swap STOPFILE NAME TARGET [NAME TARGET...]: until STOPFILE exists,
	// swap each NAME (a dir or file of the data dir) with a symlink to
	// TARGET and back, as fast as it can.
	"swap": func(args []string) error {
		stop, pairs := args[0], args[1:]
		for n := 0; ; n++ {
			if n%64 == 0 {
				if _, err := os.Lstat(stop); err == nil {
					return nil
				}
			}
			for i := 0; i+1 < len(pairs); i += 2 {
				name, target := pairs[i], pairs[i+1]
				if os.Rename(name, name+".real") == nil {
					os.Symlink(target, name)
					os.Remove(name)
					os.Rename(name+".real", name)
				}
			}
		}
	},
	// exchange STOPFILE A B: until STOPFILE exists, swap the names A and B
	// (renameat2 RENAME_EXCHANGE) as fast as it can.
	"exchange": func(args []string) error {
		stop, a, b := args[0], args[1], args[2]
		for n := 0; ; n++ {
			if n%64 == 0 {
				if _, err := os.Lstat(stop); err == nil {
					return nil
				}
			}
			unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
		}
	},
	// writer DATADIR FILE: one write transaction under the write gate.
	"writer": func(args []string) error {
		g, err := writegate.Open(args[0])
		if err != nil {
			return err
		}
		defer g.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tx, err := g.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.End()
		return os.WriteFile(filepath.Join(args[0], args[1]), []byte("written under the gate\n"), 0o644)
	},
	// forge SNAPDIR ID PATH: seal a manifest of the tree SNAPDIR/data as
	// the user sees it, claiming PATH is root's and setuid.
	"forge": func(args []string) error {
		return forgeManifest(args[0], args[1], args[2])
	},
}

// forgeManifest writes SNAPDIR/manifest.json for the tree below SNAPDIR/data,
// sealed as hotsnap seals (the seal is a plain hash: anyone can make one),
// lying that rel is owned by root with mode 04755.
func forgeManifest(snapDir, id, rel string) error {
	tree := filepath.Join(snapDir, "data")
	m := &manifest.Manifest{Format: manifest.Format, ID: id, Label: id[strings.IndexByte(id, '_')+1:],
		CreatedAt: time.Now().UTC(), Node: manifest.Node{ID: "local"}, Topology: manifest.Topology{Nodes: []string{"local"}}}
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == tree {
			return err
		}
		r, _ := filepath.Rel(tree, p)
		st, err := fsutil.Lstat(p)
		if err != nil {
			return err
		}
		e := manifest.Entry{Path: manifest.Name(filepath.ToSlash(r)), Mode: st.Perm(), UID: st.UID, GID: st.GID,
			MtimeNs: st.MtimeNs, Inode: manifest.Inode{Dev: st.Dev, Ino: st.Ino}}
		switch {
		case st.IsDir():
			e.Type = manifest.TypeDir
		default:
			e.Type, e.Size, e.Capture = manifest.TypeFile, st.Size, manifest.CaptureCopy
			if e.BLAKE3, _, err = manifest.HashFile(p); err != nil {
				return err
			}
		}
		if r == rel {
			e.UID, e.GID, e.Mode = 0, 0, 0o4755
		}
		m.Entries = append(m.Entries, e)
		return nil
	})
	if err != nil {
		return err
	}
	m.Totals = m.ComputeTotals()
	b, err := m.Encode()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(snapDir, "manifest.json"), b, 0o644)
}

// as runs a shell script as the throwaway user and fails the test if it fails.
func as(t *testing.T, script string) {
	t.Helper()
	if out, err := testuser.Sh(script); err != nil {
		t.Fatalf("as uid %d: %s: %v\n%s", testuser.UID, script, err, out)
	}
}

// mustCode runs hotsnap and requires its exit code (and, when says is not
// empty, that its output says it). It returns stdout.
func mustCode(t *testing.T, code int, says string, args ...string) string {
	t.Helper()
	got, out, errs := hs(t, args...)
	if got != code || !strings.Contains(out+errs, says) {
		t.Fatalf("hotsnap %s: exit %d (want %d), output %s %s (want it to say %q)", strings.Join(args, " "), got, code, out, errs, says)
	}
	return out
}

// secureDataDir is a data dir of the throwaway user whose .hotsnap the user
// made first, as an application using the write gate does: the user may plant
// anything there.
func secureDataDir(t *testing.T) string {
	t.Helper()
	dir := testuser.DataDir(t)
	as(t, fmt.Sprintf("mkdir %s/.hotsnap", dir))
	return dir
}

func createID(t *testing.T, args ...string) string {
	t.Helper()
	out := mustCode(t, 0, "", append([]string{"create", "--json"}, args...)...)
	var r struct{ ID string }
	json.Unmarshal([]byte(lastLine(out)), &r)
	return r.ID
}

// TestSecurity_JournalEscape (security-journal-escape): forged restore
// journals naming paths outside hotsnap's places. A read-only command never
// acts on a journal; a mutating one refuses it with a clear error (exit 4)
// and moves nothing.
func TestSecurity_JournalEscape(t *testing.T) {
	testuser.RequireRoot(t)
	dir := secureDataDir(t)
	victim := testuser.NewVictim(t)
	id := createID(t, "--data-dir", dir)
	before := dataState(t, dir)
	escape := fmt.Sprintf(`{"id":"%s","failsafe":"%s","restoring":"%s","source":"../../..%s","moveOut":["../../..%s","a.txt"],"moveIn":["../x"]}`,
		id, victim.Dir, victim.Dir+"/dir", victim.Dir, victim.Dir)

	t.Run("in the shared state dir, by the user", func(t *testing.T) {
		as(t, fmt.Sprintf("printf '%%s' '%s' > %s/.hotsnap/restore.journal", escape, dir))
		mustCode(t, 0, id, "list", "--data-dir", dir)
		mustCode(t, 0, "", "verify", "--data-dir", dir, "--id", id)
		for _, cmd := range [][]string{{"recover"}, {"create"}, {"restore", "--id", id}, {"delete", "--id", id}} {
			mustCode(t, exitVerifyFailed, "restore.journal", append(cmd, "--data-dir", dir)...)
		}
		victim.Check(t)
		if d := dataState(t, dir); d != before {
			t.Fatalf("the data dir changed:\n%s\nvs\n%s", before, d)
		}
		os.Remove(filepath.Join(dir, ".hotsnap", "restore.journal"))
	})

	private := filepath.Join(dir, ".hotsnap", "private", "restore.journal")
	for name, journal := range map[string]string{
		"dot-dot names":     fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"x","source":"restoring/x","moveOut":["../../..%s"],"moveIn":[]}`, id, victim.Dir),
		"source outside":    fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"x","source":"../../../..%s","moveOut":[],"moveIn":["dir"]}`, id, victim.Dir),
		"failsafe outside":  fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"..","source":"restoring/x","moveOut":["a.txt"],"moveIn":[]}`, id),
		"hotsnap's own":     fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"x","source":"restoring/x","moveOut":[".hotsnap","backups"],"moveIn":[]}`, id),
		"absolute names":    fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"%s","source":"restoring/x","moveOut":["%s"],"moveIn":[]}`, id, victim.Dir, victim.Dir),
		"unknown fields":    fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"x","source":"restoring/x","moveOut":[],"moveIn":[],"restoring":"/"}`, id),
		"an old version":    fmt.Sprintf(`{"version":1,"id":"%s","failsafe":"x","source":"restoring/x","moveOut":[],"moveIn":[]}`, id),
		"not JSON":          "\x00\x01garbage",
		"a symlink to root": "symlink",
		"written by a user": "chown",
	} {
		t.Run("in the private state dir: "+name, func(t *testing.T) {
			switch journal {
			case "symlink":
				os.Symlink(victim.Dir+"/secret", private)
			case "chown":
				os.WriteFile(private, []byte(fmt.Sprintf(`{"version":2,"id":"%s","failsafe":"x","source":"restoring/x","moveOut":[],"moveIn":[]}`, id)), 0o600)
				os.Chown(private, testuser.UID, testuser.GID)
			default:
				os.WriteFile(private, []byte(journal), 0o600)
			}
			defer os.Remove(private)
			mustCode(t, 0, id, "list", "--data-dir", dir)
			mustCode(t, exitVerifyFailed, "journal", "recover", "--data-dir", dir)
			mustCode(t, exitVerifyFailed, "journal", "restore", "--data-dir", dir, "--id", id)
			victim.Check(t)
			if d := dataState(t, dir); d != before {
				t.Fatalf("the data dir changed:\n%s\nvs\n%s", before, d)
			}
		})
	}
	// With the forged journals gone, everything works again.
	mustCode(t, 0, "", "recover", "--data-dir", dir)
	mustCode(t, 0, "", "restore", "--data-dir", dir, "--id", id)
	victim.Check(t)
}

// dataState describes the data dir's files (not .hotsnap, not backups).
func dataState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == ".hotsnap" || rel == "backups" {
			return fs.SkipDir
		}
		st, _ := fsutil.Lstat(p)
		data := ""
		if d.Type().IsRegular() {
			c, _ := os.ReadFile(p)
			data = string(c)
		}
		fmt.Fprintf(&b, "%s %o %d:%d %q\n", rel, st.Mode, st.UID, st.GID, data)
		return nil
	})
	return b.String()
}

// TestSecurity_StateSymlinks (security-state-symlinks): symlinks planted
// where hotsnap keeps state, lock files and snapshots.
func TestSecurity_StateSymlinks(t *testing.T) {
	testuser.RequireRoot(t)
	dir := secureDataDir(t)
	victim := testuser.NewVictim(t)
	id := createID(t, "--data-dir", dir)

	// The state names of hotsnap 0.1, and the force file, planted by the
	// user in the shared state dir: hotsnap keeps its own state where the
	// user cannot write, and replaces the force file without following it.
	t.Run("shared state dir", func(t *testing.T) {
		for name, target := range map[string]string{"staging": victim.Dir, "trash": victim.Dir, "restoring": victim.Dir + "/dir",
			"failsafe": victim.Dir + "/dir/sub", writegate.ForceName: victim.Dir + "/secret", "private.old": victim.Dir} {
			as(t, fmt.Sprintf("ln -s %s %s/.hotsnap/%s", target, dir, name))
		}
		mustCode(t, 0, id, "list", "--data-dir", dir)
		mustCode(t, 0, "", "usage", "--data-dir", dir)
		mustCode(t, 0, "", "verify", "--data-dir", dir, "--id", id)
		id2 := createID(t, "--data-dir", dir, "--force")
		mustCode(t, 0, "", "restore", "--data-dir", dir, "--id", id)
		mustCode(t, 0, "", "delete", "--data-dir", dir, "--id", id2)
		mustCode(t, 0, "", "recover", "--data-dir", dir)
		mustCode(t, 0, "", "prune", "--data-dir", dir, "--keep-last", "5")
		victim.Check(t)
	})

	// Lock files that are symlinks, fifos or hard links: refused, the
	// target untouched, nothing chowned.
	state := filepath.Join(dir, ".hotsnap")
	for name, plant := range map[string]string{
		"gate.lock symlink":   "rm -f $D/gate.lock; ln -s $V/secret $D/gate.lock",
		"write.lock symlink":  "rm -f $D/write.lock; ln -s $V/secret $D/write.lock",
		"gate.lock fifo":      "rm -f $D/gate.lock; mkfifo $D/gate.lock",
		"write.lock hardlink": "rm -f $D/write.lock; echo mine > $D/mine; ln $D/mine $D/write.lock",
	} {
		t.Run(name, func(t *testing.T) {
			as(t, strings.NewReplacer("$D", state, "$V", victim.Dir).Replace(plant))
			defer func() {
				for _, n := range []string{"gate.lock", "write.lock", "mine"} {
					os.Remove(filepath.Join(state, n))
				}
			}()
			mustCode(t, exitVerifyFailed, "lock file", "create", "--data-dir", dir)
			mustCode(t, 0, id, "list", "--data-dir", dir)
			victim.Check(t)
		})
	}

	// hotsnap's private state dir replaced by a symlink, by a dir of the
	// user's, or made group-writable: every mutating command refuses it
	// (exit 4), naming it; read-only ones never look at it.
	priv := filepath.Join(state, "private")
	for name, plant := range map[string]string{
		"private symlink":        "mv $P $P.root && ln -s $V $P",
		"private of the user":    "mv $P $P.root && mkdir $P && ln -s $V $P/staging",
		"private group-writable": "",
	} {
		t.Run(name, func(t *testing.T) {
			if plant == "" {
				os.Chmod(priv, 0o770)
				defer os.Chmod(priv, 0o700)
			} else {
				as(t, strings.NewReplacer("$P", priv, "$V", victim.Dir).Replace(plant))
				defer func() {
					os.RemoveAll(priv) // a symlink or the user's dir (never followed)
					os.Rename(priv+".root", priv)
				}()
			}
			for _, cmd := range [][]string{{"create"}, {"recover"}, {"restore", "--id", id}, {"delete", "--id", id}} {
				mustCode(t, exitVerifyFailed, "private state dir", append(cmd, "--data-dir", dir)...)
			}
			mustCode(t, 0, id, "list", "--data-dir", dir)
			victim.Check(t)
		})
	}

	// The backups dir swapped for a symlink to the victim, or for a dir of
	// the user's: refused, nothing read or written there.
	// (A directory of the user's is not hotsnap's: refused as a usage
	// error that names --backups-dir.)
	for name, c := range map[string]struct {
		plant string
		code  int
		says  string
	}{
		"backups symlink":     {"mv $D/backups $D/backups.root; ln -s $V $D/backups", exitVerifyFailed, "backups dir"},
		"backups of the user": {"mv $D/backups $D/backups.root; mkdir $D/backups", exitUsage, "--backups-dir"},
	} {
		t.Run(name, func(t *testing.T) {
			as(t, strings.NewReplacer("$D", dir, "$V", victim.Dir).Replace(c.plant))
			defer func() {
				os.RemoveAll(filepath.Join(dir, "backups"))
				os.Rename(filepath.Join(dir, "backups.root"), filepath.Join(dir, "backups"))
			}()
			mustCode(t, c.code, c.says, "list", "--data-dir", dir)
			mustCode(t, c.code, c.says, "create", "--data-dir", dir)
			mustCode(t, c.code, c.says, "usage", "--data-dir", dir)
			victim.Check(t)
		})
	}
	mustCode(t, 0, id, "list", "--data-dir", dir)
}

// TestSecurity_ForgedManifestSetuid (security-forged-manifest-setuid): a
// forged, resealed manifest claiming a file is root's and setuid never
// produces a setuid file.
func TestSecurity_ForgedManifestSetuid(t *testing.T) {
	testuser.RequireRoot(t)
	dir := secureDataDir(t)
	victim := testuser.NewVictim(t)
	as(t, fmt.Sprintf("printf '#!/bin/sh\\necho pwned\\n' > %[1]s/tool && chmod 755 %[1]s/tool", dir))
	// A genuine setuid file of the user's own: kept as recorded (the user's, 04755).
	as(t, fmt.Sprintf("echo mine > %[1]s/suid && chmod 4755 %[1]s/suid", dir))
	id := createID(t, "--data-dir", dir, "--copy", "tool", "--copy", "suid")
	backups := filepath.Join(dir, "backups")

	// A careless admin made the backups dir writable by all: the user plants
	// a whole forged snapshot with a resealed manifest.
	forged := "2026-01-01T00.00.00Z_forged"
	os.Chmod(backups, 0o777)
	as(t, fmt.Sprintf("mkdir -p %[1]s/%[2]s/data && cp %[3]s/tool %[1]s/%[2]s/data/tool && chmod 4755 %[1]s/%[2]s/data/tool", backups, forged, dir))
	testuser.Run(t, "forge", filepath.Join(backups, forged), forged, "tool")
	mustCode(t, exitVerifyFailed, "backups dir", "restore", "--data-dir", dir, "--id", forged)
	mustCode(t, exitVerifyFailed, "backups dir", "list", "--data-dir", dir)
	// Accepting a shared backups dir does not accept another user's manifest.
	mustCode(t, exitVerifyFailed, "owned by uid", "restore", "--data-dir", dir, "--id", forged, "--allow-shared-backups")
	mustCode(t, exitVerifyFailed, "owned by uid", "verify", "--data-dir", dir, "--id", forged, "--allow-shared-backups")
	// The user swaps the forged manifest into the genuine snapshot's dir.
	mustCode(t, 0, id, "list", "--data-dir", dir, "--allow-shared-backups")
	os.RemoveAll(filepath.Join(backups, forged))
	os.Chmod(backups, 0o700)

	// A manifest forged and resealed in place by someone who could write it
	// (root's own file): the tree does not match its lies, restore refuses.
	mpath := filepath.Join(backups, id, "manifest.json")
	m, err := manifest.Read(mpath)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Entries {
		if m.Entries[i].Path == "tool" {
			m.Entries[i].UID, m.Entries[i].GID, m.Entries[i].Mode = 0, 0, 0o4755
		}
	}
	b, _ := m.Encode()
	genuine, _ := os.ReadFile(mpath)
	os.WriteFile(mpath, b, 0o600)
	out := mustCode(t, exitVerifyFailed, "owner", "restore", "--data-dir", dir, "--id", id, "--json")
	if !strings.Contains(out, "mode") {
		t.Fatalf("the mode lie is not named: %s", out)
	}
	mustCode(t, exitVerifyFailed, "owner 54321:54321, manifest says 0:0", "verify", "--data-dir", dir, "--id", id)
	testuser.NoSetID(t, dir, map[string]uint32{"suid": testuser.UID, "backups/" + id + "/data/suid": testuser.UID})

	// With the genuine manifest the restore works, and the user's own
	// setuid file comes back as it was recorded: the user's, 04755.
	os.WriteFile(mpath, genuine, 0o600)
	os.Remove(filepath.Join(dir, "suid"))
	mustCode(t, 0, "", "restore", "--data-dir", dir, "--id", id)
	st, err := fsutil.Lstat(filepath.Join(dir, "suid"))
	if err != nil || st.Perm() != 0o4755 || st.UID != testuser.UID {
		t.Fatalf("the recorded setuid file was not restored as recorded: %+v %v", st, err)
	}
	testuser.NoSetID(t, dir, map[string]uint32{"suid": testuser.UID, "backups/" + id + "/data/suid": testuser.UID})
	victim.Check(t)
}

// TestSecurity_CaptureSymlinkRace (security-capture-symlink-race): while
// creates run, the user swaps directories and files of the data dir for
// symlinks to a root-only tree outside it, as fast as possible. No snapshot
// may hold a byte or an inode from outside; every create succeeds or fails
// clearly.
func TestSecurity_CaptureSymlinkRace(t *testing.T) {
	testuser.RequireRoot(t)
	dir := secureDataDir(t)
	victim := testuser.NewVictim(t)
	// More to swap: dirs at two depths, files, a fifo (never blocks a capture).
	as(t, fmt.Sprintf("mkdir -p %[1]s/d/inner %[1]s/e && echo x > %[1]s/d/inner/f && echo y > %[1]s/e/g && echo z > %[1]s/f && mkfifo %[1]s/fifo", dir))
	stop := filepath.Join(filepath.Dir(dir), "stop")
	swapper := testuser.Command(t, "swap", stop,
		filepath.Join(dir, "d"), filepath.Join(victim.Dir, "dir"),
		filepath.Join(dir, "d", "inner"), victim.Dir,
		filepath.Join(dir, "e"), victim.Dir,
		filepath.Join(dir, "f"), filepath.Join(victim.Dir, "secret"),
		filepath.Join(dir, "db"), filepath.Join(victim.Dir, "dir", "sub"))
	if err := swapper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(stop, nil, 0o644)
		swapper.Wait()
	}()
	created, raced := 0, 0
	for i := 0; i < 30; i++ {
		args := []string{"create", "--data-dir", dir, "--json", "--quiesce", "none"}
		switch i % 3 {
		case 1:
			args = append(args, "--copy", "*") // copies read the bytes
		case 2:
			args = append(args, "--link-mode", "auto")
		}
		code, out, errs := hs(t, args...)
		switch code {
		case 0:
			created++
			raced += strings.Count(out, "vanished") + strings.Count(out, "replaced")
		case exitError, exitVerifyFailed:
			// A clear refusal (an entry changed under the capture) is fine.
			if !strings.Contains(out+errs, "error") {
				t.Fatalf("create failed without saying why: %s %s", out, errs)
			}
		default:
			t.Fatalf("create exit %d (want 0, 1 or 4): %s %s", code, out, errs)
		}
	}
	os.WriteFile(stop, nil, 0o644)
	if err := swapper.Wait(); err != nil {
		t.Fatalf("the swapper failed: %v", err)
	}
	if created == 0 || raced == 0 {
		t.Fatalf("%d creates succeeded, %d entries changed under them: the race did not happen, nothing was proven", created, raced)
	}
	victim.NoSecretIn(t, filepath.Join(dir, "backups"))
	victim.NoSecretIn(t, filepath.Join(dir, ".hotsnap"))
	ids, _ := os.ReadDir(filepath.Join(dir, "backups"))
	for _, e := range ids {
		m, err := manifest.Read(filepath.Join(dir, "backups", e.Name(), "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		secret, _, _ := manifest.HashReader(strings.NewReader(string(victim.Secret)))
		for _, en := range m.Entries {
			if en.BLAKE3 == secret {
				t.Fatalf("snapshot %s records the victim's secret as %s", e.Name(), en.Path)
			}
		}
		if code, out, _ := hs(t, "verify", "--data-dir", dir, "--id", e.Name()); code != 0 {
			for _, en := range m.Entries {
				st, _ := fsutil.Lstat(filepath.Join(dir, "backups", e.Name(), "data", string(en.Path)))
				t.Logf("%s %s %d:%d %o | tree %d:%d %o %s", en.Path, en.Type, en.UID, en.GID, en.Mode, st.UID, st.GID, st.Perm(), st.TypeName())
			}
			t.Fatalf("verify %s: %s", e.Name(), out)
		}
	}
	t.Logf("%d of 30 creates succeeded under the swapping attacker; %d entries were swapped under them and left out", created, raced)
	victim.Check(t)
}

// TestSecurity_LockFileModes (security-lock-file-modes): lock files made by
// root are the data dir owner's to use (writegate and the README's shell
// recipe, as that user); the recipe fails closed without the lock.
func TestSecurity_LockFileModes(t *testing.T) {
	testuser.RequireRoot(t)
	dir := testuser.DataDir(t) // no .hotsnap yet: hotsnap (root) makes it
	os.Chmod(dir, 0o750)
	victim := testuser.NewVictim(t)
	createID(t, "--data-dir", dir)
	for _, name := range []string{writegate.GateLockName, writegate.WriteLockName} {
		st, err := fsutil.Lstat(filepath.Join(dir, ".hotsnap", name))
		if err != nil || st.UID != testuser.UID || st.GID != testuser.GID || st.Perm() != 0o660 {
			t.Fatalf("%s: want %d:%d mode 0660, got %+v %v", name, testuser.UID, testuser.GID, st, err)
		}
	}
	// The application's user takes its locks: through writegate, and
	// through the README's shell recipe.
	testuser.Run(t, "writer", dir, "from-go")
	recipe := func(file string) string {
		return fmt.Sprintf(`set -e
DATA=%s
exec 8<"$DATA/.hotsnap/gate.lock" 9<"$DATA/.hotsnap/write.lock"
flock -s 8; flock -s 9; flock -u 8
echo written > "$DATA/%s"
flock -u 9`, dir, file)
	}
	as(t, recipe("from-shell"))
	for _, f := range []string{"from-go", "from-shell"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("the writer as uid %d could not write under the gate: %v", testuser.UID, err)
		}
	}
	// A snapshot taken now still works with these writers' files.
	createID(t, "--data-dir", dir)

	// Fail closed: a lock the user may not open stops the recipe before it writes.
	gate := filepath.Join(dir, ".hotsnap", writegate.GateLockName)
	os.Chown(gate, 0, 0)
	os.Chmod(gate, 0o600)
	if out, err := testuser.Sh(recipe("unlocked")); err == nil {
		t.Fatalf("the recipe wrote without its lock: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "unlocked")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the recipe wrote a file although it could not take the lock")
	}
	// hotsnap itself never chowns or chmods a lock file it did not create.
	createID(t, "--data-dir", dir)
	if st, _ := fsutil.Lstat(gate); st.UID != 0 || st.Perm() != 0o600 {
		t.Fatalf("hotsnap changed an existing lock file: %+v", st)
	}
	victim.Check(t)
}
