package fsutil

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hotsnap/hotsnap/errs"
	"golang.org/x/sys/unix"
)

// ErrSymlink is what a Dir's methods return (wrapping ELOOP) when a
// symlink stands in a path where hotsnap needs a real directory or file:
// it never follows one there. Another user planted it, or swapped a
// directory for it.
var ErrSymlink = errs.New(errs.VerifyFailed, "a symlink stands where hotsnap needs a real entry (symlinks are never followed here)")

// symlinkError is ELOOP from a lookup beneath a Dir.
type symlinkError struct{ errno error }

func (e symlinkError) Error() string   { return e.errno.Error() + ": " + ErrSymlink.Error() }
func (e symlinkError) Unwrap() []error { return []error{e.errno, ErrSymlink} }

// ErrNotRegular is returned by OpenRegular when the entry is not a regular
// file (a symlink, fifo, socket, device or directory took its place).
var ErrNotRegular = errors.New("not a regular file")

// Dir is an open directory, and the only way hotsnap reaches what lies
// below one: every path given to its methods is relative, and it is
// resolved beneath the directory with no symlink followed, in any
// component (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or one
// component at a time with O_NOFOLLOW where the kernel lacks openat2). A
// directory renamed or swapped for a symlink while hotsnap works makes an
// operation fail; it never leads outside (docs/DESIGN.md, "Paths").
//
// A Dir's path is kept for messages only; nothing is ever opened by it.
type Dir struct {
	fd   int
	path string
	own  bool // see Own
}

// Own marks d as hotsnap's own (a private or trusted backups dir, checked
// by its opener): no other user can change what lies below it, so
// OpenRegular opens a file with one open instead of an O_PATH open, a
// check and a reopen. Dirs opened below d inherit the mark. It returns d.
func (d *Dir) Own() *Dir {
	d.own = true
	return d
}

// OpenDir opens the directory at path, a path the invoking user gave (a
// flag): symlinks in it are followed, since choosing it was theirs.
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{fd: fd, path: path}, nil
}

// Fd is the directory's file descriptor, valid until Close.
func (d *Dir) Fd() int { return d.fd }

// Path is where the directory was when it was opened, for messages.
func (d *Dir) Path() string { return d.path }

// Join names rel below the directory, for messages.
func (d *Dir) Join(rel string) string {
	if rel == "" || rel == "." {
		return d.path
	}
	return d.path + "/" + rel
}

// Close closes the directory.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Stat is fstat of the directory itself.
func (d *Dir) Stat() (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return Stat{}, &os.PathError{Op: "fstat", Path: d.path, Err: err}
	}
	return fromUnix(&st), nil
}

// Sync fsyncs the directory, so entries created, renamed or removed in it
// survive a crash.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return &os.PathError{Op: "fsync", Path: d.path, Err: err}
	}
	return nil
}

// SyncDir fsyncs the directory rel below d ("." is d itself), opened
// without following a symlink.
func (d *Dir) SyncDir(rel string) error {
	sd, err := d.OpenDir(rel)
	if err != nil {
		return err
	}
	defer sd.Close()
	return sd.Sync()
}

// checkRel refuses a path that is not relative, clean and free of "..".
// "." names the directory itself.
func checkRel(rel string) error {
	if rel == "." {
		return nil
	}
	return ValidRelPath(rel)
}

var (
	openat2Once sync.Once
	openat2OK   bool
	// forceComponentWalk makes every lookup take the per-component path
	// (tests of the fallback for kernels without openat2).
	forceComponentWalk bool
)

func haveOpenat2() bool {
	openat2Once.Do(func() {
		fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC})
		if err == nil {
			unix.Close(fd)
			openat2OK = true
		}
	})
	return openat2OK && !forceComponentWalk
}

