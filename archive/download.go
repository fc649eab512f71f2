package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/tree"
)

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Node is whose piece to download; empty means snapshot.DefaultNodeID.
	Node     string
	Workers  int // files fetched at once; 0 means 4
	Progress Progress
	Logger   *slog.Logger
}

// DownloadResult reports a download. The JSON form is the CLI's contract.
type DownloadResult struct {
	ID              string  `json:"id"`
	Node            string  `json:"node"`
	Path            string  `json:"path"`
	Files           int64   `json:"files"`
	Bytes           int64   `json:"bytes"`
	FilesFetched    int64   `json:"filesFetched"`
	FilesLocal      int64   `json:"filesLocal"` // taken from local snapshots after a re-hash
	BytesFetched    int64   `json:"bytesFetched"`
	RequestsFetched int64   `json:"requests"`
	DurationMs      float64 `json:"durationMs"`
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// packError names a pack that could not be read or was damaged.
type packError struct {
	pack ID
	err  error
}

func (e *packError) Error() string { return fmt.Sprintf("pack %s: %v", e.pack, e.err) }
func (e *packError) Unwrap() error { return e.err }

// Download materialises snapshot id (one node's piece) into the backups
// dir: staging, then one atomic publish, as a local create. Every chunk is
// checked against its id and every file against its BLAKE3. A file whose
// content a local snapshot holds is taken from there after a re-hash proves
// it. Any failure names the snapshot files affected and leaves nothing.
func Download(ctx context.Context, r *Repo, l *snapshot.Layout, id string, o DownloadOptions) (*DownloadResult, error) {
	start := time.Now()
	if o.Node == "" {
		o.Node = snapshot.DefaultNodeID
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	// A shared lock keeps gc away. Read-only credentials (common for
	// restores) cannot write one: the download then goes on without it,
	// which is safe because every chunk and file is verified (a gc running
	// meanwhile can only make it fail, clearly). A gc that holds the archive
	// is still refused.
	lock, err := r.Lock(ctx, LockShared, "download "+id)
	switch {
	case errors.Is(err, ErrLocked):
		return nil, err
	case err != nil:
		others, lerr := r.liveLocks(ctx, "")
		if lerr != nil {
			return nil, lerr
		}
		for _, l := range others {
			if l.Kind == LockExclusive {
				return nil, fmt.Errorf("%w: %s holds a %s", ErrLocked, r.st, l)
			}
		}
		logger(o.Logger).Warn("downloading without a lock (cannot write one)", "err", err)
	default:
		defer lock.Release()
	}
	rs, err := r.readSnapshot(ctx, id, o.Node)
	if err != nil {
		return nil, err
	}
	m := rs.m
	idx, _, err := r.LoadIndex(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	// Every chunk must be indexed before anything is written.
	var missing []string
	for _, e := range m.Entries {
		if e.Type != manifest.TypeFile {
			continue
		}
		for _, cid := range rs.content[e.BLAKE3] {
			if !idx.Has(cid) {
				missing = append(missing, string(e.Path))
				break
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %d file(s) of %s need chunks the archive's index does not hold: %s (run `hotsnap archive check`)",
			ErrCorrupt, len(missing), id, listSome(missing))
	}
	res := &DownloadResult{ID: id, Node: o.Node, Path: l.SnapshotDir(id), Files: m.Totals.Files, Bytes: m.Totals.Bytes}
	local, err := snapshot.OpenLocalFiles(ctx, l)
	if err != nil {
		return nil, err
	}
	defer local.Close()
	o.Progress.Start("download", m.Totals.Files, m.Totals.Bytes)
	defer o.Progress.Done()
	origin, _ := json.Marshal(map[string]string{"remote": r.st.String(), "downloadedAt": time.Now().UTC().Format(time.RFC3339)})

	var fetched, localN, bytesFetched, requests atomic.Int64
	fill := func(ctx context.Context, root *fsutil.Dir) error {
		// Dirs and symlinks first (entries are sorted: parents come first).
		groups := map[string][]*manifest.Entry{} // content hash -> entries
		var order []string
		for i := range m.Entries {
			e := &m.Entries[i]
			if err := tree.MakeDirOrSymlink(root, e); err != nil {
				return err
			}
			if e.Type == manifest.TypeFile {
				if _, ok := groups[e.BLAKE3]; !ok {
					order = append(order, e.BLAKE3)
				}
				groups[e.BLAKE3] = append(groups[e.BLAKE3], e)
			}
		}
		// Contents a local snapshot holds are taken from there; the rest
		// are fetched pack by pack.
		var remote []*manifest.Entry
		for _, h := range order {
			first := groups[h][0]
			if lc, ok := local.Lookup(h); ok && takeLocal(local, lc, first, root) == nil {
				localN.Add(1)
				o.Progress.Add(1, first.Size)
				continue
			}
			remote = append(remote, first)
		}
		n, reqs, err := r.fetchContents(ctx, idx, rs, root, remote, o)
		bytesFetched.Add(n)
		requests.Add(reqs)
		if err != nil {
			var pe *packError
			if errors.As(err, &pe) {
				return fmt.Errorf("%w; snapshot files affected: %s", err, listSome(filesUsingPack(m, rs, idx, pe.pack)))
			}
			return err
		}
		fetched.Add(int64(len(remote)))
		// Other entries with the same content: hard links where they were
		// one link group, private copies otherwise.
		return par.ForEach(ctx, len(order), o.Workers, func(ctx context.Context, k int) error {
			es := groups[order[k]]
			first := es[0]
			for _, e := range es[1:] {
				if e.LinkGroup != 0 && e.LinkGroup == first.LinkGroup {
					if err := root.Link(string(first.Path), root, string(e.Path)); err != nil {
						return err
					}
				} else if err := copyWithin(root, first, e); err != nil {
					return err
				}
				o.Progress.Add(1, e.Size)
			}
			return nil
		})
	}
	if err := snapshot.Import(ctx, l, rs.manifest, origin, fill, o.Logger); err != nil {
		return nil, err
	}
	res.FilesFetched, res.FilesLocal = fetched.Load(), localN.Load()
	res.BytesFetched, res.RequestsFetched = bytesFetched.Load(), requests.Load()
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// copyWithin makes e a private copy of the finished file first, both below root.
func copyWithin(root *fsutil.Dir, first, e *manifest.Entry) error {
	f, _, err := root.OpenRegular(string(first.Path))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = tree.Copy(f, root, e, false)
	return err
}

// takeLocal puts the local copy of a content at e's place below root,
// proven by its hash. A hard link is used when both sides were captured by
// link and the local file already has the entry's owner, mode and mtime
// (setting them would change the shared inode); otherwise a private copy,
// hashed as it is made.
func takeLocal(local *snapshot.LocalFiles, lc snapshot.LocalContent, e *manifest.Entry, root *fsutil.Dir) error {
	f, st, err := local.Open(lc)
	if err != nil {
		return err
	}
	defer f.Close()
	if lc.Entry.Capture == manifest.CaptureLink && e.Capture == manifest.CaptureLink &&
		st.Perm() == e.Mode && st.MtimeNs == e.MtimeNs && st.UID == e.UID && st.GID == e.GID {
		sum, n, err := manifest.HashReader(f)
		if err != nil || sum != e.BLAKE3 || n != e.Size {
			return fmt.Errorf("local copy %s does not hold the content", f.Name())
		}
		if fsutil.LinkFile(f, root, string(e.Path)) == nil {
			return nil
		}
	}
	sum, err := tree.Copy(f, root, e, true)
	if err != nil {
		return err
	}
	if sum != e.BLAKE3 {
		root.Remove(string(e.Path))
		return fmt.Errorf("local copy %s does not hold the content", f.Name())
	}
	return nil
}

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
	loc     Location
	id      ID
	targets []target
}

type fetchRange struct {
	pack       ID
	start, end int64
	blobs      []*neededBlob
}

// fetchContents writes each entry's content at its path under tree: every
// needed blob is grouped by pack, neighbouring blobs are read in one range
// request, each chunk is checked against its id and written at its offsets
// in every file that holds it; then each file is hashed whole against its
// manifest BLAKE3 and given its attributes. It returns bytes fetched and
// requests made.
func (r *Repo) fetchContents(ctx context.Context, idx *Index, rs *RemoteSnapshot, root *fsutil.Dir, entries []*manifest.Entry, o DownloadOptions) (int64, int64, error) {
	paths := make([]string, len(entries))
	byBlob := map[ID]*neededBlob{}
	for i, e := range entries {
		// Files are created by their first chunk's write, in the fetch
		// workers (creating thousands up front, one by one, cost more than
		// fetching them); empty files in the hash pass below.
		paths[i] = string(e.Path)
		var off int64
		for _, cid := range rs.content[e.BLAKE3] {
			loc, _ := idx.Lookup(cid)
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
	perPack := map[ID][]*neededBlob{}
	for _, nb := range byBlob {
		perPack[nb.loc.Pack] = append(perPack[nb.loc.Pack], nb)
	}
	var ranges []*fetchRange
	for pack, list := range perPack {
		sort.Slice(list, func(a, b int) bool { return list[a].loc.Offset < list[b].loc.Offset })
		var cur *fetchRange
		for _, nb := range list {
			end := nb.loc.Offset + int64(nb.loc.Length)
			if cur == nil || nb.loc.Offset-cur.end > maxGap || end-cur.start > maxRange {
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
	err := par.ForEach(ctx, len(ranges), fetchWorkers, func(ctx context.Context, k int) error {
		rg := ranges[k]
		data, err := r.st.GetRange(ctx, packKey(rg.pack), rg.start, rg.end-rg.start)
		reqs.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, store.ErrNotFound) {
				err = fmt.Errorf("%w: missing from the archive", ErrCorrupt)
			}
			return &packError{rg.pack, err}
		}
		fetched.Add(int64(len(data)))
		for _, nb := range rg.blobs {
			b := data[nb.loc.Offset-rg.start : nb.loc.Offset-rg.start+int64(nb.loc.Length)]
			chunk, err := decodeBlob(r.enc, b, nb.id, nb.loc.Raw)
			if err != nil {
				return &packError{rg.pack, err}
			}
			for _, t := range nb.targets {
				if err := writeAt(root, paths[t.file], chunk, t.off); err != nil {
					return err
				}
			}
			o.Progress.Add(0, int64(len(chunk))*int64(len(nb.targets)))
		}
		return nil
	})
	if err != nil {
		return fetched.Load(), reqs.Load(), err
	}
	// Every file whole: its BLAKE3 and size, then its attributes.
	err = par.ForEach(ctx, len(entries), 0, func(ctx context.Context, i int) error {
		e := entries[i]
		if len(rs.content[e.BLAKE3]) == 0 {
			f, err := root.Create(paths[i], 0o600)
			if err != nil {
				return err
			}
			f.Close()
		}
		f, _, err := root.OpenRegular(paths[i])
		if err != nil {
			return err
		}
		defer f.Close()
		sum, n, err := manifest.HashReader(f)
		if err != nil {
			return err
		}
		if sum != e.BLAKE3 || n != e.Size {
			return fmt.Errorf("%w: reassembled %s does not match its manifest (BLAKE3 %s, %d bytes)", ErrCorrupt, e.Path, sum, n)
		}
		o.Progress.Add(1, 0)
		return tree.SetAttrs(f, e)
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
	_ = unix.SyncFileRange(int(f.Fd()), off, int64(len(b)), unix.SYNC_FILE_RANGE_WRITE)
	return f.Close()
}

// filesUsingPack lists the snapshot's files with a chunk in pack.
func filesUsingPack(m *manifest.Manifest, rs *RemoteSnapshot, idx *Index, pack ID) []string {
	var out []string
	for _, e := range m.Entries {
		if e.Type != manifest.TypeFile {
			continue
		}
		for _, cid := range rs.content[e.BLAKE3] {
			if l, ok := idx.Lookup(cid); ok && l.Pack == pack {
				out = append(out, string(e.Path))
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
