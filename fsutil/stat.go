package fsutil

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Stat is the identity and metadata of one directory entry, as lstat(2)
// reports it (links are never followed).
type Stat struct {
	Dev     uint64
	Ino     uint64
	Mode    uint32 // st_mode: file type bits and permission bits
	Nlink   uint64
	UID     uint32
	GID     uint32
	Size    int64
	MtimeNs int64
	CtimeNs int64
	Blocks  int64 // 512-byte blocks allocated (what du counts)
}

// File type helpers over Mode.
func (s Stat) IsDir() bool     { return s.Mode&unix.S_IFMT == unix.S_IFDIR }
func (s Stat) IsRegular() bool { return s.Mode&unix.S_IFMT == unix.S_IFREG }
func (s Stat) IsSymlink() bool { return s.Mode&unix.S_IFMT == unix.S_IFLNK }

// Perm returns the permission bits, including setuid, setgid and sticky.
func (s Stat) Perm() uint32 { return s.Mode & 0o7777 }

// TypeName names the file type for messages: file, dir, symlink, fifo, socket, device.
func (s Stat) TypeName() string {
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	}
	return "unknown"
}

func fromUnix(st *unix.Stat_t) Stat {
	return Stat{
		Dev:     uint64(st.Dev),
		Ino:     st.Ino,
		Mode:    st.Mode,
		Nlink:   uint64(st.Nlink),
		UID:     st.Uid,
		GID:     st.Gid,
		Size:    st.Size,
		MtimeNs: st.Mtim.Nano(),
		CtimeNs: st.Ctim.Nano(),
		Blocks:  st.Blocks,
	}
}

// Lstat stats path without following a final symlink.
func Lstat(path string) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return Stat{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return fromUnix(&st), nil
}

// Fstat stats an open file.
func Fstat(f *os.File) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Stat{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return fromUnix(&st), nil
}

// SameFilesystem returns nil when a and b live on the same filesystem
// (same st_dev), which hard links and atomic renames need.
func SameFilesystem(a, b string) error {
	sa, err := Lstat(a)
	if err != nil {
		return err
	}
	sb, err := Lstat(b)
	if err != nil {
		return err
	}
	if sa.Dev != sb.Dev {
		return fmt.Errorf("%s and %s are on different filesystems (st_dev %d != %d): hard links and atomic renames need one filesystem", a, b, sa.Dev, sb.Dev)
	}
	return nil
}

// CtimeFloor returns a ctime at or below that of every change made to any
// inode of d's filesystem from now on: a probe file is created in d, its
// ctime read, and the probe removed. The kernel stamps ctimes from a
// clock that does not go back between inodes: the coarse clock (a tick of
// a few ms), and since Linux 6.13 (multigrain timestamps) the larger of it
// and the finest value handed out so far. A change made after the probe
// is stamped at or above it; one made in the same tick before it may be
// too (callers treat "at or above" as "maybe after", which is safe). A
// clock set back defeats it (docs/DESIGN.md, Create).
func CtimeFloor(d *Dir) (int64, error) {
	var floor int64
	err := withProbe(d, func(fd int) error {
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		floor = st.Ctim.Nano()
		return err
	})
	return floor, err
}

// CtimeMark returns a ctime above that of every change made before the
// call, and at or below that of every change made after it: a probe file
// in d is touched until its ctime moves past the one it got when created,
// so the tick of every earlier change is behind.
func CtimeMark(d *Dir) (int64, error) {
	var mark int64
	err := withProbe(d, func(fd int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		first := st.Ctim.Nano()
		for range 2000 {
			time.Sleep(time.Millisecond)
			if err := SetMtimeFd(fd, time.Now().UnixNano()); err != nil {
				return err
			}
			if err := unix.Fstat(fd, &st); err != nil {
				return err
			}
			if c := st.Ctim.Nano(); c > first {
				mark = c
				return nil
			}
		}
		return fmt.Errorf("the kernel's ctime clock did not move in 2 s")
	})
	return mark, err
}

// withProbe runs fn on a new probe file in d, then removes it.
func withProbe(d *Dir, fn func(fd int) error) error {
	name := fmt.Sprintf(".ctime-probe-%08x", RandUint32())
	f, err := d.Create(name, 0o600)
	if err != nil {
		return err
	}
	err = fn(int(f.Fd()))
	f.Close()
	if rerr := d.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// LstatAt stats name in the directory dirfd without following a symlink
// and without asking a network or FUSE filesystem for fresh attributes
// (statx AT_STATX_DONT_SYNC): a FUSE daemon the application runs on a
// mount inside the data dir can make a stat that asks it wait forever, and
// the cached attributes are enough to see that the entry is on another
// filesystem (its Dev), which is what the capture needs of it. On a local
// filesystem the result is lstat's.
func LstatAt(dirfd int, name string) (Stat, error) {
	var sx unix.Statx_t
	if err := unix.Statx(dirfd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC|unix.AT_NO_AUTOMOUNT, unix.STATX_BASIC_STATS, &sx); err != nil {
		return Stat{}, err
	}
	return fromStatx(&sx), nil
}

// fstatNoSync is LstatAt of an open descriptor (an O_PATH one included).
func fstatNoSync(fd int) (Stat, error) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_BASIC_STATS, &sx); err != nil {
		return Stat{}, err
	}
	return fromStatx(&sx), nil
}

func fromStatx(sx *unix.Statx_t) Stat {
	return Stat{
		Dev:     unix.Mkdev(sx.Dev_major, sx.Dev_minor),
		Ino:     sx.Ino,
		Mode:    uint32(sx.Mode),
		Nlink:   uint64(sx.Nlink),
		UID:     sx.Uid,
		GID:     sx.Gid,
		Size:    int64(sx.Size),
		MtimeNs: sx.Mtime.Sec*1e9 + int64(sx.Mtime.Nsec),
		CtimeNs: sx.Ctime.Sec*1e9 + int64(sx.Ctime.Nsec),
		Blocks:  int64(sx.Blocks),
	}
}
