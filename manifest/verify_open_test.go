package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// TestOpenForHash: what a verify's worker opens is a regular file, with
// the stat of the inode it opened; anything else is refused with its own
// stat (the type's problem names it), a fifo without blocking, a symlink
// without being followed; in a trusted tree and in a shared one.
func TestOpenForHash(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "file"), []byte("bytes"), 0o640)
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	os.Symlink("file", filepath.Join(root, "link"))
	d, err := fsutil.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, trusted := range []bool{true, false} {
		fd, done, st, err := openForHash(d, "file", trusted)
		if err != nil {
			t.Fatalf("trusted %v: %v", trusted, err)
		}
		lst, _ := d.Lstat("file")
		if st.Ino != lst.Ino || !st.IsRegular() || st.Size != 5 || st.Perm() != 0o640 {
			t.Errorf("trusted %v: stat %+v, lstat %+v", trusted, st, lst)
		}
		if sum, n, err := HashFd(fd); err != nil || n != 5 || sum != HashBytes([]byte("bytes")) {
			t.Errorf("trusted %v: hash of the open file: %s, %d, %v", trusted, sum, n, err)
		}
		done()
		for name, typ := range map[string]string{"fifo": "fifo", "dir": "dir"} {
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, done, st, err := openForHash(d, name, trusted)
				if done != nil || !errors.Is(err, fsutil.ErrNotRegular) || st.TypeName() != typ {
					t.Errorf("trusted %v: %s: opened %v, %v, type %s", trusted, name, done != nil, err, st.TypeName())
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("trusted %v: the open of a %s blocked", trusted, name)
			}
		}
		// A symlink is never followed: refused by the open (ELOOP), or
		// opened as itself and refused with its stat.
		_, done, st, err = openForHash(d, "link", trusted)
		if done != nil || !(errors.Is(err, unix.ELOOP) || errors.Is(err, fsutil.ErrNotRegular) && st.IsSymlink()) {
			t.Errorf("trusted %v: a symlink: opened %v, %v, %+v", trusted, done != nil, err, st)
		}
	}
}
