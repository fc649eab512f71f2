package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMaker_Attrs: files made by a Maker carry exactly the asked owner,
// mode and mtime whether or not it skipped the chown and chmod: modes the
// umask would cut, setuid and setgid bits, another owner (as root), and a
// setgid directory whose group new files would take. A symlink is never
// followed and an existing file never replaced.
func TestMaker_Attrs(t *testing.T) {
	for _, setgid := range []bool{false, true} {
		root := t.TempDir()
		if setgid {
			if err := os.Chown(root, -1, 4321); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(root, 0o2755); err != nil {
				t.Fatal(err)
			}
		}
		d, err := OpenDir(root)
		if err != nil {
			t.Fatal(err)
		}
		mk, err := NewMaker(d)
		if err != nil {
			t.Fatal(err)
		}
		uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
		cases := []struct {
			name           string
			uid, gid, mode uint32
		}{
			{"plain", uid, gid, 0o644},
			{"umask-cut", uid, gid, 0o666},
			{"private", uid, gid, 0o600},
			{"setuid", uid, gid, 0o4755},
			{"sticky-setgid", uid, gid, 0o3750},
		}
		if uid == 0 {
			cases = append(cases, struct {
				name           string
				uid, gid, mode uint32
			}{"other-owner", 1234, 5678, 0o2640})
		}
		for i, c := range cases {
			mtime := int64(1_700_000_000_123_456_789) + int64(i)
			if err := mk.Write(c.name, []byte(c.name), c.uid, c.gid, c.mode, mtime); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(filepath.Join(root, c.name))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != c.uid || st.Gid != c.gid || st.Mode&0o7777 != c.mode || st.Mtim.Nano() != mtime {
				t.Errorf("setgid dir %v, %s: %d:%d %04o mtime %d, want %d:%d %04o %d", setgid, c.name, st.Uid, st.Gid, st.Mode&0o7777, st.Mtim.Nano(), c.uid, c.gid, c.mode, mtime)
			}
			if b, _ := os.ReadFile(filepath.Join(root, c.name)); string(b) != c.name {
				t.Errorf("%s holds %q", c.name, b)
			}
		}
		os.Symlink("/etc/passwd", filepath.Join(root, "link"))
		if err := mk.Write("link", []byte("x"), uid, gid, 0o644, 0); err == nil {
			t.Error("wrote through a symlink")
		}
		if err := mk.Write("plain", []byte("x"), uid, gid, 0o644, 0); err == nil {
			t.Error("replaced an existing file")
		}
		d.Close()
	}
}
