package archive

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/tree"
)

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Node is whose piece to download; empty means defaults.NodeID.
	Node     string
	Workers  int // files finished at once; 0 means defaults.DownloadWorkers
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
	FilesLocal      int64   `json:"filesLocal"` // taken from the newest local snapshot after a re-hash
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
// dir through Local.Import: staging, then one atomic publish. The
// manifest stream is fetched first and proven; then the content records
// are fetched and checked against it (every chunk indexed, every file's
// chunks making exactly its size) before any file is written; then the
// files are filled batch by batch, every chunk checked against its id and
// every file against its BLAKE3. A file that the newest local snapshot
// holds at the same path with the same content is taken from there after a
// re-hash. Memory does not grow with the number of files. Any failure
// leaves nothing.
func Download(ctx context.Context, r *Repo, l Local, id string, o DownloadOptions) (*DownloadResult, error) {
	start := time.Now()
	if o.Node == "" {
		o.Node = defaults.NodeID
	}
	if o.Workers <= 0 {
		o.Workers = defaults.DownloadWorkers
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
	idx, _, err := r.LoadIndex(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	if err := rs.checkStreams(idx); err != nil {
		return nil, fmt.Errorf("%w (run `hotsnap archive check`)", err)
	}
	localTree, localMF, err := l.OpenLatest(ctx)
	if err != nil {
		return nil, err
	}
	if localTree != nil {
		defer localTree.Close()
		defer localMF.Close()
	}
	res := &DownloadResult{ID: id, Node: o.Node, Path: l.SnapshotDir(id), Files: rs.Files, Bytes: rs.Bytes}
	o.Progress.Start("download", rs.Files, rs.Bytes)
	defer o.Progress.Done()
	origin, _ := json.Marshal(map[string]string{"remote": r.st.String(), "downloadedAt": time.Now().UTC().Format(time.RFC3339)})
	src := &downloadSource{r: r, idx: idx, rs: rs, localTree: localTree, localMF: localMF, o: o}
	if err := l.Import(ctx, id, origin, src, o.Logger); err != nil {
		return nil, err
	}
	res.FilesFetched, res.FilesLocal = src.fetched.Load(), src.localN.Load()
	res.BytesFetched, res.RequestsFetched = src.bytes.Load(), src.reqs.Load()
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// downloadSource is what Import publishes for a download.
type downloadSource struct {
	r   *Repo
	idx *Index
	rs  *RemoteSnapshot
	// The newest local snapshot (nil when none): unchanged files are
	// taken from it instead of fetched.
	localTree *fsutil.Dir
	localMF   *manifest.File
	o         DownloadOptions

	fetched, localN, bytes, reqs atomic.Int64
}

// WriteManifest fetches the manifest stream (checked chunk by chunk, then
// whole against its size and BLAKE3).
func (d *downloadSource) WriteManifest(ctx context.Context, w io.Writer) error {
	s := d.r.openStream(ctx, d.idx, d.rs.key+" (manifest stream)", d.rs.obj.Manifest)
	defer s.Close()
	_, err := io.Copy(w, s)
	return err
}

// Fill builds the tree: first the content records are fetched into an
// unnamed temp file and checked against the manifest, then the entries are
// made in order, files in batches.
func (d *downloadSource) Fill(ctx context.Context, root *fsutil.Dir, mf *manifest.File) error {
	h, err := mf.Header()
	if err != nil {
		return err
	}
	if h.ID != d.rs.ID || h.Node.ID != d.rs.Node || h.Totals.Files != d.rs.Files || h.Totals.Bytes != d.rs.Bytes {
		return fmt.Errorf("%w: %s describes %s/%s, its manifest stream holds %s/%s", ErrCorrupt, d.rs.key, d.rs.ID, d.rs.Node, h.ID, h.Node.ID)
	}
	records, err := d.fetchRecords(ctx, root, mf)
	if err != nil {
		return err
	}
	defer records.Close()
	f := &filler{d: d, root: root, groups: map[int]string{}}
	if d.localMF != nil {
		if f.localR, err = d.localMF.Reader(); err != nil {
			f.localR = nil
		}
	}
	mr, err := mf.Reader()
	if err != nil {
		return err
	}
	rr := newRecordReader(records, d.r.cfg.Chunker.Min)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := tree.MakeDirOrSymlink(root, e); err != nil {
			return err
		}
		if e.Type != manifest.TypeFile {
			continue
		}
		ids, err := rr.next(e, nil)
		if err != nil {
			return err
		}
		if err := f.file(ctx, e, ids); err != nil {
			return err
		}
	}
	return f.flush(ctx)
}

// fetchRecords fetches the content stream into an unnamed temp file of the
// staging tree (gone when closed) and checks it against the manifest:
// a record per file, every chunk indexed, every file's chunks making
// exactly its size. Nothing is written into the tree before it passed.
func (d *downloadSource) fetchRecords(ctx context.Context, root *fsutil.Dir, mf *manifest.File) (*os.File, error) {
	fd, err := unix.Openat(root.Fd(), ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "create temp file in", Path: root.Path(), Err: err}
	}
	tmp := os.NewFile(uintptr(fd), root.Join("(content records)"))
	s := d.r.openStream(ctx, d.idx, d.rs.key+" (content stream)", d.rs.obj.Content)
	defer s.Close()
	if _, err := io.Copy(tmp, s); err != nil {
		tmp.Close()
		return nil, err
	}
	err = d.checkRecords(tmp, mf)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		return nil, err
	}
	return tmp, nil
}

