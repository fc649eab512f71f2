package archive

import (
	"context"
	"fmt"
	"slices"

	"github.com/hotsnap/hotsnap/archive/repo"
)

// gc's sweep: which packs to keep, rewrite or merge, and the rewriting.

// A gc's sweep plan.
type gcPlan struct {
	kept  []repo.PackEntry // packs kept whole
	dead  []repo.ID        // packs with nothing used
	mixed []repo.ID        // packs with garbage: their used blobs move
	small []repo.ID        // under-filled packs merged: all their blobs move
	moves []gcMove
}

type gcMove struct {
	from repo.ID
	ref  repo.BlobRef
}

// smallPack is the fill below which a pack is merged into others.
func (r *Repo) smallPack() int64 { return int64(r.Config().PackSize) / 2 }

// sweepPlan decides the fate of every pack. A used chunk is kept once, in
// the first whole pack (in id order) that holds it; a pack is kept whole
// when every blob in it is kept there. Whole packs under half the target
// size are merged, when there are at least two of them.
func (r *Repo) sweepPlan(stored map[repo.ID]int64, blobsOf map[repo.ID][]repo.BlobRef, used *repo.IDSet) (*gcPlan, error) {
	kept := make([]bool, used.Len()) // by position in used
	plan := &gcPlan{}
	ids := make([]repo.ID, 0, len(blobsOf))
	n := 0
	for id, blobs := range blobsOf {
		ids = append(ids, id)
		n += len(blobs)
	}
	slices.SortFunc(ids, func(a, b repo.ID) int { return a.Compare(&b) })
	// Every blob's position in used (-1: garbage), looked up once: at a
	// million chunks three lookups a blob, each a cache miss in a set of
	// 32 MB, had made gc grow faster than the archive.
	at := make([][]int32, len(ids))
	buf := make([]int32, n)
	var whole, mixed []int // indexes into ids
	for k, id := range ids {
		blobs := blobsOf[id]
		at[k], buf = buf[:len(blobs):len(blobs)], buf[len(blobs):]
		garbage := 0
		for j, b := range blobs {
			i, ok := used.Index(b.ID)
			if !ok {
				garbage++
				i = -1
			}
			at[k][j] = int32(i)
		}
		switch {
		case len(blobs) > 0 && garbage == 0:
			whole = append(whole, k)
		case garbage == len(blobs):
			plan.dead = append(plan.dead, id)
		default:
			mixed = append(mixed, k)
		}
	}
	var small []int
	for _, k := range whole {
		id := ids[k]
		dup := 0
		for _, i := range at[k] {
			if kept[i] {
				dup++
			}
		}
		if dup == len(at[k]) { // everything it holds is kept elsewhere
			plan.dead = append(plan.dead, id)
			continue
		}
		if dup == 0 && stored[id] < r.smallPack() {
			small = append(small, k)
			continue
		}
		for _, i := range at[k] {
			kept[i] = true
		}
		plan.kept = append(plan.kept, repo.PackEntry{ID: id, Size: stored[id], Blobs: blobsOf[id]})
	}
	if len(small) < 2 { // one small pack alone is not worth rewriting
		for _, k := range small {
			for _, i := range at[k] {
				kept[i] = true
			}
			plan.kept = append(plan.kept, repo.PackEntry{ID: ids[k], Size: stored[ids[k]], Blobs: blobsOf[ids[k]]})
		}
		small = nil
	}
	// Mixed and small packs: their used chunks not kept elsewhere move.
	for _, k := range append(mixed, small...) {
		for j, b := range blobsOf[ids[k]] {
			if i := at[k][j]; i >= 0 && !kept[i] {
				kept[i] = true
				plan.moves = append(plan.moves, gcMove{ids[k], b})
			}
		}
	}
	for _, k := range mixed {
		plan.mixed = append(plan.mixed, ids[k])
	}
	for _, k := range small {
		plan.small = append(plan.small, ids[k])
	}
	missing := 0
	for _, k := range kept {
		if !k {
			missing++
		}
	}
	if missing > 0 {
		return nil, fmt.Errorf("gc refused, nothing deleted: %w: %d used chunk(s) are in no readable pack (run archive check)", repo.ErrCorrupt, missing)
	}
	return plan, nil
}

// repack writes the moving blobs into new packs, reading each source pack
// once (bounded by the largest pack an upload writes) and verifying each
// blob it moves.
func (r *Repo) repack(ctx context.Context, plan *gcPlan, o Progress) ([]repo.PackEntry, error) {
	byPack := map[repo.ID][]repo.BlobRef{}
	var order []repo.ID
	for _, m := range plan.moves {
		if byPack[m.from] == nil {
			order = append(order, m.from)
		}
		byPack[m.from] = append(byPack[m.from], m.ref)
	}
	var out []repo.PackEntry
	p := &repo.PackWriter{}
	flush := func() error {
		if len(p.Blobs()) == 0 {
			return nil
		}
		data, pid, refs := r.FinishPack(p)
		if err := r.Store().Put(ctx, repo.PackKey(pid), data); err != nil {
			return fmt.Errorf("gc: write pack: %w", err)
		}
		out = append(out, repo.PackEntry{ID: pid, Size: int64(len(data)), Blobs: refs})
		p = &repo.PackWriter{}
		return nil
	}
	o.Start("gc", int64(len(order)), 0)
	defer o.Done()
	for _, id := range order {
		data, err := r.Store().Get(ctx, repo.PackKey(id), r.MaxPack())
		if err != nil {
			return nil, fmt.Errorf("gc: read pack %s: %w", id, err)
		}
		for _, b := range byPack[id] {
			if b.Offset+int64(b.Length) > int64(len(data)) {
				return nil, fmt.Errorf("gc refused to repack: %w: pack %s is shorter than its index says", repo.ErrCorrupt, id)
			}
			blob := data[b.Offset : b.Offset+int64(b.Length)]
			if _, err := r.DecodeBlob(blob, b.ID, b.Raw); err != nil {
				return nil, fmt.Errorf("gc refused to repack a damaged chunk: %w", err)
			}
			p.Add(b.ID, blob, b.Raw)
			if p.Size() >= r.Config().PackSize {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		o.Add(1, int64(len(data)))
	}
	return out, flush()
}
