package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/hotsnap/hotsnap/internal/par"
)

// Location is where a chunk is stored.
type Location struct {
	Pack   ID
	Offset int64
	Length int
	Raw    int
}

// Index maps chunk ids to their locations. It is safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	chunks map[ID]Location
	packs  map[ID]int64 // indexed pack -> size
}

func newIndex() *Index { return &Index{chunks: map[ID]Location{}, packs: map[ID]int64{}} }

// Lookup returns a chunk's location.
func (x *Index) Lookup(id ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l, ok := x.chunks[id]
	return l, ok
}

// Has reports whether the chunk is stored.
func (x *Index) Has(id ID) bool { _, ok := x.Lookup(id); return ok }

// HasPack reports whether the pack is indexed.
func (x *Index) HasPack(id ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.packs[id]
	return ok
}

// Len counts the chunks.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.chunks)
}

func (x *Index) addPack(pack ID, size int64, blobs []BlobRef) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.packs[pack] = size
	for _, b := range blobs {
		if _, ok := x.chunks[b.ID]; !ok {
			x.chunks[b.ID] = Location{Pack: pack, Offset: b.Offset, Length: b.Length, Raw: b.Raw}
		}
	}
}

// indexFile is the JSON form of an index object (stored zstd-compressed).
type indexFile struct {
	Packs []indexPack `json:"packs"`
}

type indexPack struct {
	ID    string      `json:"id"`
	Size  int64       `json:"size"`
	Blobs []indexBlob `json:"blobs"`
}

type indexBlob struct {
	ID  string `json:"id"`
	Off int64  `json:"off"`
	Len int    `json:"len"`
	Raw int    `json:"raw"`
}

// packEntry is one pack's contribution to an index object.
type packEntry struct {
	ID    ID
	Size  int64
	Blobs []BlobRef
}

func encodeIndex(c *crypter, packs []packEntry) ([]byte, error) {
	f := indexFile{Packs: make([]indexPack, 0, len(packs))}
	for _, p := range packs {
		ip := indexPack{ID: p.ID.String(), Size: p.Size}
		for _, b := range p.Blobs {
			ip.Blobs = append(ip.Blobs, indexBlob{ID: b.ID.String(), Off: b.Offset, Len: b.Length, Raw: b.Raw})
		}
		f.Packs = append(f.Packs, ip)
	}
	b, err := json.Marshal(&f)
	if err != nil {
		return nil, err
	}
	return c.seal(nil, compress(b)), nil
}

// decodeIndex opens, parses and checks an index object.
func decodeIndex(c *crypter, data []byte) ([]packEntry, error) {
	z, err := c.open(data)
	if err != nil {
		return nil, err
	}
	raw, err := decompress(z, 1<<30)
	if err != nil {
		return nil, err
	}
	var f indexFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrCorrupt, err)
	}
	out := make([]packEntry, 0, len(f.Packs))
	for _, p := range f.Packs {
		id, err := ParseID(p.ID)
		if err != nil {
			return nil, err
		}
		e := packEntry{ID: id, Size: p.Size}
		for _, b := range p.Blobs {
			bid, err := ParseID(b.ID)
			if err != nil {
				return nil, err
			}
			if b.Off < 0 || b.Len < 1 || b.Raw < 0 || b.Off+int64(b.Len) > p.Size {
				return nil, fmt.Errorf("%w: index entry for %s does not fit pack %s", ErrCorrupt, b.ID, p.ID)
			}
			e.Blobs = append(e.Blobs, BlobRef{ID: bid, Offset: b.Off, Length: b.Len, Raw: b.Raw})
		}
		out = append(out, e)
	}
	return out, nil
}

func compress(b []byte) []byte {
	e := encoders.Get().(interface {
		EncodeAll(src, dst []byte) []byte
	})
	out := e.EncodeAll(b, nil)
	encoders.Put(e)
	return out
}

func decompress(b []byte, max int) ([]byte, error) {
	out, err := decoder.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: does not decompress: %v", ErrCorrupt, err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrCorrupt, max)
	}
	return out, nil
}

