package manifest

import (
	"encoding/hex"
	"io"
	"os"
	"sync"

	"github.com/zeebo/blake3"
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

// HashReader returns the hex BLAKE3 of everything r yields, and its length.
func HashReader(r io.Reader) (string, int64, error) {
	h := blake3.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{r}, *bp)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
