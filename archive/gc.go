package archive

import (
	"context"
	"fmt"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/snapshot"
)

// ForgetResult reports a forget. The JSON form is the CLI's contract.
type ForgetResult struct {
	DryRun bool                `json:"dryRun"`
	Keep   []snapshot.Decision `json:"keep"`
	Remove []snapshot.Decision `json:"remove"`
}

// Forget removes from the archive the snapshots the policy does not keep
// (all node pieces of each), under a shared lock. Their data stays until
// gc. Snapshots whose manifests cannot be read are kept.
func (r *Repo) Forget(ctx context.Context, p snapshot.KeepPolicy, dryRun bool, now time.Time) (*ForgetResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	lock, err := r.Lock(ctx, LockShared, "forget")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	list, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	res := &ForgetResult{DryRun: dryRun, Keep: []snapshot.Decision{}, Remove: []snapshot.Decision{}}
	created := map[string]time.Time{}
	unreadable := map[string]string{}
	for _, s := range list {
		if s.Error != "" {
			unreadable[s.ID] = s.Error
			continue
		}
		if t, ok := created[s.ID]; !ok || s.CreatedAt.Before(t) {
			created[s.ID] = s.CreatedAt
		}
	}
	var items []snapshot.Dated
	for id, t := range created {
		if _, bad := unreadable[id]; !bad {
			items = append(items, snapshot.Dated{ID: id, CreatedAt: t})
		}
	}
	keep, remove := p.Apply(items, now)
	res.Keep = append(res.Keep, keep...)
	for id, e := range unreadable {
		res.Keep = append(res.Keep, snapshot.Decision{ID: id, Reasons: []string{"unreadable manifest: " + e}})
	}
	if remove != nil {
		res.Remove = remove
	}
	if dryRun {
		return res, nil
	}
	for _, d := range remove {
		var keys []string
		if err := r.st.List(ctx, "snapshots/"+d.ID+"/", func(k string, _ int64) error { keys = append(keys, k); return nil }); err != nil {
			return res, err
		}
		for _, k := range keys {
			if err := r.st.Delete(ctx, k); err != nil {
				return res, fmt.Errorf("forget %s: %w", d.ID, err)
			}
		}
	}
	return res, nil
}

// GCResult reports a gc. The JSON form is the CLI's contract.
type GCResult struct {
	DryRun        bool     `json:"dryRun"`
	Snapshots     int      `json:"snapshots"`
	ChunksUsed    int      `json:"chunksUsed"`
	BlobsDeleted  int      `json:"blobsDeleted"`
	PacksDeleted  int      `json:"packsDeleted"`
	PacksRepacked int      `json:"packsRepacked"`
	PacksWritten  int      `json:"packsWritten"`
	IndexesMerged int      `json:"indexesMerged"`
	BytesBefore   int64    `json:"bytesBefore"`
	BytesAfter    int64    `json:"bytesAfter"`
	StaleLocks    []string `json:"staleLocks"`
	// TempFilesRemoved counts temp files an interrupted upload left in a
	// file:// archive, removed once an hour old.
	TempFilesRemoved int     `json:"tempFilesRemoved"`
	DurationMs       float64 `json:"durationMs"`
}

// tempSweepAge is how old a store's temp file must be before gc removes
// it: far longer than any one object takes to write.
const tempSweepAge = time.Hour

// tempSweeper is a store that can leave temp files behind (file://).
type tempSweeper interface {
	SweepTemp(ctx context.Context, olderThanNs int64) ([]string, error)
}

