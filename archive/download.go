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
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Node is whose piece to download; empty means defaults.NodeID.
	Node     string
	Workers  int // files finished at once; 0 means defaults.DownloadWorkers
	Progress Progress
	Logger   *slog.Logger
	// AllowSetID makes a setuid or setgid file named by a snapshot of an
	// unencrypted archive as its manifest says. Without it such a download
	// is refused before anything is written: an unencrypted archive cannot
	// prove who wrote its manifests, and a root download would make the
	// setuid file whoever could write the bucket asked for. An encrypted
	// archive's manifests are authenticated by its key: its setuid files
	// are made as recorded.
	AllowSetID bool
}

// ErrUnauthenticatedSetID is returned for a download of setuid or setgid
// files from an unencrypted archive without DownloadOptions.AllowSetID.
var ErrUnauthenticatedSetID = errs.New(errs.VerifyFailed, "setuid or setgid files from an archive that cannot prove who wrote them")

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

// Download materialises snapshot id (one node's piece) into the backups
// dir through Local.Import: staging, then one atomic publish. The
// manifest stream is fetched first and proven; then the content records
// are fetched and checked against it (every chunk indexed, every file's
// chunks making exactly its size) before any file is written; then the
// files are filled batch by batch, every file checked against its BLAKE3
// as its chunks land (a failing file's chunks against their ids, to name
// the pack). A file that the newest local snapshot
// holds at the same path with the same content is taken from there after a
// re-hash. Memory does not grow with the number of files. Any failure
// leaves nothing.
func Download(ctx context.Context, r *Repo, l Local, id string, o DownloadOptions) (*DownloadResult, error) {
	start := time.Now()
	src, done, err := openSource(ctx, r, l, id, &o)
	if err != nil {
		return nil, err
	}
	defer done()
	rs := src.rs
	if err := checkSpace(id, filepath.Dir(l.SnapshotDir(id)), rs.Bytes, src.localMF); err != nil {
		return nil, err
	}
	res := &DownloadResult{ID: id, Node: o.Node, Path: l.SnapshotDir(id), Files: rs.Files, Bytes: rs.Bytes}
	o.Progress.Start("download", rs.Files, rs.Bytes)
	defer o.Progress.Done()
	origin, _ := json.Marshal(map[string]string{"remote": r.Store().String(), "downloadedAt": time.Now().UTC().Format(time.RFC3339)})
	if err := l.Import(ctx, id, origin, src, o.Logger); err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return nil, fmt.Errorf("download %s into %s: the filesystem is full; nothing was published (the staging was removed): %w", id, filepath.Dir(l.SnapshotDir(id)), err)
		}
		return nil, err
	}
	res.FilesFetched, res.FilesLocal = src.fetched.Load(), src.localN.Load()
	res.BytesFetched, res.RequestsFetched = src.bytes.Load(), src.reqs.Load()
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// Source is snapshot id (one node's piece, o.Node) of the archive as an
// fstree.Source: its manifest, then its tree, built with the checks of a
// download (every file against its BLAKE3 as its chunks land),
// into a directory the caller gives. snapshot.RestoreOptions.From takes
// it: a restore straight from the archive, with no local snapshot kept.
// It holds the archive's shared lock until done is called (once or more);
// o.Progress follows the files ("download") and ends with done.
func Source(ctx context.Context, r *Repo, l Local, id string, o DownloadOptions) (src fstree.Source, done func(), err error) {
	s, closeS, err := openSource(ctx, r, l, id, &o)
	if err != nil {
		return nil, nil, err
	}
	o.Progress.Start("download", s.rs.Files, s.rs.Bytes)
	var once sync.Once
	return s, func() { once.Do(func() { o.Progress.Done(); closeS() }) }, nil
}