// openat opens rel beneath d with no symlink followed. flags gets
// O_NOFOLLOW and O_CLOEXEC added.
func (d *Dir) openat(rel string, flags int, mode uint32) (int, error) {
	if err := checkRel(rel); err != nil {
		return -1, err
	}
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if haveOpenat2() {
		how := &unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		for tries := 0; ; tries++ {
			fd, err := unix.Openat2(d.fd, rel, how)
			// EAGAIN: a rename raced the lookup; the kernel asks for a retry.
			if err == unix.EAGAIN && tries < 16 {
				continue
			}
			if err == unix.EINTR {
				continue
			}
			return fd, err
		}
	}
	parts := strings.Split(rel, "/")
	cur := d.fd
	for i, p := range parts[:len(parts)-1] {
		next, err := unix.Openat(cur, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOTDIR {
			var st unix.Stat_t
			if unix.Fstatat(cur, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP // as openat2 says it
			}
		}
		if i > 0 {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = next
	}
	fd, err := unix.Openat(cur, parts[len(parts)-1], flags, mode)
	if len(parts) > 1 {
		unix.Close(cur)
	}
	return fd, err
}

func (d *Dir) pathErr(op, rel string, err error) error {
	if err == unix.ELOOP {
		err = symlinkError{err}
	}
	return &os.PathError{Op: op, Path: d.Join(rel), Err: err}
}

// OpenDir opens the directory rel beneath d.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err == unix.ENOTDIR {
		// O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: name it.
		if st, lerr := d.Lstat(rel); lerr == nil && st.IsSymlink() {
			err = unix.ELOOP
		}
	}
	if err != nil {
		return nil, d.pathErr("open dir", rel, err)
	}
	return &Dir{fd: fd, path: d.Join(rel), own: d.own}, nil
}

// OpenFile opens rel beneath d (flags as for os.OpenFile; O_NOFOLLOW is
// always added, so a symlink in its place fails with ELOOP).
func (d *Dir) OpenFile(rel string, flags int, perm uint32) (*os.File, error) {
	fd, err := d.openat(rel, flags, perm)
	if err != nil {
		return nil, d.pathErr("open", rel, err)
	}
	return os.NewFile(uintptr(fd), d.Join(rel)), nil
}

// OpenFd is OpenFile without the *os.File: the bare descriptor, which the
// caller closes. For a hot loop over many small files (a hash of each),
// where the File's setup (a fcntl, a finalizer) costs a share of the work.
func (d *Dir) OpenFd(rel string, flags int) (int, error) {
	fd, err := d.openat(rel, flags, 0)
	if err != nil {
		return -1, d.pathErr("open", rel, err)
	}
	return fd, nil
}

// Create creates the file rel, which must not exist, for writing.
func (d *Dir) Create(rel string, perm uint32) (*os.File, error) {
	return d.OpenFile(rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, perm)
}

// OpenRegular opens the regular file rel for reading and returns its stat.
// Anything else in its place (symlink, fifo, socket, device, dir) is
// refused with ErrNotRegular (and its stat) before it is opened for
// reading, so a device planted by a hard link is never opened and a fifo
// never blocks.
func (d *Dir) OpenRegular(rel string) (*os.File, Stat, error) {
	if d.own {
		return d.OpenOwnRegular(rel)
	}
	pfd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return nil, Stat{}, d.pathErr("open", rel, err)
	}
	defer unix.Close(pfd)
	return reopenRegular(pfd, d.Join(rel)) // not regular: its stat, with ErrNotRegular
}

// OpenPath opens rel beneath d as an O_PATH descriptor (no read access:
// enough to fstat it and to link it with LinkFile) and returns its stat; it
// refuses anything but a regular file with ErrNotRegular.
func (d *Dir) OpenPath(rel string) (*os.File, Stat, error) {
	pfd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return nil, Stat{}, d.pathErr("open", rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		unix.Close(pfd)
		return nil, Stat{}, d.pathErr("fstat", rel, err)
	}
	s := fromUnix(&st)
	if !s.IsRegular() {
		unix.Close(pfd)
		return nil, s, d.pathErr("open", rel, fmt.Errorf("%w: it is a %s", ErrNotRegular, s.TypeName()))
	}
	return os.NewFile(uintptr(pfd), d.Join(rel)), s, nil
}

