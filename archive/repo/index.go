package repo

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/internal/par"
)

// Location is where a chunk is stored.
type Location struct {
	Pack   ID
	Offset int64
	Length int
	Raw    int
}

// indexEnt is one chunk of the in-memory index: 48 bytes, no pointers, so a
// million chunks cost 48 MB and nothing for the garbage collector to scan.
type indexEnt struct {
	id   ID
	pack uint32 // into Index.packs
	off  uint32
	len  uint32
	raw  uint32
}

type packInfo struct {
	id   ID
	size int64
}

// Index maps chunk ids to their locations: a slice sorted by id, searched
// by bisection. Build it with AddPack, then seal it; after seal it is safe
// for concurrent reads.
type Index struct {
	mu     sync.RWMutex
	packs  []packInfo
	packOf map[ID]uint32
	ents   []indexEnt
	sorted bool
	table  PrefixTable // of ents, once sorted
	keys   []uint64    // of ents, once sorted
}

func NewIndex() *Index { return &Index{packOf: map[ID]uint32{}} }

// AddPack adds a pack's blobs (a pack already added is ignored). Blob
// offsets and lengths must have been checked against the pack size.
func (x *Index) AddPack(pack ID, size int64, blobs []BlobRef) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.packOf[pack]; ok {
		return
	}
	p := uint32(len(x.packs))
	x.packs = append(x.packs, packInfo{pack, size})
	x.packOf[pack] = p
	for _, b := range blobs {
		x.ents = append(x.ents, indexEnt{id: b.ID, pack: p, off: uint32(b.Offset), len: uint32(b.Length), raw: uint32(b.Raw)})
	}
	x.sorted = false
}

// seal sorts the index; of a chunk stored twice, the first added is kept.
func (x *Index) Seal() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sorted {
		return
	}
	// Of the same id, the first added sorts first: packs are numbered and
	// their blobs listed in the order they were added.
	SortByID(x.ents, func(e *indexEnt) *ID { return &e.id }, func(a, b indexEnt) int {
		if c := a.id.Compare(&b.id); c != 0 {
			return c
		}
		if a.pack != b.pack {
			return cmp.Compare(a.pack, b.pack)
		}
		return cmp.Compare(a.off, b.off)
	})
	x.ents = slices.CompactFunc(x.ents, func(a, b indexEnt) bool { return a.id == b.id })
	x.table = BuildPrefixTable(len(x.ents), func(i int) *ID { return &x.ents[i].id })
	x.keys = keysOf(len(x.ents), func(i int) *ID { return &x.ents[i].id })
	x.sorted = true
}

// rlock takes the read lock of a sealed index.
func (x *Index) rlock() {
	x.mu.RLock()
	for !x.sorted {
		x.mu.RUnlock()
		x.Seal()
		x.mu.RLock()
	}
}

// Lookup returns a chunk's location.
func (x *Index) Lookup(id ID) (Location, bool) {
	x.rlock()
	defer x.mu.RUnlock()
	lo, hi := x.table.span(&id, len(x.ents))
	k := keyOf(&id)
	for i := searchKeys(x.keys, lo, hi, k); i < hi && x.keys[i] == k; i++ {
		if e := &x.ents[i]; e.id == id {
			return Location{Pack: x.packs[e.pack].id, Offset: int64(e.off), Length: int(e.len), Raw: int(e.raw)}, true
		}
	}
	return Location{}, false
}

// Has reports whether the chunk is stored.
func (x *Index) Has(id ID) bool { _, ok := x.Lookup(id); return ok }

// HasPack reports whether the pack is indexed.
func (x *Index) HasPack(id ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.packOf[id]
	return ok
}

// PackSize returns an indexed pack's size.
func (x *Index) PackSize(id ID) (int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	p, ok := x.packOf[id]
	if !ok {
		return 0, false
	}
	return x.packs[p].size, true
}

// Len counts the chunks.
func (x *Index) Len() int {
	x.rlock()
	defer x.mu.RUnlock()
	return len(x.ents)
}

// PackEntry is one pack's contribution to an index object.
type PackEntry struct {
	ID    ID
	Size  int64
	Blobs []BlobRef
}

// An index object (index/<BLAKE3 of the object>) lists packs and their
// blobs, in binary, zstd-compressed and, in an encrypted archive, sealed:
//
//	"HSIDX002" | u32 packs | per pack: id[32] u64 size u32 blobs | per blob: id[32] u32 offset u32 length u32 raw
//
// little-endian. Uploads and gc write at most MaxIndexBlobs blobs per
// object, so every object reads back within bounded memory, however large
// the archive (the old format held one JSON index that grew without bound).
const (
	indexMagic   = "HSIDX002"
	indexPackLen = 32 + 8 + 4
	IndexBlobLen = 32 + 4 + 4 + 4
)

