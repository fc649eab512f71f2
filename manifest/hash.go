package manifest

import (
	"encoding/hex"
	"io"
	"os"
	"sync"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// hashBufSize is the read size for hashing: large reads let BLAKE3 use its
// wide SIMD paths and keep syscalls few.
const hashBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// HashFile returns the hex BLAKE3 of the file at p and the number of bytes read.
func HashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return HashReader(f)
}

// HashOwnFileAt returns the hex BLAKE3 of the file rel below dir, a tree
// only hotsnap's user can change (staging, a backups dir of its own), and
// the number of bytes read: one open, never through a symlink.
func HashOwnFileAt(dir *fsutil.Dir, rel string) (string, int64, error) {
	fd, err := dir.OpenFd(rel, unix.O_RDONLY)
	if err != nil {
		return "", 0, err
	}
	defer unix.Close(fd)
	sum, n, err := HashFd(fd)
	if err != nil {
		err = &os.PathError{Op: "read", Path: dir.Join(rel), Err: err}
	}
	return sum, n, err
}

// HashFd returns the hex BLAKE3 of what the descriptor fd yields to its
// end, and its length: HashReader without an *os.File around it.
func HashFd(fd int) (string, int64, error) { return HashReader(fdReader(fd)) }

// fdReader reads a bare descriptor.
type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// hashers are reused: a BLAKE3 hasher is a large object, and a create
// hashes a million small files.
var hashers = sync.Pool{New: func() any { return blake3.New() }}

// HashReader returns the hex BLAKE3 of everything r yields, and its length.
func HashReader(r io.Reader) (string, int64, error) {
	h := hashers.Get().(*blake3.Hasher)
	defer hashers.Put(h)
	h.Reset()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{r}, *bp)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Hasher computes a hex BLAKE3 over what is written to it.
type Hasher struct{ h *blake3.Hasher }

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher { return &Hasher{h: blake3.New()} }

func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum is the hex BLAKE3 of everything written.
func (h *Hasher) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// HashBytes returns the hex BLAKE3 of b.
func HashBytes(b []byte) string {
	h := hashers.Get().(*blake3.Hasher)
	defer hashers.Put(h)
	h.Reset()
	h.Write(b)
	var sum [32]byte
	h.Sum(sum[:0])
	return hex.EncodeToString(sum[:])
}
