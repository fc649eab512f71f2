package repo

import (
	"encoding/binary"
	"fmt"
)

// A pack is blobs back to back, then a trailer listing them, so a lost
// index can be rebuilt from the packs alone:
//
//	blob 0 | blob 1 | ... | entry 0 | entry 1 | ... | u32 trailer length | "HSPACK01"
//
// entry: 32-byte chunk id, u64 offset, u32 length (of the blob, header byte
// included), u32 raw length (of the chunk). Little-endian.
const (
	packMagic      = "HSPACK01"
	TrailerEntry   = 32 + 8 + 4 + 4
	TrailerTailLen = 4 + len(packMagic)
	maxPackBlobs   = 1 << 20
)

// BlobRef locates one chunk.
type BlobRef struct {
	ID     ID
	Offset int64
	Length int // blob length in the pack
	Raw    int // chunk length
}

// PackWriter accumulates blobs into a pack.
type PackWriter struct {
	buf   []byte
	blobs []BlobRef
}

// NewPackWriter starts a pack in buf (reused; nil for a new one).
func NewPackWriter(buf []byte) *PackWriter { return &PackWriter{buf: buf[:0]} }

// Blobs are the blobs added so far.
func (p *PackWriter) Blobs() []BlobRef { return p.blobs }

// Add appends a blob, chunk id of raw bytes.
func (p *PackWriter) Add(id ID, blob []byte, raw int) {
	p.blobs = append(p.blobs, BlobRef{ID: id, Offset: int64(len(p.buf)), Length: len(blob), Raw: raw})
	p.buf = append(p.buf, blob...)
}

func (p *PackWriter) Size() int { return len(p.buf) }

// finish appends the trailer (sealed when c is set) and returns the pack's
// bytes, id and blobs.
func (p *PackWriter) finish(c *crypter) ([]byte, ID, []BlobRef) {
	var e [TrailerEntry]byte
	trailer := make([]byte, 0, len(p.blobs)*TrailerEntry)
	for _, b := range p.blobs {
		copy(e[:32], b.ID[:])
		binary.LittleEndian.PutUint64(e[32:], uint64(b.Offset))
		binary.LittleEndian.PutUint32(e[40:], uint32(b.Length))
		binary.LittleEndian.PutUint32(e[44:], uint32(b.Raw))
		trailer = append(trailer, e[:]...)
	}
	n := len(p.buf)
	p.buf = c.seal(p.buf, trailer)
	var t [4]byte
	binary.LittleEndian.PutUint32(t[:], uint32(len(p.buf)-n))
	p.buf = append(p.buf, t[:]...)
	p.buf = append(p.buf, packMagic...)
	return p.buf, HashOf(p.buf), p.blobs
}

// TrailerLen reads the stored trailer length from a pack's last 12 bytes.
func TrailerLen(c *crypter, tail []byte, packSize int64) (int, error) {
	if len(tail) != TrailerTailLen || string(tail[4:]) != packMagic {
		return 0, fmt.Errorf("%w: pack does not end with %q", ErrCorrupt, packMagic)
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	plain := n - int64(c.overhead())
	if plain < 0 || plain%TrailerEntry != 0 || plain/TrailerEntry > maxPackBlobs || n > packSize-int64(TrailerTailLen) {
		return 0, fmt.Errorf("%w: impossible pack trailer length %d (pack is %d bytes)", ErrCorrupt, n, packSize)
	}
	return int(n), nil
}

// ParseTrailer opens a stored trailer and reads the entries of a pack of
// packSize bytes. Blobs must lie in order, without overlap, inside the data part.
func ParseTrailer(c *crypter, stored []byte, packSize int64) ([]BlobRef, error) {
	trailer, err := c.open(stored)
	if err != nil {
		return nil, fmt.Errorf("pack trailer: %w", err)
	}
	if len(trailer)%TrailerEntry != 0 {
		return nil, fmt.Errorf("%w: pack trailer of %d bytes", ErrCorrupt, len(trailer))
	}
	dataEnd := packSize - int64(len(stored)) - int64(TrailerTailLen)
	var refs []BlobRef
	var next int64
	for i := 0; i < len(trailer); i += TrailerEntry {
		e := trailer[i : i+TrailerEntry]
		var b BlobRef
		copy(b.ID[:], e[:32])
		b.Offset = int64(binary.LittleEndian.Uint64(e[32:]))
		b.Length = int(binary.LittleEndian.Uint32(e[40:]))
		b.Raw = int(binary.LittleEndian.Uint32(e[44:]))
		if b.Offset != next || b.Length < 1 || b.Offset+int64(b.Length) > dataEnd || b.Raw > 64<<20 {
			return nil, fmt.Errorf("%w: pack trailer entry %d (offset %d, length %d) does not fit the pack", ErrCorrupt, i/TrailerEntry, b.Offset, b.Length)
		}
		next = b.Offset + int64(b.Length)
		refs = append(refs, b)
	}
	if next != dataEnd {
		return nil, fmt.Errorf("%w: pack trailer leaves %d bytes unaccounted", ErrCorrupt, dataEnd-next)
	}
	return refs, nil
}

// parsePack checks a whole pack and returns its blobs.
func parsePack(c *crypter, pack []byte) ([]BlobRef, error) {
	if len(pack) < TrailerTailLen {
		return nil, fmt.Errorf("%w: pack of %d bytes", ErrCorrupt, len(pack))
	}
	n, err := TrailerLen(c, pack[len(pack)-TrailerTailLen:], int64(len(pack)))
	if err != nil {
		return nil, err
	}
	end := len(pack) - TrailerTailLen
	return ParseTrailer(c, pack[end-n:end], int64(len(pack)))
}

func PackKey(id ID) string {
	s := id.String()
	return "packs/" + s[:2] + "/" + s
}
