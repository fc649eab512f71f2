package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// Lstat stats rel without following it, and without asking a FUSE
// daemon for fresh attributes (LstatAt): a mount inside the data dir is
// seen by its Dev and never waited on.
func (d *Dir) Lstat(rel string) (Stat, error) {
	if rel == "." {
		return d.Stat()
	}
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return Stat{}, err
	}
	defer done()
	st, err := LstatAt(pfd, base)
	if err != nil {
		return Stat{}, d.pathErr("lstat", rel, err)
	}
	return st, nil
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
	var flags uint
	if noReplace {
		flags = unix.RENAME_NOREPLACE
	}
	return d.between("rename", rel, to, toRel, func(pfd int, base string, tfd int, tbase string) error {
		return unix.Renameat2(pfd, base, tfd, tbase, flags)
	})
}

// Link makes toRel beneath to a hard link of the entry rel (never
// following it: a symlink is linked as a symlink).
func (d *Dir) Link(rel string, to *Dir, toRel string) error {
	return d.between("link", rel, to, toRel, func(pfd int, base string, tfd int, tbase string) error {
		return unix.Linkat(pfd, base, tfd, tbase, 0)
	})
}

// between calls fn with the parents of rel beneath d and of toRel beneath
// to, each opened with no symlink followed.
func (d *Dir) between(op, rel string, to *Dir, toRel string, fn func(pfd int, base string, tfd int, tbase string) error) error {
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
	if err := fn(pfd, base, tfd, tbase); err != nil {
		return &os.PathError{Op: op, Path: d.Join(rel) + " -> " + to.Join(toRel), Err: err}
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
	names, _, err := d.NamesAndTypes(rel)
	return names, err
}

// NamesAndTypes is Names with each name's file type as the listing gives
// it (S_IFMT bits; 0 where the filesystem does not say): a caller that
// needs only the type of an entry saves its stat.
func (d *Dir) NamesAndTypes(rel string) ([]string, []uint32, error) {
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, nil, d.pathErr("open dir", rel, err)
	}
	ents, err := readDirents(fd, d.Join(rel))
	if err != nil {
		return nil, nil, err
	}
	names, types := make([]string, len(ents)), make([]uint32, len(ents))
	for i, e := range ents {
		names[i], types[i] = e.name, e.typ
	}
	return names, types, nil
}

// readNames lists a directory, sorted, and closes fd (which must be the
// directory's own open file description: reading moves its offset).
func readNames(fd int, path string) ([]string, error) {
	ents, err := readDirents(fd, path)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.name
	}
	return names, nil
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

// Xattr reads the extended attribute name of the entry rel beneath d
// (never through a symlink), or of d itself for "." ; a missing attribute
// or entry is ("", false).
func (d *Dir) Xattr(rel, name string) (string, bool) {
	fd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	return FdXattr(fd, name)
}

// FdXattr reads the extended attribute name of the open descriptor fd
// (an O_PATH one included, through /proc/self/fd).
func FdXattr(fd int, name string) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Getxattr(procFd(fd), name, buf)
	if err != nil || n <= 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// SetXattr sets the extended attribute name of the directory d.
func (d *Dir) SetXattr(name, value string) error {
	return unix.Setxattr(procFd(d.fd), name, []byte(value), 0)
}
