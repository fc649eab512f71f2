package archive

import (
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// ID is a chunk's BLAKE3 (of its plaintext), or a pack's (of its bytes).
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return id, fmt.Errorf("%w: bad id %q", ErrCorrupt, s)
	}
	copy(id[:], b)
	return id, nil
}

func hashOf(b []byte) ID { return ID(blake3.Sum256(b)) }

// Blob encodings: the first byte of every blob in a pack.
const (
	blobRaw  = 0
	blobZstd = 1
)

// encoderOptions are the zstd settings of every blob: the default level
// (about zstd's level 3), entropy coding of literals even in blocks where
// no match is found (text from a large vocabulary has few matches in its
// first blocks, yet its letters compress by a third), no frame checksum
// (every chunk is checked against its BLAKE3 id on reading) and a 512 KiB
// window, as restic uses, which bounds the decoder's memory per blob.
// Measured on 512 MiB of text (docs/DESIGN.md, "Compression"): windows of
// 256 KiB to 2 MiB differ by under 0.3 %.
func encoderOptions() []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithAllLitEntropyCompression(true),
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(512 << 10),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true),
	}
}

var (
	encoders = sync.Pool{New: func() any {
		e, _ := zstd.NewWriter(nil, encoderOptions()...)
		return e
	}}
	// decoder never writes past the capacity of the buffer it is given
	// (the chunk's length, from the index or a trailer): a blob that
	// claims more is an error, not an allocation.
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecodeAllCapLimit(true))
)

// encodeBlob compresses a chunk into a blob (header byte + payload); a
// chunk that does not shrink is stored raw. dst is reused when large
// enough. There is no incompressibility probe: zstd itself gives up on
// random data at about 6 GB/s per core (BenchmarkEncodeBlob), and a probe
// of a chunk's head misjudges chunks whose head is unlike the rest (it
// once stored 3 % of a text archive raw).
func encodeBlob(dst, chunk []byte) []byte {
	e := encoders.Get().(*zstd.Encoder)
	defer encoders.Put(e)
	dst = e.EncodeAll(chunk, append(dst[:0], blobZstd))
	if len(dst)-1 >= len(chunk) {
		dst = append(dst[:0], blobRaw)
		dst = append(dst, chunk...)
	}
	return dst
}

// decodeBlob opens a stored blob (decrypting it when c is set), returns its
// plaintext chunk and checks it against id and rawLen.
func decodeBlob(c *crypter, stored []byte, id ID, rawLen int) ([]byte, error) {
	blob, err := c.open(stored)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", id, err)
	}
	if len(blob) == 0 {
		return nil, fmt.Errorf("%w: empty blob %s", ErrCorrupt, id)
	}
	var out []byte
	switch blob[0] {
	case blobRaw:
		out = blob[1:]
	case blobZstd:
		var err error
		out, err = decoder.DecodeAll(blob[1:], make([]byte, 0, rawLen))
		if err != nil {
			return nil, fmt.Errorf("%w: blob %s does not decompress to its %d bytes: %v", ErrCorrupt, id, rawLen, err)
		}
	default:
		return nil, fmt.Errorf("%w: blob %s has unknown encoding %d", ErrCorrupt, id, blob[0])
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, the index says %d", ErrCorrupt, id, len(out), rawLen)
	}
	if c.chunkID(out) != id {
		return nil, fmt.Errorf("%w: blob %s does not hash to its id", ErrCorrupt, id)
	}
	return out, nil
}
