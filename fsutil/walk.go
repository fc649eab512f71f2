package fsutil

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// WalkFunc is called by Walk for each entry below the walked directory,
// with its slash path relative to it and its lstat. Returning fs.SkipDir
// for a directory skips its contents; any other error stops the walk.
type WalkFunc func(rel string, st Stat) error

// ErrFunc decides what a walk does about an entry it could not stat or a
// directory it could not open or read (it vanished, or was swapped for a
// symlink): nil goes on without it, an error stops the walk. A nil ErrFunc
// stops at the first such error.
type ErrFunc func(rel string, err error) error

// Walk visits every entry below d in the byte order of their slash paths
// (the order of manifests: "a", "a.txt", "a/b"), each directory before its
// entries. It never follows a symlink: each directory is opened through its
// parent's descriptor with O_NOFOLLOW, so a directory swapped for a symlink
// during the walk is an error for onErr, never a way out. Memory is one
// listing (names and stats) and one descriptor per level of depth.
func (d *Dir) Walk(ctx context.Context, fn WalkFunc, onErr ErrFunc) error {
	return d.WalkEntries(ctx, func(rel string, e *Entry) error {
		st, err := e.Stat()
		if err != nil {
			if err := handleWalkErr(onErr, rel, err); err != nil {
				return err
			}
			return fs.SkipDir // passed over, and never entered
		}
		return fn(rel, st)
	}, onErr)
}

// Entry is an entry met by WalkEntries: what its directory's listing says
// of it (the inode number and type of the name), and its lstat, made on
// the first call of Stat, while its directory is open.
type Entry struct {
	// Ino is the listing's inode number. For a mount point that is the
	// entry it covers, not what is mounted on it (Stat says that).
	Ino uint64
	// DirDev is the device of the directory the entry is in.
	DirDev  uint64
	typ     uint32 // S_IFMT bits; 0 until known
	dirfd   int
	name    string
	dirPath string
	st      Stat
	statted bool
	err     error
}

// Stat is the entry's lstat (made once, on the first call).
func (e *Entry) Stat() (Stat, error) {
	if !e.statted {
		e.statted = true
		var st unix.Stat_t
		if err := unix.Fstatat(e.dirfd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			e.err = &os.PathError{Op: "lstat", Path: e.dirPath + "/" + e.name, Err: err}
		} else {
			e.st = fromUnix(&st)
			e.typ = e.st.Mode & unix.S_IFMT
		}
	}
	return e.st, e.err
}

// TypeName names the entry's type as Stat.TypeName does, from the listing
// where it says (else from a stat; "unknown" if that fails).
func (e *Entry) TypeName() string {
	if e.typ == 0 {
		e.Stat()
	}
	return Stat{Mode: e.typ}.TypeName()
}

// IsDir and IsRegular tell the entry's type, as TypeName does.
func (e *Entry) IsDir() bool     { e.TypeName(); return e.typ == unix.S_IFDIR }
func (e *Entry) IsRegular() bool { e.TypeName(); return e.typ == unix.S_IFREG }

// EntryFunc is called by WalkEntries for each entry below the walked
// directory, with its slash path relative to it. Returning fs.SkipDir for
// a directory skips its contents; any other error stops the walk. The
// entry is valid only during the call.
type EntryFunc func(rel string, e *Entry) error

// WalkEntries is Walk without a stat of every entry: it visits the same
// entries in the same order, each with what its directory's listing says
// (Entry), and stats only the entries whose Stat is asked for (and the
// few whose type the filesystem's listing does not give). A walk that
// needs the stat of some entries only (a file whose listed inode is the
// one it expects needs none) saves a lookup and an inode read each. onErr
// is called for directories that cannot be opened or read; a failed Stat
// is returned to fn.
func (d *Dir) WalkEntries(ctx context.Context, fn EntryFunc, onErr ErrFunc) error {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return d.pathErr("open dir", ".", err)
	}
	defer unix.Close(fd)
	return walkFd(ctx, fd, "", d.path, fn, onErr)
}

