package archive

import (
	"context"
	"encoding/binary"

	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/zeebo/blake3"
)

// CheckOptions tune Check.
type CheckOptions struct {
	// ReadData downloads and verifies every pack; ReadDataSubset (0..1] a
	// random share of them. With neither, only the structure is checked.
	ReadData       bool
	ReadDataSubset float64
	Progress       Progress
}

// CheckResult lists everything Check found. The JSON form is the CLI's contract.
type CheckResult struct {
	Snapshots   int `json:"snapshots"`
	Packs       int `json:"packs"`
	Chunks      int `json:"chunks"`
	PacksRead   int `json:"packsRead"`
	OrphanPacks int `json:"orphanPacks"` // not indexed: left by an interrupted upload, reused by the next
	// DuplicateBlobs counts chunks stored in more than one indexed pack
	// (wasted space, not an error: two uploads at once can both pack a chunk).
	DuplicateBlobs int      `json:"duplicateBlobs"`
	Problems       []string `json:"problems"`
	ReadDataDone   bool     `json:"readData"`
}

// OK reports whether nothing is wrong.
func (c *CheckResult) OK() bool { return len(c.Problems) == 0 }

// maxCheckProblems bounds the problems one check lists.
const maxCheckProblems = 1000

// Check verifies the repository: every index readable, every indexed pack
// present with a size that fits; every snapshot object readable, its
// manifest stream a sealed manifest of the snapshot it names, its content
// stream a record per file whose chunks are all indexed, in stored packs,
// and make exactly the file's size. With ReadData every pack (or a share)
// is downloaded and its hash, trailer and blobs checked against the index.
// It reports every problem it finds (up to 1000), not only the first.
// Manifests and content are read as streams, one snapshot at a time.
func (r *Repo) Check(ctx context.Context, o CheckOptions) (*CheckResult, error) {
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	res := &CheckResult{Problems: []string{}}
	add := func(format string, args ...any) {
		if len(res.Problems) < maxCheckProblems {
			res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
		} else if len(res.Problems) == maxCheckProblems {
			res.Problems = append(res.Problems, "(more problems not listed)")
		}
	}

	stored, odd, err := r.listPacks(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range odd {
		add("%s: not a pack name", k)
	}
	idx := newIndex()
	layouts := map[ID]ID{} // pack -> hash of its blob list as indexed
	var blobsSeen int
	err = r.eachIndex(ctx, func(ob indexObject) error {
		if ob.err != nil {
			add("%v", ob.err)
			return nil
		}
		if ob.misnamed {
			add("%s: content does not hash to its name", ob.key)
		}
		for _, p := range ob.packs {
			size, ok := stored[p.ID]
			switch {
			case !ok:
				add("%s lists pack %s, which is missing", ob.key, p.ID)
			case size != p.Size:
				add("pack %s is %d bytes, %s says %d", p.ID, size, ob.key, p.Size)
			}
			if !idx.HasPack(p.ID) {
				blobsSeen += len(p.Blobs)
				idx.addPack(p.ID, p.Size, p.Blobs)
				layouts[p.ID] = blobsHash(p.Blobs)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Chunks = idx.Len()
	res.DuplicateBlobs = blobsSeen - res.Chunks
	for id := range stored {
		if !idx.HasPack(id) {
			res.OrphanPacks++
		}
	}
	res.Packs = len(stored)

	keys, err := r.snapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(keys)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.checkPiece(ctx, idx, stored, k); err != nil {
			add("%v", err)
		}
	}

	if !o.ReadData && o.ReadDataSubset <= 0 {
		return res, nil
	}
	res.ReadDataDone = true
	var toRead []ID
	for id := range stored {
		toRead = append(toRead, id)
	}
	sort.Slice(toRead, func(i, j int) bool { return toRead[i].String() < toRead[j].String() })
	if !o.ReadData && o.ReadDataSubset < 1 {
		rand.Shuffle(len(toRead), func(i, j int) { toRead[i], toRead[j] = toRead[j], toRead[i] })
		n := int(float64(len(toRead))*o.ReadDataSubset + 0.999)
		toRead = toRead[:min(n, len(toRead))]
	}
	var total int64
	for _, id := range toRead {
		total += stored[id]
	}
	o.Progress.Start("check", int64(len(toRead)), total)
	defer o.Progress.Done()
	for _, id := range toRead {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.PacksRead++
		o.Progress.Add(1, stored[id])
		if err := r.checkPack(ctx, layouts, id); err != nil {
			add("pack %s: %v", id, err)
		}
	}
	return res, nil
}

// checkPiece reads one snapshot object and both its streams to their ends.
func (r *Repo) checkPiece(ctx context.Context, idx *Index, stored map[ID]int64, key string) error {
	s, err := r.readSnapshotKey(ctx, key)
	if err != nil {
		return err
	}
	return r.eachFile(ctx, idx, s, func(ids []ID) error {
		for _, id := range ids {
			if loc, _ := idx.Lookup(id); stored[loc.Pack] == 0 {
				return fmt.Errorf("%s: chunk %s is indexed in pack %s, which is missing", key, id, loc.Pack)
			}
		}
		return nil
	})
}

// checkPack reads a whole pack (bounded by the largest pack an upload can
// write) and checks its name, trailer and every blob.
func (r *Repo) checkPack(ctx context.Context, layouts map[ID]ID, id ID) error {
	data, err := r.st.Get(ctx, packKey(id), r.maxPack())
	if err != nil {
		return err
	}
	if hashOf(data) != id {
		return fmt.Errorf("content does not hash to its name (damaged)")
	}
	blobs, err := parsePack(r.enc, data)
	if err != nil {
		return err
	}
	if want, ok := layouts[id]; ok && blobsHash(blobs) != want {
		return fmt.Errorf("its trailer disagrees with the index")
	}
	for _, b := range blobs {
		if b.Raw > r.cfg.Chunker.Max || b.Length > r.maxBlob() {
			return fmt.Errorf("%w: blob %s is larger than a blob can be", ErrCorrupt, b.ID)
		}
		if _, err := decodeBlob(r.enc, data[b.Offset:b.Offset+int64(b.Length)], b.ID, b.Raw); err != nil {
			return err
		}
	}
	return nil
}

// blobsHash fingerprints a pack's blob list, to compare a trailer with an
// index without holding every list.
func blobsHash(blobs []BlobRef) ID {
	h := blake3.New()
	var b [indexBlobLen]byte
	for _, bl := range blobs {
		copy(b[:], bl.ID[:])
		binary.LittleEndian.PutUint32(b[32:], uint32(bl.Offset))
		binary.LittleEndian.PutUint32(b[36:], uint32(bl.Length))
		binary.LittleEndian.PutUint32(b[40:], uint32(bl.Raw))
		h.Write(b[:])
	}
	var id ID
	h.Sum(id[:0])
	return id
}
