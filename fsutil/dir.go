package fsutil

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

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
	return &Dir{fd: fd, path: d.Join(rel)}, nil
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

// Create creates the file rel, which must not exist, for writing.
func (d *Dir) Create(rel string, perm uint32) (*os.File, error) {
	return d.OpenFile(rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, perm)
}

// OpenRegular opens the regular file rel for reading and returns its stat.
// Anything else in its place (symlink, fifo, socket, device, dir) is
// refused with ErrNotRegular before it is opened for reading, so a device
// planted by a hard link is never opened and a fifo never blocks.
func (d *Dir) OpenRegular(rel string) (*os.File, Stat, error) {
	pfd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return nil, Stat{}, d.pathErr("open", rel, err)
	}
	defer unix.Close(pfd)
	f, st, err := reopenRegular(pfd, d.Join(rel))
	if err != nil {
		return nil, Stat{}, err
	}
	return f, st, nil
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

// Lstat stats rel without following it.
func (d *Dir) Lstat(rel string) (Stat, error) {
	if rel == "." {
		return d.Stat()
	}
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return Stat{}, err
	}
	defer done()
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Stat{}, d.pathErr("lstat", rel, err)
	}
	return fromUnix(&st), nil
}

// Exists reports whether rel exists (as anything; links not followed).
func (d *Dir) Exists(rel string) bool {
	_, err := d.Lstat(rel)
	return err == nil
}

// Mkdir creates the directory rel.
func (d *Dir) Mkdir(rel string, perm uint32) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Mkdirat(pfd, base, perm); err != nil {
		return d.pathErr("mkdir", rel, err)
	}
	return nil
}

// Symlink creates rel as a symlink to target (which is never resolved).
func (d *Dir) Symlink(target, rel string) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Symlinkat(target, pfd, base); err != nil {
		return d.pathErr("symlink", rel, err)
	}
	return nil
}

// Readlink returns the target of the symlink rel.
func (d *Dir) Readlink(rel string) (string, error) {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return "", err
	}
	defer done()
	t, err := ReadlinkAt(pfd, base, 0)
	if err != nil {
		return "", d.pathErr("readlink", rel, err)
	}
	return t, nil
}

// ReadlinkAt reads the target of the symlink name in dirfd; sizeHint is
// its lstat size when known.
func ReadlinkAt(dirfd int, name string, sizeHint int64) (string, error) {
	n := max(int(sizeHint)+1, 256)
	for {
		buf := make([]byte, n)
		got, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if got < n {
			return string(buf[:got]), nil
		}
		n *= 2
	}
}

// Remove removes the file, symlink or empty directory rel.
func (d *Dir) Remove(rel string) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	err = unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return d.pathErr("remove", rel, err)
	}
	return nil
}

// Rename moves rel to toRel beneath to (same filesystem). With noReplace
// an existing toRel makes it fail with EEXIST instead of being replaced.
func (d *Dir) Rename(rel string, to *Dir, toRel string, noReplace bool) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	tfd, tbase, tdone, err := to.parent(toRel)
	if err != nil {
		return err
	}
	defer tdone()
	var flags uint
	if noReplace {
		flags = unix.RENAME_NOREPLACE
	}
	if err := unix.Renameat2(pfd, base, tfd, tbase, flags); err != nil {
		return &os.PathError{Op: "rename", Path: d.Join(rel) + " -> " + to.Join(toRel), Err: err}
	}
	return nil
}

// Link makes toRel beneath to a hard link of the entry rel (never
// following it: a symlink is linked as a symlink).
func (d *Dir) Link(rel string, to *Dir, toRel string) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	tfd, tbase, tdone, err := to.parent(toRel)
	if err != nil {
		return err
	}
	defer tdone()
	if err := unix.Linkat(pfd, base, tfd, tbase, 0); err != nil {
		return &os.PathError{Op: "link", Path: d.Join(rel) + " -> " + to.Join(toRel), Err: err}
	}
	return nil
}

// LinkFile makes toRel beneath to a hard link of the open file f: the very
// inode that was opened and checked, whatever has since happened to its name.
func LinkFile(f *os.File, to *Dir, toRel string) error {
	tfd, tbase, tdone, err := to.parent(toRel)
	if err != nil {
		return err
	}
	defer tdone()
	err = unix.Linkat(unix.AT_FDCWD, procFd(int(f.Fd())), tfd, tbase, unix.AT_SYMLINK_FOLLOW)
	if err == unix.ENOENT {
		// No /proc: AT_EMPTY_PATH does the same for a privileged process.
		err = unix.Linkat(int(f.Fd()), "", tfd, tbase, unix.AT_EMPTY_PATH)
	}
	if err != nil {
		return &os.PathError{Op: "link", Path: f.Name() + " -> " + to.Join(toRel), Err: err}
	}
	return nil
}

// Names lists the names in the directory rel ("." for d itself), sorted.
func (d *Dir) Names(rel string) ([]string, error) {
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, d.pathErr("open dir", rel, err)
	}
	return readNames(fd, d.Join(rel))
}

// readNames lists a directory, sorted, and closes fd (which must be the
// directory's own open file description: reading moves its offset).
func readNames(fd int, path string) ([]string, error) {
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

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

// Detach returns the directory's descriptor and gives up owning it: Close
// no longer closes it.
func (d *Dir) Detach() int {
	fd := d.fd
	d.fd = -1
	return fd
}

// Lchown sets the owner of rel itself (a symlink is not followed).
func (d *Dir) Lchown(rel string, uid, gid uint32) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Fchownat(pfd, base, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.pathErr("chown", rel, err)
	}
	return nil
}