// walkItem is an entry of a listing, or (sub) the place of a directory's
// contents: a directory "a" is visited at key "a", its contents at "a/",
// so "a.txt" comes between them, as in byte order of full paths.
type walkItem struct {
	key string
	ent int // index in the listing
	sub bool
}

// walkFd walks the directory open as fd (which the caller closes).
func walkFd(ctx context.Context, fd int, rel, path string, fn EntryFunc, onErr ErrFunc) error {
	var dst unix.Stat_t
	if err := unix.Fstat(fd, &dst); err != nil {
		return handleWalkErr(onErr, rel, &os.PathError{Op: "stat", Path: path, Err: err})
	}
	// Names come from a second open file description, so fd's own offset
	// is untouched.
	lfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return handleWalkErr(onErr, rel, &os.PathError{Op: "open dir", Path: path, Err: err})
	}
	list, err := readDirents(lfd, path)
	if err != nil {
		return handleWalkErr(onErr, rel, err)
	}
	ents := make([]Entry, len(list))
	items := make([]walkItem, 0, len(list)+len(list)/8)
	for i, de := range list {
		ents[i] = Entry{Ino: de.ino, DirDev: uint64(dst.Dev), typ: de.typ, dirfd: fd, name: de.name, dirPath: path}
		items = append(items, walkItem{key: de.name, ent: i})
		if ents[i].IsDir() { // stats an entry whose type is not listed
			items = append(items, walkItem{key: de.name + "/", ent: i, sub: true})
		}
	}
	if len(items) > len(ents) {
		sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	}
	skipped := map[int]bool{}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &ents[it.ent]
		r, p := e.name, path+"/"+e.name
		if rel != "" {
			r = rel + "/" + e.name
		}
		if !it.sub {
			err := fn(r, e)
			if errors.Is(err, fs.SkipDir) {
				skipped[it.ent] = true
				continue
			}
			if err != nil {
				return err
			}
			continue
		}
		if skipped[it.ent] {
			continue
		}
		sub, err := unix.Openat(fd, e.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err := handleWalkErr(onErr, r, &os.PathError{Op: "open dir", Path: p, Err: err}); err != nil {
				return err
			}
			continue
		}
		err = walkFd(ctx, sub, r, p, fn, onErr)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

func handleWalkErr(onErr ErrFunc, rel string, err error) error {
	if onErr == nil {
		return err
	}
	return onErr(rel, err)
}

// IgnoreVanished is an ErrFunc for walks of live data: entries that vanish
// or change type under the walk are passed over; anything else stops it.
func IgnoreVanished(rel string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil
	}
	return err
}

// RemoveAll removes rel and everything below it, through directory
// descriptors, never following a symlink (a symlink is removed, not its
// target). Directories whose modes forbid removing their entries (a tree
// that kept the captured data's 0500) are opened up through their own
// descriptor first. A missing rel is not an error.
func (d *Dir) RemoveAll(rel string) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer done()
	return removeAllAt(pfd, base, d.Join(rel))
}

func removeAllAt(dirfd int, name, path string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.EACCES {
		// A directory we may not read (mode 0 and not root): give it
		// 0700 through an O_PATH descriptor, which names that very inode.
		if pfd, perr := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); perr == nil {
			unix.Chmod(procFd(pfd), 0o700)
			unix.Close(pfd)
			fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
	}
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "open dir", Path: path, Err: err}
	}
	defer unix.Close(fd)
	// Entries are removed until the directory is empty; whoever still
	// holds a descriptor inside it could keep adding, so give up in time.
	for rounds := 0; ; rounds++ {
		if rounds == 100 {
			return &os.PathError{Op: "remove", Path: path, Err: errors.New("entries keep appearing in it")}
		}
		lfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open dir", Path: path, Err: err}
		}
		names, err := readNames(lfd, path)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			break
		}
		opened := false
		for _, n := range names {
			err := removeAllAt(fd, n, path+"/"+n)
			if err != nil && errors.Is(err, unix.EACCES) && !opened {
				unix.Fchmod(fd, 0o700)
				opened = true
				err = removeAllAt(fd, n, path+"/"+n)
			}
			if err != nil {
				return err
			}
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}
