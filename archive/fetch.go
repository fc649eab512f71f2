package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
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
	first      target // the earliest place any of its blobs goes
}

func (t target) before(u target) bool { return t.file < u.file || t.file == u.file && t.off < u.off }

// planRanges groups the jobs' blobs by pack, in pack order, merged across
// small gaps into range reads, and orders the ranges by file (the order the
// upload packed them): a file's chunks then land about in order, and its
// hash runs over them from memory (fileStream).
func planRanges(idx *repo.Index, jobs []fileJob) []*fetchRange {
	byBlob := map[repo.ID]*neededBlob{}
	for i := range jobs {
		var off int64
		for _, cid := range jobs[i].ids {
			loc, _ := idx.Lookup(cid) // CheckExtents proved every chunk indexed
			nb := byBlob[cid]
			if nb == nil {
				nb = &neededBlob{loc: loc, id: cid}
				byBlob[cid] = nb
			}
			nb.targets = append(nb.targets, target{i, off}) // in file order
			off += int64(loc.Raw)
		}
	}
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
				cur = &fetchRange{pack: pack, start: nb.loc.Offset, first: nb.targets[0]}
				ranges = append(ranges, cur)
			}
			cur.end = end
			cur.blobs = append(cur.blobs, nb)
			if nb.targets[0].before(cur.first) {
				cur.first = nb.targets[0]
			}
		}
	}
	sort.Slice(ranges, func(a, b int) bool { return ranges[a].first.before(ranges[b].first) })
	return ranges
}

// batchFill makes one batch's files from their chunks.
type batchFill struct {
	r        *Repo
	idx      *repo.Index
	root     *fsutil.Dir
	mk       *fsutil.Maker
	jobs     []fileJob
	o        DownloadOptions
	streams  []fileStream // files of several chunks
	finished []bool       // made whole, checked and given their attributes
}

// fetchContents writes each job's content at its path under root: every
// needed blob is grouped by pack, neighbouring blobs are read in one range
// request, each chunk is written at its offsets in every file that holds
// it, and each file is hashed as its chunks land, checked against its
// manifest BLAKE3 and given its attributes (a chunk's id is checked only to
// name the pack of a file that fails). Files are created by their first
// chunk, empty files after the fetch. It returns bytes fetched and
// requests made.
func (r *Repo) fetchContents(ctx context.Context, idx *repo.Index, root *fsutil.Dir, mk *fsutil.Maker, jobs []fileJob, o DownloadOptions) (int64, int64, error) {
	ranges := planRanges(idx, jobs)
	b := &batchFill{r: r, idx: idx, root: root, mk: mk, jobs: jobs, o: o,
		streams: make([]fileStream, len(jobs)), finished: make([]bool, len(jobs))}
	var fetched, reqs atomic.Int64
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
			return b.place(rg.pack, nb, data[nb.loc.Offset-rg.start:nb.loc.Offset-rg.start+int64(nb.loc.Length)])
		})
	})
	for i := range b.streams {
		if s := &b.streams[i]; s.f != nil && !b.finished[i] {
			s.f.Close() // a failed batch: its stream never finished
		}
	}
	if err == nil {
		err = b.makeEmpty()
	}
	return fetched.Load(), reqs.Load(), err
}

// place opens a stored blob of pack and writes its chunk wherever it goes.
// A file of one chunk is made whole in one go: the chunk is hashed in
// memory against the manifest, written, given its attributes and closed
// (small files are most files of a large tree; this saves an open and a
// read of each). A file of several chunks is hashed as they land
// (fileStream).
func (b *batchFill) place(pack repo.ID, nb *neededBlob, stored []byte) error {
	bp := plainBufs.Get().(*[]byte)
	defer plainBufs.Put(bp)
	chunk, err := b.r.OpenBlob(bp, stored, nb.id, nb.loc.Raw)
	if err != nil {
		return &repo.PackError{Pack: pack, Blob: nb.id, Err: err}
	}
	sum := "" // the chunk's BLAKE3, for the files it makes whole
	for _, t := range nb.targets {
		j := &b.jobs[t.file]
		if len(j.ids) > 1 {
			if err := b.land(t, chunk); err != nil {
				return err
			}
			continue
		}
		if sum == "" {
			sum = manifest.HashBytes(chunk)
		}
		if sum != j.e.BLAKE3 || int64(len(chunk)) != j.e.Size {
			if err := b.r.CheckChunk(chunk, nb.id); err != nil {
				return &repo.PackError{Pack: pack, Blob: nb.id, Err: err}
			}
			return fmt.Errorf("%w: the one chunk of %s does not match its manifest (BLAKE3 %s, %d bytes)", repo.ErrCorrupt, j.e.Path, j.e.BLAKE3, j.e.Size)
		}
		if err := b.mk.Write(string(j.e.Path), chunk, j.e.UID, j.e.GID, j.e.Mode, j.e.MtimeNs); err != nil {
			return err
		}
		b.done(t.file)
	}
	return nil
}

// land writes a chunk of a file of several chunks at t; the last to land
// finishes the file.
func (b *batchFill) land(t target, chunk []byte) error {
	j := &b.jobs[t.file]
	s := &b.streams[t.file]
	last, err := s.land(b.root, &j.e, len(j.ids), chunk, t.off)
	if err != nil || !last {
		return err
	}
	if err := s.finish(&j.e, func(f *os.File) error { return b.r.blameChunks(b.idx, f, j.ids) }); err != nil {
		return err
	}
	b.done(t.file)
	return nil
}

func (b *batchFill) done(file int) {
	b.finished[file] = true
	b.o.Progress.Add(1, b.jobs[file].e.Size)
}

// makeEmpty makes the files no chunk made: empty files.
func (b *batchFill) makeEmpty() error {
	empty := manifest.HashBytes(nil)
	for i := range b.jobs {
		if b.finished[i] {
			continue
		}
		e := &b.jobs[i].e
		if len(b.jobs[i].ids) != 0 || e.Size != 0 || e.BLAKE3 != empty {
			return fmt.Errorf("%w: the archive's chunks of %s do not make it (%d bytes, BLAKE3 %s)", repo.ErrCorrupt, e.Path, e.Size, e.BLAKE3)
		}
		if err := b.mk.Write(string(e.Path), nil, e.UID, e.GID, e.Mode, e.MtimeNs); err != nil {
			return err
		}
		b.o.Progress.Add(1, 0)
	}
	return nil
}

// plainBufs hold decompressed chunks while they are written: a download
// decompresses every byte, and fresh buffers of megabytes each cost a
// clearing of their memory.
var plainBufs = sync.Pool{New: func() any { b := []byte(nil); return &b }}

// filesAffected lists the batch's files that use the damaged blob pe
// names, or, when it names none (the pack or a range of it failed as a
// whole), the files with a chunk in its pack.
func filesAffected(jobs []fileJob, idx *repo.Index, pe *repo.PackError) []string {
	uses := func(cid repo.ID) bool {
		if pe.Blob != (repo.ID{}) {
			return cid == pe.Blob
		}
		l, ok := idx.Lookup(cid)
		return ok && l.Pack == pe.Pack
	}
	var out []string
	for _, j := range jobs {
		if slices.ContainsFunc(j.ids, uses) {
			out = append(out, string(j.e.Path))
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
