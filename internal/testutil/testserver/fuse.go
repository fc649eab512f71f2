package testserver

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// MountHungFUSE mounts over target (a file, or a directory with dir) a
// FUSE filesystem whose daemon never answers anything, not even the
// kernel's INIT: every request to it waits until the test ends. Its root
// claims uid 0 and mode (e.g. 0104755: a setuid-root file), as a hostile
// daemon may. Only root may mount it. When the test ends it is unmounted
// and the connection closed, which fails whatever still waits on it.
func MountHungFUSE(t testing.TB, target string, dir bool, mode uint32) {
	t.Helper()
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/fuse: %v", err)
	}
	kind := uint32(unix.S_IFREG)
	if dir {
		kind = unix.S_IFDIR
	}
	opts := fmt.Sprintf("fd=%d,rootmode=%o,user_id=0,group_id=0,allow_other", fd, kind|mode)
	if err := unix.Mount("hotsnap-hung", target, "fuse.hotsnap-hung", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		unix.Close(fd)
		t.Fatalf("mount a FUSE filesystem on %s: %v", target, err)
	}
	t.Cleanup(func() {
		unix.Unmount(target, unix.MNT_DETACH)
		unix.Close(fd)
	})
}