// OpenRegularAt is OpenRegular for the single name in the directory dirfd.
func OpenRegularAt(dirfd int, name, path string) (*os.File, Stat, error) {
	pfd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, Stat{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	return reopenRegular(pfd, path)
}

// ErrOtherFilesystem is returned for a file on another filesystem than
// the one it was required on (a mount inside the data dir).
var ErrOtherFilesystem = errors.New("on another filesystem (a mount inside the data dir)")

// OpenRegularOnDev is OpenRegularAt for a file that must be on the
// filesystem dev: one on another (a FUSE or bind mount over the name) is
// refused with ErrOtherFilesystem before it is opened for reading or
// asked for its attributes, so its owner, mode and bytes are never taken
// and a FUSE daemon that never answers cannot hold the caller.
func OpenRegularOnDev(dirfd int, name, path string, dev uint64) (*os.File, Stat, error) {
	pfd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, Stat{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	st, err := fstatNoSync(pfd)
	if err != nil {
		return nil, Stat{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if st.Dev != dev {
		return nil, st, &os.PathError{Op: "open", Path: path, Err: ErrOtherFilesystem}
	}
	return reopenRegular(pfd, path)
}

// OpenOwnRegular is OpenRegular below an Own dir: one open (no symlink
// followed, non-blocking should a fifo be there after all), then the
// check that it is a regular file. A caller that knows the tree is
// hotsnap's own (a verify told so) calls it on a dir not marked Own.
func (d *Dir) OpenOwnRegular(rel string) (*os.File, Stat, error) {
	fd, s, err := d.OpenOwnRegularFd(rel)
	if err != nil {
		return nil, s, err
	}
	return os.NewFile(uintptr(fd), d.Join(rel)), s, nil
}

// OpenOwnRegularFd is OpenOwnRegular's bare descriptor (OpenFd), which
// the caller closes.
func (d *Dir) OpenOwnRegularFd(rel string) (int, Stat, error) {
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, Stat{}, d.pathErr("open", rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, Stat{}, d.pathErr("fstat", rel, err)
	}
	s := fromUnix(&st)
	if !s.IsRegular() {
		unix.Close(fd)
		return -1, s, d.pathErr("open", rel, fmt.Errorf("%w: it is a %s", ErrNotRegular, s.TypeName()))
	}
	return fd, s, nil
}

// reopenRegular checks that the O_PATH descriptor pfd is a regular file
// and opens that same inode for reading through /proc/self/fd.
func reopenRegular(pfd int, path string) (*os.File, Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, Stat{}, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	s := fromUnix(&st)
	if !s.IsRegular() {
		return nil, s, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: it is a %s", ErrNotRegular, s.TypeName())}
	}
	fd, err := unix.Open(procFd(pfd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, Stat{}, &os.PathError{Op: "reopen", Path: path, Err: err}
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
		unix.Close(fd)
		return nil, Stat{}, &os.PathError{Op: "reopen", Path: path, Err: errors.New("the file changed while it was opened")}
	}
	return os.NewFile(uintptr(fd), path), s, nil
}

// procFd names an open descriptor in /proc: opening (or linking) it
// reaches the very inode the descriptor holds.
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// parent opens the directory holding rel and returns it with rel's last
// component. For a single-component rel it is d itself (close is a no-op).
func (d *Dir) parent(rel string) (fd int, base string, done func(), err error) {
	if err := checkRel(rel); err != nil {
		return -1, "", nil, err
	}
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return d.fd, rel, func() {}, nil
	}
	pfd, err := d.openat(rel[:i], unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", nil, d.pathErr("open dir", rel[:i], err)
	}
	return pfd, rel[i+1:], func() { unix.Close(pfd) }, nil
}

// Detach returns the directory's descriptor and gives up owning it: Close
// no longer closes it.
func (d *Dir) Detach() int {
	fd := d.fd
	d.fd = -1
	return fd
}
