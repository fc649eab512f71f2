package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/errs"
)

// ErrNoSpace is returned when a filesystem has less free space than a
// command will write; checked before anything is written (exit 1).
var ErrNoSpace = errs.New(errs.Error, "not enough free space")

// ErrInsecureFile is returned by ReadSecretFile for a secret that others
// may read or write.
var ErrInsecureFile = errs.New(errs.Usage, "insecure permissions")

// maxSecret bounds a secret file (keys, tokens, a remotes file).
const maxSecret = 1 << 20

// ReadSecretFile reads a file holding a secret (a key, a token, a file of
// credentials), refusing it, as ssh refuses a private key, when anyone but
// its owner may read or write it, or when its owner is neither the
// invoking user nor root: a secret others can read is no longer one, and
// one others can write is theirs. what names it in errors. The path is
// held to ReadTrustedFile's rules too.
func ReadSecretFile(path, what string) ([]byte, error) {
	return readTrusted(path, what, true)
}

// ReadTrustedFile reads a file whose content hotsnap obeys (a policy),
// with ssh's StrictModes rules: the file must be a regular file owned by
// the invoking user or root and writable by no one else; no component of
// its path may be a symlink (so nobody can point it elsewhere); and every
// directory above it must be owned by the invoking user or root and
// writable by no one else, unless it is sticky (like /tmp, where others
// cannot rename what they do not own). Others may read it. what names it
// in errors, each of which says the fix.
func ReadTrustedFile(path, what string) ([]byte, error) {
	return readTrusted(path, what, false)
}

func readTrusted(path, what string, secret bool) ([]byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, _, err := OpenRegularPath(abs)
	if errors.Is(err, ErrSymlink) {
		return nil, fmt.Errorf("%w: %s %s: a component of its path is a symlink; fix: give the real path", ErrInsecureFile, what, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	st, err := Fstat(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.IsRegular() {
		return nil, fmt.Errorf("%s %s is a %s, not a file", what, path, st.TypeName())
	}
	euid := uint32(os.Geteuid())
	if st.UID != euid && st.UID != 0 {
		return nil, fmt.Errorf("%w: %s %s is owned by uid %d, not by uid %d (who runs hotsnap) or root; fix: chown %d %s", ErrInsecureFile, what, path, st.UID, euid, euid, path)
	}
	if secret && st.Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s %s has mode %04o: others may read or write it; fix: chmod 600 %s", ErrInsecureFile, what, path, st.Perm(), path)
	}
	if st.Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: %s %s has mode %04o: others may write it; fix: chmod go-w %s", ErrInsecureFile, what, path, st.Perm(), path)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		var ds unix.Stat_t
		if err := unix.Lstat(dir, &ds); err != nil {
			return nil, fmt.Errorf("%s: %w", what, &os.PathError{Op: "lstat", Path: dir, Err: err})
		}
		if ds.Uid != euid && ds.Uid != 0 {
			return nil, fmt.Errorf("%w: %s %s: directory %s is owned by uid %d, who may replace the file; fix: keep it in a directory of uid %d or root", ErrInsecureFile, what, path, dir, ds.Uid, euid)
		}
		if ds.Mode&0o022 != 0 && ds.Mode&unix.S_ISVTX == 0 {
			return nil, fmt.Errorf("%w: %s %s: directory %s has mode %04o: others may replace the file; fix: chmod go-w %s", ErrInsecureFile, what, path, dir, ds.Mode&0o7777, dir)
		}
		if dir == "/" {
			break
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) > maxSecret {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, maxSecret)
	}
	return b, nil
}

// OpenRegularPath opens the regular file at the absolute path abs for
// reading, with no symlink followed in any component (ErrSymlink
// otherwise), and returns its stat; anything but a regular file is
// refused (ErrNotRegular) before it is opened for reading.
func OpenRegularPath(abs string) (*os.File, Stat, error) {
	if !filepath.IsAbs(abs) {
		return nil, Stat{}, fmt.Errorf("%s: not an absolute path", abs)
	}
	root, err := OpenDir("/")
	if err != nil {
		return nil, Stat{}, err
	}
	defer root.Close()
	rel := strings.TrimLeft(filepath.Clean(abs), "/")
	if rel == "" {
		return nil, Stat{}, fmt.Errorf("%s is a directory", abs)
	}
	return root.OpenRegular(rel)
}

// DirsOwner says whose the directories above the absolute path abs are:
// 0 when each is root's and writable by no one else (or sticky, as /tmp);
// the uid of the one user who owns some of them (that user may replace
// what abs names, so anything found there is only as trusted as that
// user); an error when a directory is writable by others, or owned by two
// users.
func DirsOwner(abs string) (uint32, error) {
	owner := uint32(0)
	for dir := filepath.Dir(filepath.Clean(abs)); ; dir = filepath.Dir(dir) {
		var ds unix.Stat_t
		if err := unix.Lstat(dir, &ds); err != nil {
			return 0, &os.PathError{Op: "lstat", Path: dir, Err: err}
		}
		if ds.Mode&0o022 != 0 && ds.Mode&unix.S_ISVTX == 0 {
			return 0, fmt.Errorf("%w: directory %s has mode %04o: anyone may replace what is in it", ErrInsecureFile, dir, ds.Mode&0o7777)
		}
		if ds.Uid != 0 {
			if owner != 0 && owner != ds.Uid {
				return 0, fmt.Errorf("%w: the directories above %s belong to uid %d and uid %d", ErrInsecureFile, abs, owner, ds.Uid)
			}
			owner = ds.Uid
		}
		if dir == "/" {
			return owner, nil
		}
	}
}

// WriteSecretFile creates path (which must not exist) with data, mode 0600,
// never through a symlink, and fsyncs it and its directory.
func WriteSecretFile(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if _, err = f.Write(data); err == nil {
		if err = unix.Fchmod(fd, 0o600); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return SyncDir(dirOf(path))
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return "."
}