func (d *downloadSource) checkRecords(tmp *os.File, mf *manifest.File) error {
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	mr, err := mf.Reader()
	if err != nil {
		return err
	}
	rr := newRecordReader(bufio.NewReader(tmp), d.r.cfg.Chunker.Min)
	var buf []ID
	var missing []string
	for {
		e, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if e.Type != manifest.TypeFile {
			continue
		}
		if buf, err = rr.next(e, buf); err != nil {
			return fmt.Errorf("%s: %w", d.rs.key, err)
		}
		if err := checkExtents(d.idx, e, buf); err != nil {
			if errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), "no index holds") {
				if len(missing) < 10 {
					missing = append(missing, string(e.Path))
				}
				continue
			}
			return fmt.Errorf("%s: %w", d.rs.key, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: file(s) of %s need chunks the archive's index does not hold: %s (run `hotsnap archive check`)", ErrCorrupt, d.rs.ID, listSome(missing))
	}
	if err := rr.end(); err != nil {
		return fmt.Errorf("%s: %w", d.rs.key, err)
	}
	return nil
}

// Batches: files are fetched a batch at a time, so a snapshot of any size
// needs the memory of one batch's plan.
const (
	batchBytes = 64 << 20
	batchFiles = 8192
)

// filler makes the files of a download, batch by batch.
type filler struct {
	d      *downloadSource
	root   *fsutil.Dir
	batch  []fileJob
	bytes  int64
	links  [][2]string      // link group members to link once their first is made
	groups map[int]string   // link group -> its first member (made)
	localR *manifest.Reader // the newest local snapshot's manifest, read beside
	localE *manifest.Entry
}

type fileJob struct {
	e   manifest.Entry
	ids []ID
}

func (f *filler) file(ctx context.Context, e *manifest.Entry, ids []ID) error {
	if e.LinkGroup != 0 {
		if first, ok := f.groups[e.LinkGroup]; ok {
			f.links = append(f.links, [2]string{first, string(e.Path)})
			return nil
		}
		f.groups[e.LinkGroup] = string(e.Path)
	}
	if f.takeLocal(e) {
		f.d.localN.Add(1)
		f.d.o.Progress.Add(1, e.Size)
		return nil
	}
	f.batch = append(f.batch, fileJob{e: *e, ids: append([]ID(nil), ids...)})
	f.bytes += e.Size
	if f.bytes >= batchBytes || len(f.batch) >= batchFiles {
		return f.flush(ctx)
	}
	return nil
}

// takeLocal takes e from the newest local snapshot when it holds the same
// path with the same content (proven by a hash as it is linked or copied).
func (f *filler) takeLocal(e *manifest.Entry) bool {
	for f.localR != nil && (f.localE == nil || f.localE.Path < e.Path) {
		le, err := f.localR.Next()
		if err != nil {
			f.localR = nil
			return false
		}
		f.localE = le
	}
	if f.localR == nil || f.localE.Path != e.Path || f.localE.Type != manifest.TypeFile || f.localE.BLAKE3 != e.BLAKE3 || f.localE.Size != e.Size {
		return false
	}
	return takeLocal(f.d.localTree, f.localE, e, f.root) == nil
}

// flush fetches the batch, then makes the links waiting for its files.
func (f *filler) flush(ctx context.Context) error {
	if len(f.batch) > 0 {
		n, reqs, err := f.d.r.fetchContents(ctx, f.d.idx, f.root, f.batch, f.d.o)
		f.d.bytes.Add(n)
		f.d.reqs.Add(reqs)
		if err != nil {
			var pe *packError
			if errors.As(err, &pe) {
				return fmt.Errorf("%w; snapshot files affected: %s", err, listSome(filesUsingPack(f.batch, f.d.idx, pe.pack)))
			}
			return err
		}
		f.d.fetched.Add(int64(len(f.batch)))
		f.batch, f.bytes = f.batch[:0], 0
	}
	for _, l := range f.links {
		if err := f.root.Link(l[0], f.root, l[1]); err != nil {
			return err
		}
		f.d.o.Progress.Add(1, 0)
	}
	f.links = f.links[:0]
	return nil
}

// takeLocal puts the local copy of a content at e's place below root,
// proven by its hash. A hard link is used when both sides were captured by
// link and the local file already has the entry's owner, mode and mtime
// (setting them would change the shared inode); otherwise a private copy,
// hashed as it is made.
func takeLocal(local *fsutil.Dir, le, e *manifest.Entry, root *fsutil.Dir) error {
	f, st, err := local.OpenRegular(string(le.Path))
	if err != nil {
		return err
	}
	defer f.Close()
	if le.Capture == manifest.CaptureLink && e.Capture == manifest.CaptureLink &&
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

// fetchContents writes each job's content at its path under root: every
// needed blob is grouped by pack, neighbouring blobs are read in one range
// request, each chunk is checked against its id and written at its offsets
// in every file that holds it; then each file is hashed whole against its
// manifest BLAKE3 and given its attributes. It returns bytes fetched and
// requests made.
func (r *Repo) fetchContents(ctx context.Context, idx *Index, root *fsutil.Dir, jobs []fileJob, o DownloadOptions) (int64, int64, error) {
	byBlob := map[ID]*neededBlob{}
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
				if err := writeAt(root, string(jobs[t.file].e.Path), chunk, t.off); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fetched.Load(), reqs.Load(), err
	}
	// Every file whole: its BLAKE3 and size, then its attributes.
	err = par.ForEach(ctx, len(jobs), o.Workers, func(ctx context.Context, i int) error {
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
			return fmt.Errorf("%w: reassembled %s does not match its manifest (BLAKE3 %s, %d bytes)", ErrCorrupt, e.Path, sum, n)
		}
		o.Progress.Add(1, e.Size)
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

// filesUsingPack lists the batch's files with a chunk in pack.
func filesUsingPack(jobs []fileJob, idx *Index, pack ID) []string {
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
