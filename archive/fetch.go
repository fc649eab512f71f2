package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// Fetching a batch's files: blobs of one pack merged into range reads,
// every chunk checked against its id as it lands, written in place.

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
// request, each chunk is checked against its id and written at its offsets
// in every file that holds it; then each file is hashed whole against its
// manifest BLAKE3 and given its attributes. It returns bytes fetched and
// requests made.
func (r *Repo) fetchContents(ctx context.Context, idx *repo.Index, root *fsutil.Dir, mk *fsutil.Maker, jobs []fileJob, o DownloadOptions) (int64, int64, error) {
	byBlob := map[repo.ID]*neededBlob{}
	for i := range jobs {
		// Files are created by their first chunk's write, in the fetch
		// workers; empty files in the hash pass below.
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
	// Bigger ranges first keeps the workers busy to the end.
	sort.Slice(ranges, func(a, b int) bool { return ranges[a].end-ranges[a].start > ranges[b].end-ranges[b].start })
	var fetched, reqs atomic.Int64
	// A file of one chunk is made whole in one go: its chunk (checked
	// against its id) is hashed in memory against the manifest, written,
	// given its attributes and closed, and the second pass skips it. Small
	// files are most files of a large tree; this saves an open and a read
	// of each.
	whole := make([]bool, len(jobs))
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
			chunk, err := r.DecodeBlob(b, nb.id, nb.loc.Raw)
			if err != nil {
				return &repo.PackError{Pack: rg.pack, Err: err}
			}
			for _, t := range nb.targets {
				j := &jobs[t.file]
				if len(j.ids) == 1 {
					if err := writeWhole(mk, &j.e, chunk); err != nil {
						return err
					}
					whole[t.file] = true
					o.Progress.Add(1, j.e.Size)
					continue
				}
				if err := writeAt(root, string(j.e.Path), chunk, t.off); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return fetched.Load(), reqs.Load(), err
	}
	// Every file whole: its BLAKE3 and size, then its attributes.
	err = par.ForEach(ctx, len(jobs), o.Workers, func(ctx context.Context, i int) error {
		if whole[i] {
			return nil
		}
		e := &jobs[i].e
		p := string(e.Path)
		if len(jobs[i].ids) == 0 {
			f, err := root.Create(p, 0o600)
			if err != nil {
				return err
			}
			f.Close()
		}
		f, err := root.OpenFile(p, os.O_RDONLY, 0) // in staging: only files this download made
		if err != nil {
			return err
		}
		defer f.Close()
		sum, n, err := manifest.HashReader(f)
		if err != nil {
			return err
		}
		if sum != e.BLAKE3 || n != e.Size {
			return fmt.Errorf("%w: reassembled %s does not match its manifest (BLAKE3 %s, %d bytes)", repo.ErrCorrupt, e.Path, sum, n)
		}
		o.Progress.Add(1, e.Size)
		return fstree.SetAttrs(f, e)
	})
	return fetched.Load(), reqs.Load(), err
}

// writeAt writes a chunk at its offset in rel below root (created at the
// first write, never through a symlink) and starts its writeback at once
// (sync_file_range, asynchronous), so the disk works while later chunks
// are fetched and the fsync before publishing finds little left to do.
func writeAt(root *fsutil.Dir, rel string, b []byte, off int64) error {
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	if len(b) >= 1<<20 {
		// Start writeback of large chunks as they land, so the publish's
		// syncfs has less left to do; for small ones the call costs more
		// than it saves.
		_ = unix.SyncFileRange(int(f.Fd()), off, int64(len(b)), unix.SYNC_FILE_RANGE_WRITE)
	}
	return f.Close()
}

// writeWhole makes e, a file of one chunk, from that chunk: checked
// against the manifest's hash and size first, then written with its
// attributes.
func writeWhole(mk *fsutil.Maker, e *manifest.Entry, chunk []byte) error {
	if int64(len(chunk)) != e.Size || manifest.HashBytes(chunk) != e.BLAKE3 {
		return fmt.Errorf("%w: the one chunk of %s does not match its manifest (BLAKE3 %s, %d bytes)", repo.ErrCorrupt, e.Path, e.BLAKE3, e.Size)
	}
	return mk.Write(string(e.Path), chunk, e.UID, e.GID, e.Mode, e.MtimeNs)
}

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