func EncodeIndex(c *crypter, packs []PackEntry) []byte {
	n := len(indexMagic) + 4
	for _, p := range packs {
		n += indexPackLen + len(p.Blobs)*IndexBlobLen
	}
	b := make([]byte, 0, n)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(packs)))
	for _, p := range packs {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.Size))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Blobs)))
		for _, bl := range p.Blobs {
			b = append(b, bl.ID[:]...)
			b = binary.LittleEndian.AppendUint32(b, uint32(bl.Offset))
			b = binary.LittleEndian.AppendUint32(b, uint32(bl.Length))
			b = binary.LittleEndian.AppendUint32(b, uint32(bl.Raw))
		}
	}
	return c.seal(nil, compress(b))
}

// DecodeIndex opens, parses and checks an index object. Every count is
// checked against the bytes left before it is used; every blob must fit its
// pack, in order, without overlap, no longer than MaxBlob, its chunk no
// longer than maxRaw.
func DecodeIndex(c *crypter, data []byte, MaxBlob, maxRaw int) ([]PackEntry, error) {
	z, err := c.open(data)
	if err != nil {
		return nil, err
	}
	b, err := decompress(z, maxIndexPlain)
	if err != nil {
		return nil, err
	}
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: not an index object of this format (%q)", ErrCorrupt, indexMagic)
	}
	b = b[len(indexMagic):]
	npacks := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if npacks > len(b)/indexPackLen {
		return nil, fmt.Errorf("%w: index claims %d packs in %d bytes", ErrCorrupt, npacks, len(b))
	}
	out := make([]PackEntry, 0, npacks)
	for range npacks {
		if len(b) < indexPackLen {
			return nil, fmt.Errorf("%w: index ends inside a pack entry", ErrCorrupt)
		}
		var p PackEntry
		copy(p.ID[:], b)
		p.Size = int64(binary.LittleEndian.Uint64(b[32:]))
		nb := int(binary.LittleEndian.Uint32(b[40:]))
		b = b[indexPackLen:]
		if p.Size < int64(TrailerTailLen) || p.Size > 1<<40 {
			return nil, fmt.Errorf("%w: index gives pack %s an impossible size %d", ErrCorrupt, p.ID, p.Size)
		}
		if nb > len(b)/IndexBlobLen || nb > maxPackBlobs {
			return nil, fmt.Errorf("%w: index claims %d blobs for pack %s in %d bytes", ErrCorrupt, nb, p.ID, len(b))
		}
		p.Blobs = make([]BlobRef, nb)
		var next int64
		for i := range p.Blobs {
			bl := &p.Blobs[i]
			copy(bl.ID[:], b)
			bl.Offset = int64(binary.LittleEndian.Uint32(b[32:]))
			bl.Length = int(binary.LittleEndian.Uint32(b[36:]))
			bl.Raw = int(binary.LittleEndian.Uint32(b[40:]))
			b = b[IndexBlobLen:]
			if bl.Offset < next || bl.Length < 1 || bl.Length > MaxBlob || bl.Raw > maxRaw || bl.Offset+int64(bl.Length) > p.Size-int64(TrailerTailLen) {
				return nil, fmt.Errorf("%w: index entry %d of pack %s (offset %d, length %d, chunk %d bytes) does not fit the pack (%d bytes) in order",
					ErrCorrupt, i, p.ID, bl.Offset, bl.Length, bl.Raw, p.Size)
			}
			next = bl.Offset + int64(bl.Length)
		}
		out = append(out, p)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the index's last pack", ErrCorrupt, len(b))
	}
	return out, nil
}

// compress is an index object's zstd frame (binary ids compress little;
// the literal stage is not tried).
func compress(b []byte) []byte {
	e := encoders[0][0].Get().(*zstd.Encoder)
	out := e.EncodeAll(b, nil)
	encoders[0][0].Put(e)
	return out
}

// decompress decodes a zstd frame of at most max bytes of output: the
// decoder stops at max, it never allocates what the frame claims.
func decompress(b []byte, max int) ([]byte, error) {
	out, err := decoder.DecodeAll(b, make([]byte, 0, max))
	if err != nil {
		return nil, fmt.Errorf("%w: does not decompress within %d bytes: %v", ErrCorrupt, max, err)
	}
	return out, nil
}

// IndexObject is one index object as read: its packs, or why it could not
// be read. Misnamed is set when its content does not hash to its name.
type IndexObject struct {
	Key      string
	Packs    []PackEntry
	Misnamed bool  // its key is not the hash of its content
	Err      error // it could not be read or decoded
}

