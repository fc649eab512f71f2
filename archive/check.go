package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
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

// Check verifies the repository: every index readable, every indexed pack
// present with a size that fits, every archived manifest readable, sealed,
// and all its chunks indexed; with ReadData, every pack (or a share) is
// downloaded and its hash, trailer and blobs checked against the index.
// It reports every problem it finds, not only the first.
func (r *Repo) Check(ctx context.Context, o CheckOptions) (*CheckResult, error) {
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	res := &CheckResult{Problems: []string{}}
	add := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }

	stored, odd, err := r.listPacks(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range odd {
		add("%s: not a pack name", k)
	}
	objs, err := r.readIndexes(ctx)
	if err != nil {
		return nil, err
	}
	idx := newIndex()
	indexed := map[ID][]BlobRef{}
	for _, o := range objs {
		k := o.key
		if o.err != nil {
			add("%v", o.err)
			continue
		}
		if o.misnamed {
			add("%s: content does not hash to its name", k)
		}
		for _, p := range o.packs {
			size, ok := stored[p.ID]
			switch {
			case !ok:
				add("%s lists pack %s, which is missing", k, p.ID)
			case size != p.Size:
				add("pack %s is %d bytes, %s says %d", p.ID, size, k, p.Size)
			}
			if _, seen := indexed[p.ID]; !seen {
				for _, b := range p.Blobs {
					if idx.Has(b.ID) {
						res.DuplicateBlobs++
					}
				}
			}
			idx.addPack(p.ID, p.Size, p.Blobs)
			indexed[p.ID] = p.Blobs
		}
	}
	for id := range stored {
		if _, ok := indexed[id]; !ok {
			res.OrphanPacks++
		}
	}
	res.Packs, res.Chunks = len(stored), idx.Len()

	keys, err := r.snapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(keys)
	for _, k := range keys {
		s, err := r.readSnapshotKey(ctx, k)
		if err != nil {
			add("%v", err)
			continue
		}
		var missing []string
		for _, e := range s.m.Entries {
			for _, cid := range s.content[e.BLAKE3] {
				if loc, ok := idx.Lookup(cid); !ok {
					missing = append(missing, string(e.Path))
					break
				} else if _, ok := stored[loc.Pack]; !ok {
					missing = append(missing, string(e.Path))
					break
				}
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			add("%s: %d file(s) need chunks that are not in the archive: %s", k, len(missing), listSome(missing))
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
		data, err := r.st.Get(ctx, packKey(id))
		o.Progress.Add(1, stored[id])
		if err != nil {
			add("pack %s: %v", id, err)
			continue
		}
		if hashOf(data) != id {
			add("pack %s: content does not hash to its name (damaged)", id)
		}
		blobs, err := parsePack(r.enc, data)
		if err != nil {
			add("pack %s: %v", id, err)
			continue
		}
		if want, ok := indexed[id]; ok && !sameBlobs(want, blobs) {
			add("pack %s: its trailer disagrees with the index", id)
		}
		for _, b := range blobs {
			if _, err := decodeBlob(r.enc, data[b.Offset:b.Offset+int64(b.Length)], b.ID, b.Raw); err != nil {
				add("pack %s: %v", id, err)
			}
		}
	}
	return res, nil
}

func sameBlobs(a, b []BlobRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
