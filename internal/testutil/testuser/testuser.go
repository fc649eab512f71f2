// Package testuser lets the security tests act as a hostile, unprivileged
// application user against hotsnap running as root: a throwaway uid (no
// account needed) runs the current test binary in a named role, planting
// symlinks, swapping directories, writing data. It also builds "victim"
// trees outside the data dir and proves nothing in them changed.
//
// The tests need root. Under CI=true (or HOTSNAP_REQUIRE_ROOT=1) a test
// run without root fails instead of skipping.
package testuser

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// UID and GID of the throwaway user: no account needs to exist.
const (
	UID = 54321
	GID = 54321
)

const roleEnv = "HOTSNAP_TEST_ROLE"

// RequireRoot skips the test unless it runs as root, and fails it instead
// when CI=true or HOTSNAP_REQUIRE_ROOT=1 (CI runs as root: these tests must
// never skip there).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("HOTSNAP_REQUIRE_ROOT") == "1" {
		t.Fatal("this security test needs root (it acts as a throwaway unprivileged uid against hotsnap run as root), and CI=true: failing instead of skipping")
	}
	t.Skip("needs root: run the suite as root (CI does) to attack hotsnap as another user")
}

// Roles are what the test binary can do as the throwaway user; the test's
// TestMain calls Dispatch first.
type Role func(args []string) error

// Dispatch runs the role named in the environment and exits, when the
// binary was started by Command; otherwise it returns at once.
func Dispatch(roles map[string]Role) {
	name := os.Getenv(roleEnv)
	if name == "" {
		return
	}
	fn, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown test role %q\n", name)
		os.Exit(3)
	}
	if err := fn(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "role %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

var exe struct {
	path string
	err  error
}

// binary copies the test binary where the throwaway user can run it.
func binary(t testing.TB) string {
	t.Helper()
	if exe.path == "" && exe.err == nil {
		self, err := os.Executable()
		if err == nil {
			var dir string
			if dir, err = os.MkdirTemp("", "hotsnap-testuser-"); err == nil {
				os.Chmod(dir, 0o755)
				var b []byte
				if b, err = os.ReadFile(self); err == nil {
					exe.path = filepath.Join(dir, "test.bin")
					err = os.WriteFile(exe.path, b, 0o755)
				}
			}
		}
		exe.err = err
	}
	if exe.err != nil {
		t.Fatalf("copy the test binary for the test user: %v", exe.err)
	}
	return exe.path
}

// Cleanup removes the copied binary; call it from TestMain after m.Run.
func Cleanup() {
	if exe.path != "" {
		os.RemoveAll(filepath.Dir(exe.path))
	}
}

// Command runs the test binary as the throwaway user in role, with args.
func Command(t testing.TB, role string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: UID, Gid: GID}}
	return cmd
}

// Run runs role as the throwaway user and fails the test if it fails.
func Run(t testing.TB, role string, args ...string) {
	t.Helper()
	out, err := Command(t, role, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("as uid %d, %s %v: %v\n%s", UID, role, args, err, out)
	}
}

// Sh runs a shell script as the throwaway user and returns its output and
// error (the caller decides whether failing is expected).
func Sh(script string) ([]byte, error) {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: UID, Gid: GID}}
	return cmd.CombinedOutput()
}

// DataDir makes a data dir owned by the throwaway user, in a temp dir every
// user may traverse. It holds a few files and a subdirectory.
func DataDir(t testing.TB) string {
	t.Helper()
	base := t.TempDir()
	// t.TempDir's parents are 0700: let the test user through.
	for p := base; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	dir := filepath.Join(base, "data")
	files := map[string]string{"a.txt": "alpha\n", "db/000001.sst": "sst one\n", "db/CURRENT": "MANIFEST-1\n", "db/sub/deep.log": "deep\n"}
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Lchown(p, UID, GID)
		}
		return err
	})
	return dir
}

// Victim is a root-owned tree outside the data dir that an attack would
// reach: secrets (0600), a directory, a setuid-free file. Check proves that
// nothing in it was read into a snapshot's place, written, renamed,
// removed, chmodded or chowned (every lstat field that such a change moves,
// ctime included, and every byte).
type Victim struct {
	Dir    string
	Secret []byte // the content of every secret file
	before map[string]string
}

// NewVictim makes a victim tree in its own temp dir (0755, so a planted
// symlink resolves for root), holding 0600 root-owned secrets.
func NewVictim(t testing.TB) *Victim {
	t.Helper()
	base := t.TempDir()
	for p := base; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	v := &Victim{Dir: filepath.Join(base, "victim"), Secret: []byte(fmt.Sprintf("ROOT-ONLY SECRET %d\n", time.Now().UnixNano()))}
	for _, rel := range []string{"secret", "dir/secret2", "dir/sub/secret3"} {
		p := filepath.Join(v.Dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v.Secret, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(v.Dir, 0o755)
	v.before = v.state(t)
	return v
}

func (v *Victim) state(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(v.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d ino=%d mtime=%d ctime=%d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Ino, st.Mtim.Nano(), st.Ctim.Nano())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("victim: %v", err)
	}
	return out
}

// Check fails the test if anything in the victim tree changed.
func (v *Victim) Check(t testing.TB) {
	t.Helper()
	now := v.state(t)
	var diffs []string
	for p, b := range v.before {
		if a, ok := now[p]; !ok {
			diffs = append(diffs, "gone: "+p)
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed: %s\n  before %s\n  after  %s", p, b, a))
		}
	}
	for p := range now {
		if _, ok := v.before[p]; !ok {
			diffs = append(diffs, "new: "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("something outside the data dir changed:\n%s", strings.Join(diffs, "\n"))
	}
}

// NoSecretIn fails the test if any regular file below root holds the
// victim's secret, or is one of its inodes: nothing from outside the data
// dir may enter a snapshot or a restored tree.
func (v *Victim) NoSecretIn(t testing.TB, root string) {
	t.Helper()
	inodes := map[uint64]bool{}
	filepath.WalkDir(v.Dir, func(p string, d fs.DirEntry, err error) error {
		var st unix.Stat_t
		if err == nil && unix.Lstat(p, &st) == nil {
			inodes[st.Ino] = true
		}
		return nil
	})
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && inodes[st.Ino] {
			t.Errorf("%s is an inode of the victim tree outside the data dir", p)
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, v.Secret) {
			t.Errorf("%s holds the victim's secret from outside the data dir", p)
		}
		return nil
	})
}

// NoSetID fails the test if any file below root has the setuid or setgid
// bit, except the paths in allowed (with the owner they must have).
func NoSetID(t testing.TB, root string, allowed map[string]uint32) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Mode&(unix.S_ISUID|unix.S_ISGID) == 0 {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if owner, ok := allowed[rel]; ok && owner == st.Uid {
			return nil
		}
		t.Errorf("%s has mode %o and owner %d: a setuid/setgid file hotsnap must not produce", p, st.Mode&0o7777, st.Uid)
		return nil
	})
}
