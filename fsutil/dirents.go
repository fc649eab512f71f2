package fsutil

import (
	"encoding/binary"
	"os"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// dirent is one name of a directory listing as getdents64(2) gives it:
// the name's inode number and file type (S_IFMT bits; 0 when the
// filesystem does not say, DT_UNKNOWN).
type dirent struct {
	name string
	ino  uint64
	typ  uint32
}

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readDirents lists a directory with the inode numbers and types its
// entries carry, sorted by name, and closes fd (which must be the
// directory's own open file description: reading moves its offset).
// Unlike a readdir of names alone, nothing is lost: the listing already
// holds both, and a walk that needs no more of an entry saves its stat.
func readDirents(fd int, path string) ([]dirent, error) {
	defer unix.Close(fd)
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var out []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: path, Err: err}
		}
		if n <= 0 {
			break
		}
		// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16,
		// d_type u8, d_name (NUL-terminated, padded to d_reclen).
		for b := buf[:n]; len(b) > 0; {
			if len(b) < 19 {
				return nil, &os.PathError{Op: "readdirent", Path: path, Err: unix.EIO}
			}
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return nil, &os.PathError{Op: "readdirent", Path: path, Err: unix.EIO}
			}
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if s := string(name); s != "." && s != ".." {
				out = append(out, dirent{name: s, ino: binary.NativeEndian.Uint64(b[0:8]), typ: uint32(b[18]) << 12})
			}
			b = b[reclen:]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}
