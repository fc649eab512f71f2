package fsutil

import (
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetOwnerMode gives the open file or directory fd the owner uid:gid, then
// the permission bits mode, in that order, so setuid and setgid bits (which
// a chown clears) survive. When the owner cannot be set (hotsnap is not
// root), the setuid and setgid bits are dropped: a file must never carry
// them for an owner the manifest does not name.
func SetOwnerMode(fd int, uid, gid, mode uint32) error {
	if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if err := unix.Fchmod(fd, mode&0o7777); err != nil {
		return err
	}
	return nil
}

// SetMtimeFd sets the access and modification times of the open fd.
func SetMtimeFd(fd int, mtimeNs int64) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(mtimeNs), unix.NsecToTimespec(mtimeNs)}
	// utimensat(fd, NULL, ...) is futimens(3).
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// WriteFileAtomic writes data to rel so that a reader (or a crash) sees
// the old content or the new one, never a mix: a temp file beside it
// (O_EXCL, never through a symlink), write, fsync, rename, fsync the
// directory. The temp file is removed on every error path; its name starts
// with "."+base+".tmp-", for sweeps after a crash.
func (d *Dir) WriteFileAtomic(rel string, data []byte, perm uint32) (err error) {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	var tmp string
	var fd int
	for i := 0; ; i++ {
		tmp = "." + base + ".tmp-" + strconv.FormatUint(uint64(RandUint32()), 36)
		fd, err = unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err == unix.EEXIST && i < 100 {
			continue
		}
		if err != nil {
			return d.pathErr("create", rel, err)
		}
		break
	}
	f := os.NewFile(uintptr(fd), d.Join(rel))
	defer func() {
		if err != nil {
			f.Close()
			unix.Unlinkat(pfd, tmp, 0)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = unix.Fchmod(fd, perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = unix.Renameat(pfd, tmp, pfd, base); err != nil {
		return d.pathErr("rename", rel, err)
	}
	if err = unix.Fsync(pfd); err != nil {
		return d.pathErr("fsync", rel, err)
	}
	return nil
}

// IsTempName reports whether name is one of WriteFileAtomic's temp files.
func IsTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

func RandUint32() uint32 {
	var b [4]byte
	if _, err := unix.Getrandom(b[:], 0); err != nil {
		return uint32(time.Now().UnixNano())
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