// IndexKeys lists the index objects.
func (r *Repo) IndexKeys(ctx context.Context) ([]string, error) {
	var keys []string
	err := r.st.List(ctx, "index/", func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// ReadIndex reads and decodes one index object (bounded: maxIndexObject).
func (r *Repo) ReadIndex(ctx context.Context, key string) IndexObject {
	o := IndexObject{Key: key}
	b, err := r.st.Get(ctx, key, maxIndexObject)
	if err != nil {
		o.Err = fmt.Errorf("%s: %w", key, err)
		return o
	}
	o.Misnamed = HashOf(b).String() != strings.TrimPrefix(key, "index/")
	if o.Packs, err = DecodeIndex(r.enc, b, r.MaxBlob(), r.cfg.Chunker.Max); err != nil {
		o.Err = fmt.Errorf("%s: %w", key, err)
	}
	return o
}

// EachIndex reads every index object, a few at a time, handing each to fn
// in key order; only those few are in memory at once. Errors of single
// objects are in what fn gets (each caller has its own policy: check
// reports them, gc and upload refuse); the error is for failing to list,
// or fn's.
func (r *Repo) EachIndex(ctx context.Context, fn func(o IndexObject) error) error {
	keys, err := r.IndexKeys(ctx)
	if err != nil {
		return err
	}
	const batch = 4
	for start := 0; start < len(keys); start += batch {
		part := keys[start:min(start+batch, len(keys))]
		objs := make([]IndexObject, len(part))
		if err := par.ForEach(ctx, len(part), batch, func(ctx context.Context, i int) error {
			objs[i] = r.ReadIndex(ctx, part[i])
			return ctx.Err()
		}); err != nil {
			return err
		}
		for _, o := range objs {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListPacks lists the stored packs and their sizes; keys under packs/ that
// are not pack names are returned apart.
func (r *Repo) ListPacks(ctx context.Context) (map[ID]int64, []string, error) {
	stored := map[ID]int64{}
	var odd []string
	err := r.st.List(ctx, "packs/", func(i store.Info) error {
		k := i.Key
		id, err := ParseID(k[strings.LastIndexByte(k, '/')+1:])
		if err != nil || PackKey(id) != k {
			odd = append(odd, k)
			return nil
		}
		stored[id] = i.Size
		return nil
	})
	return stored, odd, err
}

// LoadIndex reads every index object. With orphans, packs that no index
// lists (left by an interrupted upload) are read from their trailers and
// returned so the caller can index them: their chunks are then reused, not
// sent again.
func (r *Repo) LoadIndex(ctx context.Context, orphans bool) (*Index, []PackEntry, error) {
	x := NewIndex()
	err := r.EachIndex(ctx, func(o IndexObject) error {
		if o.Err != nil {
			return o.Err
		}
		for _, p := range o.Packs {
			x.AddPack(p.ID, p.Size, p.Blobs)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !orphans {
		x.Seal()
		return x, nil, nil
	}
	stored, _, err := r.ListPacks(ctx)
	if err != nil {
		return nil, nil, err
	}
	var found []PackEntry
	for id, size := range stored {
		if x.HasPack(id) {
			continue
		}
		blobs, err := r.ReadTrailer(ctx, id, size)
		if err != nil {
			// A damaged orphan is not used; check reports it, gc removes it.
			continue
		}
		x.AddPack(id, size, blobs)
		found = append(found, PackEntry{ID: id, Size: size, Blobs: blobs})
	}
	x.Seal()
	return x, found, nil
}

// ReadTrailer reads a pack's blob list from its end (two range reads).
func (r *Repo) ReadTrailer(ctx context.Context, pack ID, size int64) ([]BlobRef, error) {
	if size < int64(TrailerTailLen) {
		return nil, fmt.Errorf("%w: pack %s is %d bytes", ErrCorrupt, pack, size)
	}
	tail, err := r.st.GetRange(ctx, PackKey(pack), size-int64(TrailerTailLen), int64(TrailerTailLen))
	if err != nil {
		return nil, err
	}
	n, err := TrailerLen(r.enc, tail, size)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", pack, err)
	}
	tr, err := r.st.GetRange(ctx, PackKey(pack), size-int64(TrailerTailLen)-int64(n), int64(n))
	if err != nil {
		return nil, err
	}
	blobs, err := ParseTrailer(r.enc, tr, size)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", pack, err)
	}
	for i, b := range blobs {
		if b.Length > r.MaxBlob() || b.Raw > r.cfg.Chunker.Max {
			return nil, fmt.Errorf("%w: pack %s: trailer entry %d is larger than a blob can be", ErrCorrupt, pack, i)
		}
	}
	return blobs, nil
}

// WriteIndex stores packs in index objects of at most MaxIndexBlobs blobs
// (a pack is never split), each named by its content hash. It returns the
// keys written.
func (r *Repo) WriteIndex(ctx context.Context, packs []PackEntry) ([]string, error) {
	var keys []string
	for len(packs) > 0 {
		n, blobs := 0, 0
		for n < len(packs) && (n == 0 || blobs+len(packs[n].Blobs) <= MaxIndexBlobs) {
			blobs += len(packs[n].Blobs)
			n++
		}
		b := EncodeIndex(r.enc, packs[:n])
		key := "index/" + HashOf(b).String()
		if err := r.st.Put(ctx, key, b); err != nil {
			return keys, err
		}
		keys = append(keys, key)
		packs = packs[n:]
	}
	return keys, nil
}
