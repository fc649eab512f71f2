package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// Fetching a batch's files: blobs of one pack merged into range reads,
// written in place, every file hashed as its chunks land and checked
// against the manifest.

// Range reads: blobs of one pack closer than maxGap are read in one request
// of at most maxRange bytes; fetchWorkers requests run at once. Memory stays
// near fetchWorkers x (maxRange + a chunk).
const (
	maxRange     = 8 << 20
	maxGap       = 256 << 10
	fetchWorkers = 8
)

// target is where a chunk goes: a file (by its index) at an offset.
type target struct {
	file int
	off  int64
}

type neededBlob struct {
	loc     repo.Location
	id      repo.ID
	targets []target
}

type fetchRange struct {
	pack       repo.ID
	start, end int64
	blobs      []*neededBlob
}

// fetchContents writes each job's content at its path under root: every
// needed blob is grouped by pack, neighbouring blobs are read in one range
// request, each chunk is written at its offsets in every file that holds
// it, and each file is hashed as its chunks land, checked against its
// manifest BLAKE3 and given its attributes (a chunk's id is checked only to
// name the pack of a file that fails). It returns bytes fetched and
// requests made.
func (r *Repo) fetchContents(ctx context.Context, idx *repo.Index, root *fsutil.Dir, mk *fsutil.Maker, jobs []fileJob, o DownloadOptions) (int64, int64, error) {
	byBlob := map[repo.ID]*neededBlob{}
	for i := range jobs {
		// Files are created by their first chunk's write, in the fetch
		// workers; empty files after them.
		var off int64
		for _, cid := range jobs[i].ids {
			loc, _ := idx.Lookup(cid) // checkRecords proved every chunk indexed
			nb := byBlob[cid]
			if nb == nil {
				nb = &neededBlob{loc: loc, id: cid}
				byBlob[cid] = nb
			}
			nb.targets = append(nb.targets, target{i, off})
			off += int64(loc.Raw)
		}
	}
	// Ranges: per pack, blobs in pack order, merged across small gaps.
	perPack := map[repo.ID][]*neededBlob{}
	for _, nb := range byBlob {
		perPack[nb.loc.Pack] = append(perPack[nb.loc.Pack], nb)
	}
	var ranges []*fetchRange
	for pack, list := range perPack {
		sort.Slice(list, func(a, b int) bool { return list[a].loc.Offset < list[b].loc.Offset })
		var cur *fetchRange
		for _, nb := range list {
			end := nb.loc.Offset + int64(nb.loc.Length)
			if cur == nil || nb.loc.Offset-cur.end > maxGap || end-cur.start > maxRange || nb.loc.Offset < cur.end {
				cur = &fetchRange{pack: pack, start: nb.loc.Offset}
				ranges = append(ranges, cur)
			}
			cur.end = end
			cur.blobs = append(cur.blobs, nb)
		}
	}
	// Ranges in file order (the order the upload packed them): a file's
	// chunks then land about in order, and its hash runs over them from
	// memory (fileStream).
	first := func(rg *fetchRange) target {
		m := rg.blobs[0].targets[0]
		for _, nb := range rg.blobs {
			if t := nb.targets[0]; t.file < m.file || t.file == m.file && t.off < m.off {
				m = t
			}
		}
		return m
	}
	sort.Slice(ranges, func(a, b int) bool {
		ta, tb := first(ranges[a]), first(ranges[b])
		return ta.file < tb.file || ta.file == tb.file && ta.off < tb.off
	})
	var fetched, reqs atomic.Int64
	// A file of one chunk is made whole in one go: its chunk is hashed in
	// memory against the manifest, written, given its attributes and
	// closed. Small files are most files of a large tree; this saves an
	// open and a read of each. A file of several chunks is hashed as they
	// land (fileStream).
	streams := make([]fileStream, len(jobs))
	finished := make([]bool, len(jobs))
	err := par.ForEach(ctx, len(ranges), fetchWorkers, func(ctx context.Context, k int) error {
		rg := ranges[k]
		data, err := r.Store().GetRange(ctx, repo.PackKey(rg.pack), rg.start, rg.end-rg.start)
		reqs.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, store.ErrNotFound) {
				err = fmt.Errorf("%w: missing from the archive", repo.ErrCorrupt)
			}
			return &repo.PackError{Pack: rg.pack, Err: err}
		}
		fetched.Add(int64(len(data)))
		// A range of small files holds thousands of them: they are made by
		// o.Workers goroutines, each taking a contiguous share (files of
		// one directory stay together), so creating files, which is most of
		// a download of small files, uses every core.
		return par.Stripes(ctx, len(rg.blobs), o.Workers, func(ctx context.Context, i int) error {
			nb := rg.blobs[i]
			b := data[nb.loc.Offset-rg.start : nb.loc.Offset-rg.start+int64(nb.loc.Length)]
			bp := plainBufs.Get().(*[]byte)
			defer plainBufs.Put(bp)
			chunk, err := r.OpenBlob(bp, b, nb.id, nb.loc.Raw)
			if err != nil {
				return &repo.PackError{Pack: rg.pack, Err: err}
			}
			sum := "" // the chunk's BLAKE3, for the files it makes whole
			for _, t := range nb.targets {
				j := &jobs[t.file]
				if len(j.ids) == 1 {
					if sum == "" {
						sum = manifest.HashBytes(chunk)
					}
					if sum != j.e.BLAKE3 || int64(len(chunk)) != j.e.Size {
						if err := r.CheckChunk(chunk, nb.id); err != nil {
							return &repo.PackError{Pack: rg.pack, Err: err}
						}
						return fmt.Errorf("%w: the one chunk of %s does not match its manifest (BLAKE3 %s, %d bytes)", repo.ErrCorrupt, j.e.Path, j.e.BLAKE3, j.e.Size)
					}
					if err := mk.Write(string(j.e.Path), chunk, j.e.UID, j.e.GID, j.e.Mode, j.e.MtimeNs); err != nil {
						return err
					}
					finished[t.file] = true
					o.Progress.Add(1, j.e.Size)
					continue
				}
				s := &streams[t.file]
				last, err := s.land(root, &j.e, len(j.ids), chunk, t.off)
				if err != nil {
					return err
				}
				if last {
					if err := s.finish(&j.e, func(f *os.File) error { return r.blameChunks(idx, f, j.ids) }); err != nil {
						return err
					}
					finished[t.file] = true
					o.Progress.Add(1, j.e.Size)
				}
			}
			return nil
		})
	})
	for i := range streams {
		if s := &streams[i]; s.f != nil && !finished[i] {
			s.f.Close() // a failed batch: its stream never finished
		}
	}
	if err != nil {
		return fetched.Load(), reqs.Load(), err
	}
	// Empty files (no chunk to make them).
	empty := manifest.HashBytes(nil)
	for i := range jobs {
		if finished[i] {
			continue
		}
		e := &jobs[i].e
		if len(jobs[i].ids) != 0 || e.Size != 0 || e.BLAKE3 != empty {
			return fetched.Load(), reqs.Load(), fmt.Errorf("%w: the archive's chunks of %s do not make it (%d bytes, BLAKE3 %s)", repo.ErrCorrupt, e.Path, e.Size, e.BLAKE3)
		}
		if err := mk.Write(string(e.Path), nil, e.UID, e.GID, e.Mode, e.MtimeNs); err != nil {
			return fetched.Load(), reqs.Load(), err
		}
		o.Progress.Add(1, 0)
	}
	return fetched.Load(), reqs.Load(), nil
}

// plainBufs hold decompressed chunks while they are written: a download
// decompresses every byte, and fresh buffers of megabytes each cost a
// clearing of their memory.
var plainBufs = sync.Pool{New: func() any { b := []byte(nil); return &b }}

// filesUsingPack lists the batch's files with a chunk in pack.
func filesUsingPack(jobs []fileJob, idx *repo.Index, pack repo.ID) []string {
	var out []string
	for _, j := range jobs {
		for _, cid := range j.ids {
			if l, ok := idx.Lookup(cid); ok && l.Pack == pack {
				out = append(out, string(j.e.Path))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func listSome(paths []string) string {
	if len(paths) > 10 {
		return strings.Join(paths[:10], ", ") + fmt.Sprintf(" and %d more", len(paths)-10)
	}
	return strings.Join(paths, ", ")
}
