package fsutil

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Making a million small files is mostly system calls: create, write, set
// the owner, the mode and the mtime, close. A Maker knows what a new file
// below its directory gets by itself (the process's owner, or the
// directory's group where it is setgid, and the creation mode less the
// umask), so it makes a file with its final mode at creation and skips
// the chown and chmod that would change nothing: four calls instead of
// seven for most files of a restored tree.

// Maker makes new files with given attributes below one directory.
type Maker struct {
	d     *Dir
	uid   uint32
	gid   uint32
	setgd bool   // the directory is setgid: new files take its group
	umask uint32 // 0o7777 where a default ACL, not the umask, decides
}

// NewMaker reads what new files below d get by themselves. Directories
// made below d later must not be made setgid before the files are in
// (they inherit d's bit, which NewMaker accounts for).
func NewMaker(d *Dir) (*Maker, error) {
	st, err := d.Stat()
	if err != nil {
		return nil, err
	}
	m := &Maker{d: d, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()),
		setgd: st.Mode&unix.S_ISGID != 0, umask: processUmask()}
	// A default ACL (inherited by the directories made below d) replaces
	// the umask: then every file gets its chmod.
	if _, err := unix.Fgetxattr(d.fd, "system.posix_acl_default", nil); err != unix.ENODATA && err != unix.EOPNOTSUPP {
		m.umask = 0o7777
	}
	return m, nil
}

// processUmask reads the umask without changing it (umask(2) would, for
// every thread, for a moment); 0o7777 (assume the worst: always chmod)
// where /proc does not say.
func processUmask() uint32 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o7777
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o7777
}

// Write creates rel (it must not exist; never through a symlink) holding
// data, with owner uid:gid (where permitted, as SetOwnerMode), mode and
// mtime.
func (m *Maker) Write(rel string, data []byte, uid, gid, mode uint32, mtimeNs int64) (err error) {
	perm := mode & 0o777
	chown := uid != m.uid || gid != m.gid || m.setgd
	chmod := chown || mode&^0o777 != 0 || perm&m.umask != 0
	create := perm
	if chmod {
		create = 0o600 // private until its owner and mode are set
	}
	fd, err := m.d.openat(rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, create)
	if err != nil {
		return m.d.pathErr("create", rel, err)
	}
	defer func() {
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = m.d.pathErr("close", rel, cerr)
		}
	}()
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m.d.pathErr("write", rel, err)
		}
		rest = rest[n:]
	}
	if chmod {
		if err := SetOwnerMode(fd, uid, gid, mode); err != nil {
			return m.d.pathErr("chmod", rel, err)
		}
	}
	if err := SetMtimeFd(fd, mtimeNs); err != nil {
		return m.d.pathErr("set mtime", rel, err)
	}
	return nil
}
