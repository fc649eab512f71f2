package archive

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/retention"
)

// ForgetResult reports a forget. The JSON form is the CLI's contract.
type ForgetResult struct {
	DryRun bool                 `json:"dryRun"`
	Keep   []retention.Decision `json:"keep"`
	Remove []retention.Decision `json:"remove"`
}

// Forget removes from the archive the snapshots the policy does not keep
// (all node pieces of each), under a shared lock. Their data stays until
// gc. Snapshots whose manifests cannot be read are kept.
func (r *Repo) Forget(ctx context.Context, p retention.KeepPolicy, dryRun bool, now time.Time) (*ForgetResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	lock, err := r.Lock(ctx, repo.LockShared, "forget")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	list, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	res := &ForgetResult{DryRun: dryRun, Keep: []retention.Decision{}, Remove: []retention.Decision{}}
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
	var items []retention.Dated
	for id, t := range created {
		if _, bad := unreadable[id]; !bad {
			items = append(items, retention.Dated{ID: id, CreatedAt: t})
		}
	}
	keep, remove := p.Apply(items, now)
	if remove, err = r.unretained(ctx, remove, now, &keep); err != nil {
		return nil, err
	}
	res.Keep = append(res.Keep, keep...)
	for id, e := range unreadable {
		res.Keep = append(res.Keep, retention.Decision{ID: id, Reasons: []string{"unreadable manifest: " + e}})
	}
	if remove != nil {
		res.Remove = remove
	}
	if dryRun {
		return res, nil
	}
	for _, d := range remove {
		var keys []string
		if err := r.Store().List(ctx, "snapshots/"+d.ID+"/", func(i store.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			return res, err
		}
		for _, k := range keys {
			if err := r.Store().Delete(ctx, k); err != nil {
				return res, fmt.Errorf("forget %s: %w", d.ID, err)
			}
		}
	}
	return res, nil
}

// unretained keeps, in an archive with an object lock, the snapshots of
// remove whose objects are still retained: they move to keep, with the
// date their retention ends. The rest is returned.
func (r *Repo) unretained(ctx context.Context, remove []retention.Decision, now time.Time, keep *[]retention.Decision) ([]retention.Decision, error) {
	if r.Config().ObjectLock == nil || len(remove) == 0 {
		return remove, nil
	}
	lk, err := r.locking()
	if err != nil {
		return nil, err
	}
	removing := map[string]bool{}
	for _, d := range remove {
		removing[d.ID] = true
	}
	idOf := func(k string) string { return strings.Split(strings.TrimPrefix(k, "snapshots/"), "/")[0] }
	ret, err := r.retentions(ctx, lk, func(k string) bool { return removing[idOf(k)] }, "snapshots/")
	if err != nil {
		return nil, err
	}
	until := map[string]time.Time{}
	for k, rt := range ret {
		if id := idOf(k); rt.Until.After(until[id]) {
			until[id] = rt.Until
		}
	}
	var out []retention.Decision
	for _, d := range remove {
		if t := until[d.ID]; t.After(now) {
			d.Reasons = append(d.Reasons, "retained until "+t.UTC().Format(time.RFC3339)+" (object lock): forget removes it after that")
			*keep = append(*keep, d)
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// GCResult reports a gc. The JSON form is the CLI's contract.
type GCResult struct {
	DryRun        bool     `json:"dryRun"`
	Snapshots     int      `json:"snapshots"`
	ChunksUsed    int      `json:"chunksUsed"`
	BlobsDeleted  int      `json:"blobsDeleted"`
	PacksDeleted  int      `json:"packsDeleted"`
	PacksRepacked int      `json:"packsRepacked"`
	PacksMerged   int      `json:"packsMerged"` // small packs whose blobs moved into fuller ones
	PacksWritten  int      `json:"packsWritten"`
	IndexesMerged int      `json:"indexesMerged"`
	BytesBefore   int64    `json:"bytesBefore"`
	BytesAfter    int64    `json:"bytesAfter"`
	StaleLocks    []string `json:"staleLocks"`
	// TempFilesRemoved counts temp files an interrupted upload left in a
	// file:// archive, removed once an hour old.
	TempFilesRemoved int `json:"tempFilesRemoved"`
	// With an object lock: unused packs still retained are kept
	// (RetainedPacks, RetainedBytes, until RetainedUntil at the latest);
	// nothing is repacked; old versions whose retention has passed are
	// removed for good (VersionsRemoved), the others kept (VersionsRetained).
	RetainedPacks    int        `json:"retainedPacks,omitempty"`
	RetainedBytes    int64      `json:"retainedBytes,omitempty"`
	RetainedUntil    *time.Time `json:"retainedUntil,omitempty"`
	VersionsRemoved  int        `json:"versionsRemoved,omitempty"`
	VersionsRetained int        `json:"versionsRetained,omitempty"`
	DurationMs       float64    `json:"durationMs"`
}

// tempSweepAge is how old a store's temp file must be before gc removes
// it: far longer than any one object takes to write.
const tempSweepAge = time.Hour

// tempSweeper is a store that can leave temp files behind (file://).
type tempSweeper interface {
	SweepTemp(ctx context.Context, olderThanNs int64) ([]string, error)
}

// GC deletes the data no snapshot needs, under an exclusive lock (stale
// locks are removed first; a live lock makes it fail, repo.ErrLocked). Mark:
// every snapshot's streams are read, one at a time, into a sorted set of
// used chunk ids (if any snapshot cannot be read, nothing is deleted).
// Sweep: packs with no used chunk are deleted; packs with some garbage are
// repacked (their used chunks, verified, go into new packs); packs filled
// to less than half are merged into full ones; the index is rewritten in
// bounded objects. Order: new packs, new index, old indexes deleted, old
// packs deleted, each only while the lock is still held; a crash leaves at
// worst unreferenced packs, never a missing chunk.
func (r *Repo) GC(ctx context.Context, dryRun bool, o Progress) (*GCResult, error) {
	start := time.Now()
	if o == nil {
		o = NoProgress{}
	}
	res := &GCResult{DryRun: dryRun, StaleLocks: []string{}}
	lock, stale, err := r.LockOrBreak(ctx, repo.LockExclusive, "gc", true)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	crash.Point("gc.locked")
	res.StaleLocks = append(res.StaleLocks, stale...)
	if ts, ok := store.Unwrap(r.Store()).(tempSweeper); ok && !dryRun {
		removed, err := ts.SweepTemp(ctx, time.Now().Add(-tempSweepAge).UnixNano())
		if err != nil {
			return nil, fmt.Errorf("sweep temp files: %w", err)
		}
		res.TempFilesRemoved = len(removed)
	}

	// What is stored: packs (by listing) and their blobs, from the indexes
	// or, for packs no index lists, their trailers.
	stored, _, err := r.ListPacks(ctx)
	if err != nil {
		return nil, err
	}
	idx := repo.NewIndex()
	blobsOf := map[repo.ID][]repo.BlobRef{}
	var ikeys []string
	err = r.EachIndex(ctx, func(ob repo.IndexObject) error {
		if ob.Err != nil {
			return fmt.Errorf("gc refused, nothing deleted: %w", ob.Err)
		}
		ikeys = append(ikeys, ob.Key)
		for _, p := range ob.Packs {
			if _, ok := stored[p.ID]; ok && blobsOf[p.ID] == nil {
				blobsOf[p.ID] = p.Blobs
				idx.AddPack(p.ID, p.Size, p.Blobs)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, size := range stored {
		if _, ok := blobsOf[id]; !ok {
			if blobs, err := r.ReadTrailer(ctx, id, size); err == nil {
				blobsOf[id] = blobs
				idx.AddPack(id, size, blobs)
			} else {
				blobsOf[id] = nil // unreadable: nothing in it can be relied on
			}
		}
		res.BytesBefore += size
	}
	idx.Seal()

	// Mark.
	keys, err := r.SnapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	used := &repo.IDSet{}
	for _, k := range keys {
		if err := r.markPiece(ctx, idx, k, used); err != nil {
			return nil, fmt.Errorf("gc refused, nothing deleted: %w", err)
		}
	}
	used.Compact()
	res.Snapshots, res.ChunksUsed = len(keys), used.Len()

	plan, err := r.sweepPlan(stored, blobsOf, used)
	if err != nil {
		return nil, err
	}
	if r.Config().ObjectLock != nil {
		if err := r.lockedPlan(ctx, plan, stored, blobsOf, res); err != nil {
			return nil, err
		}
	}
	res.PacksRepacked, res.PacksMerged = len(plan.mixed), len(plan.small)
	res.PacksDeleted = len(plan.dead) + len(plan.mixed) + len(plan.small)
	for _, list := range [][]repo.ID{plan.dead, plan.mixed, plan.small} {
		for _, id := range list {
			res.BlobsDeleted += len(blobsOf[id])
		}
	}
	res.BlobsDeleted -= len(plan.moves)
	var after int64
	for _, p := range plan.kept {
		after += p.Size
	}
	if dryRun {
		for _, m := range plan.moves {
			after += int64(m.ref.Length) + repo.TrailerEntry
		}
		res.BytesAfter = after
		res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
		return res, nil
	}

	if r.Config().ObjectLock != nil && len(plan.dead) == 0 {
		// Nothing to delete: the index stays as it is (rewriting it would
		// only add retained versions).
		err := r.purgeVersions(ctx, res)
		res.BytesAfter = after
		res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
		return res, err
	}
	// Repack: read each source pack (bounded), verify each blob that
	// moves, write new packs.
	newPacks, err := r.repack(ctx, plan, o)
	if err != nil {
		return nil, err
	}
	for _, p := range newPacks {
		after += p.Size
	}
	res.PacksWritten = len(newPacks)
	// The index for everything kept, then drop the old ones, then the packs.
	if err := lock.Check(ctx); err != nil {
		return nil, err
	}
	written, err := r.WriteIndex(ctx, append(plan.kept, newPacks...))
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, k := range written {
		keep[k] = true
	}
	if err := lock.Check(ctx); err != nil {
		return nil, err
	}
	for _, k := range ikeys {
		if !keep[k] {
			if err := r.Store().Delete(ctx, k); err != nil {
				return nil, err
			}
			res.IndexesMerged++
		}
	}
	for _, list := range [][]repo.ID{plan.dead, plan.mixed, plan.small} {
		for _, id := range list {
			if err := r.Store().Delete(ctx, repo.PackKey(id)); err != nil {
				return nil, err
			}
		}
	}
	if r.Config().ObjectLock != nil {
		if err := r.purgeVersions(ctx, res); err != nil {
			return nil, err
		}
	}
	res.BytesAfter = after
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// markPiece adds every chunk one snapshot needs (both its streams and
// every file's chunks) to used, reading the snapshot as a stream.
func (r *Repo) markPiece(ctx context.Context, idx *repo.Index, key string, used *repo.IDSet) error {
	s, err := r.ReadSnapshotKey(ctx, key)
	if err != nil {
		return err
	}
	for _, d := range []*repo.StreamDesc{&s.Object().Manifest, &s.Object().Content} {
		for _, id := range d.IDs() {
			used.Add(id)
		}
	}
	return r.EachFile(ctx, idx, s, func(ids []repo.ID) error {
		for _, id := range ids {
			used.Add(id)
		}
		return nil
	})
}