// GC deletes the data no manifest needs, under an exclusive lock: packs
// with no used chunk are deleted; packs with some garbage are repacked (their
// used chunks, verified, go into new packs) so that all space of forgotten
// snapshots beyond shared chunks is reclaimed; all indexes are merged into
// one. Stale locks are removed first; a live lock makes it fail (ErrLocked).
// If any manifest cannot be read, nothing is deleted. Order: new packs, new
// index, old indexes deleted, old packs deleted; a crash leaves at worst
// unreferenced packs, never a missing chunk.
func (r *Repo) GC(ctx context.Context, dryRun bool, o Progress) (*GCResult, error) {
	start := time.Now()
	if o == nil {
		o = NoProgress{}
	}
	res := &GCResult{DryRun: dryRun, StaleLocks: []string{}}
	stale, err := r.BreakStale(ctx)
	if err != nil {
		return nil, err
	}
	res.StaleLocks = append(res.StaleLocks, stale...)
	lock, err := r.Lock(ctx, LockExclusive, "gc")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if ts, ok := store.Unwrap(r.st).(tempSweeper); ok && !dryRun {
		removed, err := ts.SweepTemp(ctx, time.Now().Add(-tempSweepAge).UnixNano())
		if err != nil {
			return nil, fmt.Errorf("sweep temp files: %w", err)
		}
		res.TempFilesRemoved = len(removed)
	}

	// Mark.
	keys, err := r.snapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	used := map[ID]bool{}
	for _, k := range keys {
		s, err := r.readSnapshotKey(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("gc refused, nothing deleted: %w", err)
		}
		for _, ids := range s.content {
			for _, id := range ids {
				used[id] = true
			}
		}
	}
	res.Snapshots, res.ChunksUsed = len(keys), len(used)

	// What is stored: packs (by listing) and what the indexes say of them.
	stored, _, err := r.listPacks(ctx)
	if err != nil {
		return nil, err
	}
	objs, err := r.readIndexes(ctx)
	if err != nil {
		return nil, err
	}
	var ikeys []string
	blobsOf := map[ID][]BlobRef{}
	for _, o := range objs {
		if o.err != nil {
			return nil, fmt.Errorf("gc refused, nothing deleted: %w", o.err)
		}
		ikeys = append(ikeys, o.key)
		for _, p := range o.packs {
			if _, ok := stored[p.ID]; ok {
				blobsOf[p.ID] = p.Blobs
			}
		}
	}
	// Packs no index lists (interrupted uploads): read their trailers.
	for id, size := range stored {
		if _, ok := blobsOf[id]; !ok {
			if blobs, err := r.readTrailer(ctx, id, size); err == nil {
				blobsOf[id] = blobs
			} else {
				blobsOf[id] = nil // unreadable: nothing in it can be relied on
			}
		}
		res.BytesBefore += size
	}

	// Sweep plan: a used chunk is kept once, in the first whole pack that
	// holds it; a pack is kept whole when every blob in it is kept there.
	keepIn := map[ID]ID{} // chunk -> pack
	var whole, mixed, dead []ID
	for id, blobs := range blobsOf {
		garbage := 0
		for _, b := range blobs {
			if !used[b.ID] {
				garbage++
			}
		}
		switch {
		case len(blobs) > 0 && garbage == 0:
			whole = append(whole, id)
		case garbage == len(blobs):
			dead = append(dead, id)
		default:
			mixed = append(mixed, id)
		}
	}
	var kept []packEntry
	for _, id := range whole {
		dup := 0
		for _, b := range blobsOf[id] {
			if _, ok := keepIn[b.ID]; ok {
				dup++
			}
		}
		if dup == len(blobsOf[id]) { // everything it holds is kept elsewhere
			dead = append(dead, id)
			continue
		}
		for _, b := range blobsOf[id] {
			if _, ok := keepIn[b.ID]; !ok {
				keepIn[b.ID] = id
			}
		}
		kept = append(kept, packEntry{ID: id, Size: stored[id], Blobs: blobsOf[id]})
	}
	// Mixed packs: their used chunks not kept elsewhere move to new packs.
	type move struct {
		from ID
		ref  BlobRef
	}
	var moves []move
	for _, id := range mixed {
		for _, b := range blobsOf[id] {
			if used[b.ID] {
				if _, ok := keepIn[b.ID]; !ok {
					keepIn[b.ID] = id
					moves = append(moves, move{id, b})
				}
			}
		}
	}
	missing := 0
	for id := range used {
		if _, ok := keepIn[id]; !ok {
			missing++
		}
	}
	if missing > 0 {
		return nil, fmt.Errorf("gc refused, nothing deleted: %w: %d used chunk(s) are in no readable pack (run archive check)", ErrCorrupt, missing)
	}
	res.PacksRepacked, res.PacksDeleted = len(mixed), len(dead)+len(mixed)
	for _, id := range dead {
		res.BlobsDeleted += len(blobsOf[id])
	}
	for _, id := range mixed {
		res.BlobsDeleted += len(blobsOf[id])
	}
	res.BlobsDeleted -= len(moves)
	var after int64
	for _, p := range kept {
		after += p.Size
	}
	if dryRun {
		for _, m := range moves {
			after += int64(m.ref.Length) + trailerEntry
		}
		res.BytesAfter = after
		res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
		return res, nil
	}

	// Repack: read each used blob of the mixed packs (verified), write new packs.
	o.Start("gc", int64(len(mixed)), 0)
	p := &packWriter{}
	flush := func() error {
		if len(p.blobs) == 0 {
			return nil
		}
		data, pid, refs := p.finish(r.enc)
		if err := r.st.Put(ctx, packKey(pid), data); err != nil {
			return fmt.Errorf("gc: write pack: %w", err)
		}
		kept = append(kept, packEntry{ID: pid, Size: int64(len(data)), Blobs: refs})
		after += int64(len(data))
		res.PacksWritten++
		p = &packWriter{}
		return nil
	}
	byPack := map[ID][]BlobRef{}
	for _, m := range moves {
		byPack[m.from] = append(byPack[m.from], m.ref)
	}
	for _, id := range mixed {
		refs := byPack[id]
		if len(refs) == 0 {
			continue
		}
		data, err := r.st.Get(ctx, packKey(id))
		if err != nil {
			return nil, fmt.Errorf("gc: read pack %s: %w", id, err)
		}
		for _, b := range refs {
			blob := data[b.Offset : b.Offset+int64(b.Length)]
			if _, err := decodeBlob(r.enc, blob, b.ID, b.Raw); err != nil {
				return nil, fmt.Errorf("gc refused to repack a damaged chunk: %w", err)
			}
			p.add(b.ID, blob, b.Raw)
			if p.size() >= r.cfg.PackSize {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		o.Add(1, int64(len(data)))
	}
	if err := flush(); err != nil {
		return nil, err
	}
	o.Done()
	// One index for everything kept, then drop the old ones, then the packs.
	b, err := encodeIndex(r.enc, kept)
	if err != nil {
		return nil, err
	}
	newKey := "index/" + hashOf(b).String()
	if err := r.st.Put(ctx, newKey, b); err != nil {
		return nil, err
	}
	for _, k := range ikeys {
		if k != newKey {
			if err := r.st.Delete(ctx, k); err != nil {
				return nil, err
			}
			res.IndexesMerged++
		}
	}
	for _, id := range append(dead, mixed...) {
		if err := r.st.Delete(ctx, packKey(id)); err != nil {
			return nil, err
		}
	}
	res.BytesAfter = after
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}
