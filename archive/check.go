package archive

import (
	"context"
	"encoding/binary"

	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/zeebo/blake3"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/errs"
)

// CheckOptions tune Check.
type CheckOptions struct {
	// ReadData downloads and verifies every pack; ReadDataSubset (0..1] a
	// random share of them. With neither, only the structure is checked.
	ReadData       bool
	ReadDataSubset float64
	// RepairRetention extends the retention of every object that ends
	// before a snapshot needing it is promised protection (object lock).
	RepairRetention bool
	Progress        Progress
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
	// Retention is set for an archive with an object lock (not as of a
	// time: the retention read is the current versions').
	Retention *RetentionCheck `json:"retention,omitempty"`
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

	stored, odd, err := r.ListPacks(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range odd {
		add("%s: not a pack name", k)
	}
	idx := repo.NewIndex()
	layouts := map[repo.ID]repo.ID{} // pack -> hash of its blob list as indexed
	var needs *retentionNeeds
	indexPacks := map[string][]repo.ID{}
	if r.Config().ObjectLock != nil && !store.IsReadOnly(r.Store()) {
		needs = &retentionNeeds{need: map[string]time.Time{}}
	} else if o.RepairRetention {
		return nil, fmt.Errorf("%w: --repair-retention needs an archive with an object lock, opened for writing (not --as-of)", errs.ErrInvalid)
	}
	var blobsSeen int
	err = r.EachIndex(ctx, func(ob repo.IndexObject) error {
		if ob.Err != nil {
			add("%v", ob.Err)
			return nil
		}
		if ob.Misnamed {
			add("%s: content does not hash to its name", ob.Key)
		}
		for _, p := range ob.Packs {
			if needs != nil {
				indexPacks[ob.Key] = append(indexPacks[ob.Key], p.ID)
			}
			size, ok := stored[p.ID]
			switch {
			case !ok:
				add("%s lists pack %s, which is missing", ob.Key, p.ID)
			case size != p.Size:
				add("pack %s is %d bytes, %s says %d", p.ID, size, ob.Key, p.Size)
			}
			if !idx.HasPack(p.ID) {
				blobsSeen += len(p.Blobs)
				idx.AddPack(p.ID, p.Size, p.Blobs)
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

	keys, err := r.SnapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(keys)
	written := map[string]time.Time{}
	if needs != nil {
		if err := r.Store().List(ctx, "snapshots/", func(i store.Info) error { written[i.Key] = i.ModTime; return nil }); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var packs map[repo.ID]struct{}
		if needs != nil {
			packs = map[repo.ID]struct{}{}
		}
		if err := r.checkPiece(ctx, idx, stored, k, packs); err != nil {
			add("%v", err)
		}
		if needs != nil {
			until := written[k].Add(days(r.Config().ObjectLock.Days))
			needs.add(k, until)
			for id := range packs {
				needs.add(repo.PackKey(id), until)
			}
			if until.After(needs.newest) {
				needs.newest = until
			}
		}
	}
	if needs != nil {
		for k, packs := range indexPacks {
			for _, p := range packs {
				if t, ok := needs.need[repo.PackKey(p)]; ok {
					needs.add(k, t)
				}
			}
		}
		if err := r.Store().List(ctx, "keys/", func(i store.Info) error { needs.add(i.Key, needs.newest); return nil }); err != nil {
			return nil, err
		}
		needs.add("config", needs.newest)
		if res.Retention, err = r.checkRetention(ctx, needs, o.RepairRetention, add); err != nil {
			return nil, err
		}
	}

	if !o.ReadData && o.ReadDataSubset <= 0 {
		return res, nil
	}
	res.ReadDataDone = true
	var toRead []repo.ID
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

// checkPiece reads one snapshot object and both its streams to their
// ends; packs, when not nil, gathers every pack it needs.
func (r *Repo) checkPiece(ctx context.Context, idx *repo.Index, stored map[repo.ID]int64, key string, packs map[repo.ID]struct{}) error {
	s, err := r.ReadSnapshotKey(ctx, key)
	if err != nil {
		return err
	}
	if packs != nil {
		for _, d := range []*repo.StreamDesc{&s.Object().Manifest, &s.Object().Content} {
			for _, id := range d.IDs() {
				if loc, ok := idx.Lookup(id); ok {
					packs[loc.Pack] = struct{}{}
				}
			}
		}
	}
	return r.EachFile(ctx, idx, s, func(ids []repo.ID) error {
		for _, id := range ids {
			loc, _ := idx.Lookup(id)
			if stored[loc.Pack] == 0 {
				return fmt.Errorf("%s: chunk %s is indexed in pack %s, which is missing", key, id, loc.Pack)
			}
			if packs != nil {
				packs[loc.Pack] = struct{}{}
			}
		}
		return nil
	})
}

// checkPack reads a whole pack (bounded by the largest pack an upload can
// write) and checks its name, trailer and every blob.
func (r *Repo) checkPack(ctx context.Context, layouts map[repo.ID]repo.ID, id repo.ID) error {
	data, err := r.Store().Get(ctx, repo.PackKey(id), r.MaxPack())
	if err != nil {
		return err
	}
	if repo.HashOf(data) != id {
		return fmt.Errorf("content does not hash to its name (damaged)")
	}
	blobs, err := r.ParsePack(data)
	if err != nil {
		return err
	}
	if want, ok := layouts[id]; ok && blobsHash(blobs) != want {
		return fmt.Errorf("its trailer disagrees with the index")
	}
	for _, b := range blobs {
		if b.Raw > r.Config().Chunker.Max || b.Length > r.MaxBlob() {
			return fmt.Errorf("%w: blob %s is larger than a blob can be", repo.ErrCorrupt, b.ID)
		}
		if _, err := r.DecodeBlob(data[b.Offset:b.Offset+int64(b.Length)], b.ID, b.Raw); err != nil {
			return err
		}
	}
	return nil
}

// blobsHash fingerprints a pack's blob list, to compare a trailer with an
// index without holding every list.
func blobsHash(blobs []repo.BlobRef) repo.ID {
	h := blake3.New()
	var b [repo.IndexBlobLen]byte
	for _, bl := range blobs {
		copy(b[:], bl.ID[:])
		binary.LittleEndian.PutUint32(b[32:], uint32(bl.Offset))
		binary.LittleEndian.PutUint32(b[36:], uint32(bl.Length))
		binary.LittleEndian.PutUint32(b[40:], uint32(bl.Raw))
		h.Write(b[:])
	}
	var id repo.ID
	h.Sum(id[:0])
	return id
}
