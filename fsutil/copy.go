package fsutil

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ErrReflinkUnsupported is returned by Reflink when the filesystem cannot
// share extents between files (ext4, tmpfs, or two filesystems).
var ErrReflinkUnsupported = errors.New("reflink not supported by this filesystem")

// Reflink creates dst as a copy-on-write clone of src (FICLONE). dst must not
// exist. On failure dst is removed.
func Reflink(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		out.Close()
		os.Remove(dst)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			return ErrReflinkUnsupported
		}
		return &os.PathError{Op: "ficlone", Path: dst, Err: err}
	}
	return out.Close()
}

// CopyFile copies src to a new file dst (which must not exist) with the given
// permission bits. The kernel does the copy (copy_file_range) where it can.
// It returns dst's stat. On failure dst is removed.
func CopyFile(src, dst string, perm os.FileMode) (Stat, error) {
	in, err := os.Open(src)
	if err != nil {
		return Stat{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return Stat{}, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return Stat{}, err
	}
	st, err := Fstat(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return Stat{}, err
	}
	return st, nil
}
