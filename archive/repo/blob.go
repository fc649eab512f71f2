package repo

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// ID is a chunk's BLAKE3 (of its plaintext), or a pack's (of its bytes).
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Compare orders ids as bytes.Compare orders their bytes, a word at a time
// (sorting and searching a million ids is most of a gc's work).
func (id *ID) Compare(o *ID) int {
	for i := 0; i < len(id); i += 8 {
		a, b := binary.BigEndian.Uint64(id[i:]), binary.BigEndian.Uint64(o[i:])
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

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

func HashOf(b []byte) ID { return ID(blake3.Sum256(b)) }

// Blob encodings: the first byte of every blob in a pack.
const (
	blobRaw  = 0
	blobZstd = 1
)

// EncoderOptions are the zstd settings of every blob: the default level
// (about zstd's level 3), no frame checksum (every chunk is checked on
// reading: against its BLAKE3 id, or as part of a file against the
// manifest's BLAKE3) and a 512 KiB window, as restic uses, which
// bounds the decoder's memory per blob. With literals, entropy coding in
// every block, even those where no match is found (text from a large
// vocabulary has few matches in its first blocks, yet its letters compress
// by a third): only when order-0 entropy says the chunk's bytes can shrink
// (literalsCanShrink), since trying costs ten times the match search on a
// small random chunk. Measured on 512 MiB of text (docs/DESIGN.md,
// "Compression"): windows of 256 KiB to 2 MiB differ by under 0.3 %.
func EncoderOptions(literals bool) []zstd.EOption {
	return EncoderAt(zstd.SpeedDefault, literals)
}

// SmallChunk is the size under which a chunk is compressed at zstd's
// fastest level: a small file is a chunk of its own, and at the default
// level the match finder's tables, cold in the cache, cost 10 µs for a
// 1 KiB chunk (half an upload of a million such files); the fastest
// level's are smaller. Text of 4 KiB comes out 1 % larger.
const SmallChunk = 64 << 10

// EncoderAt is EncoderOptions at another zstd level.
func EncoderAt(level zstd.EncoderLevel, literals bool) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderLevel(level),
		zstd.WithAllLitEntropyCompression(literals),
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(512 << 10),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true),
	}
}

var (
	// encoders by [small chunk][literals]
	encoders = [2][2]sync.Pool{
		{
			{New: func() any { e, _ := zstd.NewWriter(nil, EncoderOptions(false)...); return e }},
			{New: func() any { e, _ := zstd.NewWriter(nil, EncoderOptions(true)...); return e }},
		},
		{
			{New: func() any { e, _ := zstd.NewWriter(nil, EncoderAt(zstd.SpeedFastest, false)...); return e }},
			{New: func() any { e, _ := zstd.NewWriter(nil, EncoderAt(zstd.SpeedFastest, true)...); return e }},
		},
	}
	// decoder never writes past the capacity of the buffer it is given
	// (the chunk's length, from the index or a trailer): a blob that
	// claims more is an error, not an allocation.
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecodeAllCapLimit(true))
)

// EncodeBlob compresses a chunk into a blob (header byte + payload); a
// chunk that does not shrink is stored raw. dst is reused when large
// enough. zstd always runs (it finds repeats in any data, and gives up on
// random data at gigabytes a second); entropy coding of literal-only
// blocks runs when the chunk's byte statistics say it can gain. (An older
// probe compressed a chunk's first 32 KiB and stored the chunk raw when
// that did not shrink: it misjudged text whose head finds no match.)
func EncodeBlob(dst, chunk []byte) []byte {
	small, lit := 0, 0
	if len(chunk) < SmallChunk {
		small = 1
	}
	if literalsCanShrink(chunk) {
		lit = 1
	}
	pool := &encoders[small][lit]
	e := pool.Get().(*zstd.Encoder)
	defer pool.Put(e)
	dst = e.EncodeAll(chunk, append(dst[:0], blobZstd))
	if len(dst)-1 >= len(chunk) {
		dst = append(dst[:0], blobRaw)
		dst = append(dst, chunk...)
	}
	return dst
}

// literalSample bounds the bytes literalsCanShrink counts: up to 16
// stretches of 4 KiB spread evenly over the chunk, so a chunk whose head is
// random and whose rest is text is judged by both.
const literalSample = 16

// literalsCanShrink says whether entropy coding of the chunk's bytes taken
// one at a time (what zstd does to literals) could save over 3 %: the
// order-0 entropy of a sample of the chunk, in bits, plus a Huffman
// table's size, against the sample's size. It is a bound, not a guess:
// when it says no, no Huffman code of those bytes saves anything.
func literalsCanShrink(chunk []byte) bool {
	var hist [256]uint32
	n := 0
	if len(chunk) <= literalSample*4096 {
		for _, c := range chunk {
			hist[c]++
		}
		n = len(chunk)
	} else {
		step := len(chunk) / literalSample
		for k := range literalSample {
			for _, c := range chunk[k*step : k*step+4096] {
				hist[c]++
			}
		}
		n = literalSample * 4096
	}
	if n < 64 {
		return false
	}
	bits := float64(n) * log2(uint32(n))
	for _, c := range hist {
		if c > 0 {
			bits -= float64(c) * log2(c)
		}
	}
	const table = 64 * 8 // a Huffman table's header, in bits, about
	return bits+table < 0.97*8*float64(n)
}

// decodeBlob opens a stored blob (decrypting it when c is set), returns its
// plaintext chunk and checks it against id and rawLen.
func decodeBlob(c *crypter, stored []byte, id ID, rawLen int) ([]byte, error) {
	var dst []byte
	out, err := openBlob(c, &dst, stored, id, rawLen)
	if err != nil {
		return nil, err
	}
	if err := checkChunk(c, out, id); err != nil {
		return nil, err
	}
	return out, nil
}

// checkChunk says whether chunk is the content of id.
func checkChunk(c *crypter, chunk []byte, id ID) error {
	if c.chunkID(chunk) != id {
		return fmt.Errorf("%w: blob %s does not hash to its id", ErrCorrupt, id)
	}
	return nil
}

// openBlob opens a stored blob and decompresses it into *dst's memory (a
// buffer grown there when it has no room for rawLen bytes; a raw blob is
// returned in place), checking its length but not its id.
func openBlob(c *crypter, dst *[]byte, stored []byte, id ID, rawLen int) ([]byte, error) {
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
		if cap(*dst) < rawLen {
			*dst = make([]byte, 0, rawLen)
		}
		var err error
		out, err = decoder.DecodeAll(blob[1:], (*dst)[:0])
		if err != nil {
			return nil, fmt.Errorf("%w: blob %s does not decompress to its %d bytes: %v", ErrCorrupt, id, rawLen, err)
		}
	default:
		return nil, fmt.Errorf("%w: blob %s has unknown encoding %d", ErrCorrupt, id, blob[0])
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, the index says %d", ErrCorrupt, id, len(out), rawLen)
	}
	return out, nil
}

// log2Mant[i] is log2(1 + i/256): log2 reads a count's top bits from it,
// within 0.006 bits, a twentieth of math.Log2's cost (it ran 256 times a
// chunk).
var log2Mant = func() (t [257]float64) {
	for i := range t {
		t[i] = math.Log2(1 + float64(i)/256)
	}
	return t
}()

// log2 of c > 0, to within 0.006.
func log2(c uint32) float64 {
	e := bits.Len32(c) - 1
	var m uint32
	if e >= 8 {
		m = (c >> (e - 8)) & 255
	} else {
		m = (c << (8 - e)) & 255
	}
	return float64(e) + log2Mant[m]
}