// indexObject is one index object as read: its packs, or why it could not
// be read. Misnamed is set when its content does not hash to its name.
type indexObject struct {
	key      string
	packs    []packEntry
	misnamed bool
	err      error
}

// readIndexes reads and decodes every index object, 8 at a time. Errors of
// single objects are in the results (each caller has its own policy: check
// reports them, gc and upload refuse); the error is for failing to list.
func (r *Repo) readIndexes(ctx context.Context) ([]indexObject, error) {
	var objs []indexObject
	if err := r.st.List(ctx, "index/", func(k string, _ int64) error {
		objs = append(objs, indexObject{key: k})
		return nil
	}); err != nil {
		return nil, err
	}
	err := par.ForEach(ctx, len(objs), 8, func(ctx context.Context, i int) error {
		o := &objs[i]
		b, err := r.st.Get(ctx, o.key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			o.err = err
			return nil
		}
		o.misnamed = hashOf(b).String() != strings.TrimPrefix(o.key, "index/")
		if o.packs, o.err = decodeIndex(r.enc, b); o.err != nil {
			o.err = fmt.Errorf("%s: %w", o.key, o.err)
		}
		return nil
	})
	return objs, err
}

// listPacks lists the stored packs and their sizes; keys under packs/ that
// are not pack names are returned apart.
func (r *Repo) listPacks(ctx context.Context) (map[ID]int64, []string, error) {
	stored := map[ID]int64{}
	var odd []string
	err := r.st.List(ctx, "packs/", func(k string, size int64) error {
		id, err := ParseID(k[strings.LastIndexByte(k, '/')+1:])
		if err != nil || packKey(id) != k {
			odd = append(odd, k)
			return nil
		}
		stored[id] = size
		return nil
	})
	return stored, odd, err
}

// LoadIndex reads every index object. With orphans, packs that no index
// lists (left by an interrupted upload) are read from their trailers and
// returned so the caller can index them: their chunks are then reused, not
// sent again.
func (r *Repo) LoadIndex(ctx context.Context, orphans bool) (*Index, []packEntry, error) {
	objs, err := r.readIndexes(ctx)
	if err != nil {
		return nil, nil, err
	}
	x := newIndex()
	for _, o := range objs {
		if o.err != nil {
			return nil, nil, o.err
		}
		for _, p := range o.packs {
			x.addPack(p.ID, p.Size, p.Blobs)
		}
	}
	if !orphans {
		return x, nil, nil
	}
	stored, _, err := r.listPacks(ctx)
	if err != nil {
		return nil, nil, err
	}
	var found []packEntry
	for id, size := range stored {
		if x.HasPack(id) {
			continue
		}
		blobs, err := r.readTrailer(ctx, id, size)
		if err != nil {
			// A damaged orphan is not used; check reports it, gc removes it.
			continue
		}
		x.addPack(id, size, blobs)
		found = append(found, packEntry{ID: id, Size: size, Blobs: blobs})
	}
	return x, found, nil
}

// readTrailer reads a pack's blob list from its end (two range reads).
func (r *Repo) readTrailer(ctx context.Context, pack ID, size int64) ([]BlobRef, error) {
	if size < int64(trailerTailLen) {
		return nil, fmt.Errorf("%w: pack %s is %d bytes", ErrCorrupt, pack, size)
	}
	tail, err := r.st.GetRange(ctx, packKey(pack), size-int64(trailerTailLen), int64(trailerTailLen))
	if err != nil {
		return nil, err
	}
	n, err := trailerLen(r.enc, tail, size)
	if err != nil {
		return nil, err
	}
	tr, err := r.st.GetRange(ctx, packKey(pack), size-int64(trailerTailLen)-int64(n), int64(n))
	if err != nil {
		return nil, err
	}
	return parseTrailer(r.enc, tr, size)
}

// writeIndex stores an index object for packs (named by its content hash).
func (r *Repo) writeIndex(ctx context.Context, packs []packEntry) error {
	if len(packs) == 0 {
		return nil
	}
	b, err := encodeIndex(r.enc, packs)
	if err != nil {
		return err
	}
	return r.st.Put(ctx, "index/"+hashOf(b).String(), b)
}
