package fsutil

import (
	"fmt"
	"io"
	"os"

	"github.com/hotsnap/hotsnap/errs"
	"golang.org/x/sys/unix"
)

// ErrInsecureFile is returned by ReadSecretFile for a secret that others
// may read or write.
var ErrInsecureFile = errs.New(errs.Usage, "insecure permissions")

// maxSecret bounds a secret file (keys, tokens, a remotes file).
const maxSecret = 1 << 20

// ReadSecretFile reads a file holding a secret (a key, a token, a file of
// credentials), refusing it, as ssh refuses a private key, when anyone but
// its owner may read or write it, or when its owner is neither the
// invoking user nor root: a secret others can read is no longer one, and
// one others can write is theirs. what names it in errors.
func ReadSecretFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
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
	if euid := uint32(os.Geteuid()); st.UID != euid && st.UID != 0 {
		return nil, fmt.Errorf("%w: %s %s is owned by uid %d, not by uid %d (who runs hotsnap) or root; fix: chown %d %s", ErrInsecureFile, what, path, st.UID, euid, euid, path)
	}
	if st.Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s %s has mode %04o: others may read or write it; fix: chmod 600 %s", ErrInsecureFile, what, path, st.Perm(), path)
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