// openSource is the start of a download: the archive's shared lock, the
// snapshot object and the index, and the newest local snapshot (unchanged
// files are taken from it). o's defaults are filled in.
func openSource(ctx context.Context, r *Repo, l Local, id string, o *DownloadOptions) (src *downloadSource, done func(), err error) {
	if o.Node == "" {
		o.Node = defaults.NodeID
	}
	if o.Workers <= 0 {
		o.Workers = defaults.DownloadWorkers
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	// A shared lock keeps gc away. Read-only credentials (common for
	// restores) cannot write one: the download then goes on without it,
	// which is safe because every chunk and file is verified (a gc running
	// meanwhile can only make it fail, clearly). A gc that holds the archive
	// is still refused.
	lock, err := r.Lock(ctx, repo.LockShared, "download "+id)
	switch {
	case errors.Is(err, repo.ErrLocked):
		return nil, nil, err
	case err != nil:
		others, lerr := r.LiveLocks(ctx, "")
		if lerr != nil {
			return nil, nil, lerr
		}
		for _, l := range others {
			if l.Kind == repo.LockExclusive {
				return nil, nil, r.Conflict(l)
			}
		}
		logger(o.Logger).Warn("downloading without a lock (cannot write one)", "err", err)
	default:
		closers = append(closers, func() { lock.Release() })
	}
	rs, err := r.ReadSnapshot(ctx, id, o.Node)
	if err != nil {
		return nil, nil, err
	}
	idx, _, err := r.LoadIndex(ctx, false)
	if err != nil {
		return nil, nil, fmt.Errorf("read index: %w", err)
	}
	if err := rs.CheckStreams(idx); err != nil {
		return nil, nil, fmt.Errorf("%w (run `hotsnap archive check`)", err)
	}
	localTree, localMF, err := l.OpenLatest(ctx)
	if err != nil {
		return nil, nil, err
	}
	if localTree != nil {
		closers = append(closers, func() { localTree.Close(); localMF.Close() })
	}
	return &downloadSource{r: r, idx: idx, rs: rs, localTree: localTree, localMF: localMF, o: *o}, closeAll, nil
}

// downloadSource is what Import publishes for a download.
type downloadSource struct {
	r   *Repo
	idx *repo.Index
	rs  *repo.RemoteSnapshot
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
	s := d.r.OpenStream(ctx, d.idx, d.rs.Key()+" (manifest stream)", d.rs.Object().Manifest)
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
	if err := d.rs.Describes(h); err != nil {
		return err
	}
	records, err := d.fetchRecords(ctx, root, mf)
	if err != nil {
		return err
	}
	defer records.Close()
	mk, err := fsutil.NewMaker(root)
	if err != nil {
		return err
	}
	f := &filler{d: d, root: root, mk: mk, groups: map[int]string{}, wb: fsutil.NewWriteback(root)}
	defer f.wb.Wait()
	if d.localMF != nil {
		if f.localR, err = d.localMF.Reader(); err != nil {
			f.localR = nil
		}
	}
	mr, err := mf.Reader()
	if err != nil {
		return err
	}
	rr := repo.NewRecordReader(records, d.r.Config().Chunker.Min)
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
		if err := fstree.MakeDirOrSymlink(root, e); err != nil {
			return err
		}
		if e.Type != manifest.TypeFile {
			continue
		}
		ids, err := rr.Next(e, nil)
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
	s := d.r.OpenStream(ctx, d.idx, d.rs.Key()+" (content stream)", d.rs.Object().Content)
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
	rr := repo.NewRecordReader(bufio.NewReader(tmp), d.r.Config().Chunker.Min)
	var buf []repo.ID
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
		if err := d.r.gateSetID(d.rs.ID, e, d.o.AllowSetID); err != nil {
			return err
		}
		if buf, err = rr.Next(e, buf); err != nil {
			return fmt.Errorf("%s: %w", d.rs.Key(), err)
		}
		if err := repo.CheckExtents(d.idx, e, buf); err != nil {
			if errors.Is(err, repo.ErrNotIndexed) {
				if len(missing) < 10 {
					missing = append(missing, string(e.Path))
				}
				continue
			}
			return fmt.Errorf("%s: %w", d.rs.Key(), err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: file(s) of %s need chunks the archive's index does not hold: %s (run `hotsnap archive check`)", repo.ErrCorrupt, d.rs.ID, listSome(missing))
	}
	if err := rr.End(); err != nil {
		return fmt.Errorf("%s: %w", d.rs.Key(), err)
	}
	return nil
}

// gateSetID refuses a setuid or setgid file e of snapshot id when the
// archive is not encrypted (so not authenticated) and allow is not set
// (DownloadOptions.AllowSetID).
func (r *Repo) gateSetID(id string, e *manifest.Entry, allow bool) error {
	if allow || r.Config().Encryption != nil || e.Type != manifest.TypeFile || e.Mode&0o6000 == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s names %s, mode %04o, owner %d: an unencrypted archive cannot prove who wrote its manifests; if only you can write %s, download again with --allow-setid; nothing was written",
		ErrUnauthenticatedSetID, id, fsutil.Quote(string(e.Path)), e.Mode, e.UID, r.Store())
}

// checkSpace refuses a download of snapshot id (bytes in all) into dir when
// its filesystem has less free space than the download may write: the
// snapshot's bytes, less what the newest local snapshot (local, when not
// nil) could lend by link. Checked before anything is written.
func checkSpace(id, dir string, bytes int64, local *manifest.File) error {
	need := bytes
	if local != nil {
		if h, err := local.Header(); err == nil {
			need = max(bytes-h.Totals.Bytes, 0)
		}
	}
	var fs unix.Statfs_t
	for d := dir; unix.Statfs(d, &fs) != nil; d = filepath.Dir(d) { // the backups dir may not exist yet
		if d == "/" || d == "." {
			return nil // cannot tell: the write itself will say
		}
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	if free < need {
		return fmt.Errorf("%w: download %s needs up to %d bytes in %s (the snapshot's %d, less what the newest local snapshot may lend) and its filesystem has %d free; free space or delete snapshots; nothing was written",
			fsutil.ErrNoSpace, id, need, dir, bytes, free)
	}
	return nil
}
