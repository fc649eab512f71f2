// Package testxfs mounts a real XFS filesystem with reflinks (mkfs.xfs -m
// reflink=1 on a loop device) for the reflink tests. The tests run as
// root with xfsprogs installed (scripts/install-test-deps.sh); in CI a
// machine without them fails the tests, elsewhere they skip.
package testxfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func need(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("XFS tests: %s (install-test-deps installs xfsprogs; CI runs as root)", why)
	}
	t.Skipf("XFS tests: %s", why)
}

// Mount makes an XFS image of size bytes in a temp dir, mounts it and
// returns the mount point; it is unmounted and removed at cleanup.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		need(t, "need root to mount a loop device")
	}
	mkfs, err := exec.LookPath("mkfs.xfs")
	for _, p := range []string{"/usr/sbin/mkfs.xfs", "/sbin/mkfs.xfs"} {
		if err != nil {
			if _, serr := os.Stat(p); serr == nil {
				mkfs, err = p, nil
			}
		}
	}
	if err != nil {
		need(t, "mkfs.xfs is not installed")
	}
	base, err := os.MkdirTemp("", "hotsnap-xfs-")
	if err != nil {
		t.Fatal(err)
	}
	img, mnt := filepath.Join(base, "xfs.img"), filepath.Join(base, "mnt")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err == nil {
		err = os.Mkdir(mnt, 0o755)
	}
	if err != nil {
		os.RemoveAll(base)
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		os.RemoveAll(base)
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		os.RemoveAll(base)
		t.Fatalf("mount the XFS image: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			// A process still inside: lazy unmount, the loop device goes with it.
			exec.Command("umount", "-l", mnt).Run()
			t.Logf("umount %s: %v: %s", mnt, err, out)
		}
		os.RemoveAll(base)
	})
	return mnt
}
