package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// ErrChanged is returned by Upload when a file of the snapshot no longer
// hashes to its manifest value (the snapshot changed after it was taken).
var ErrChanged = errs.New(errs.VerifyFailed, "snapshot file changed since it was taken")

// UploadOptions tune Upload.
type UploadOptions struct {
	// Workers bounds files read, chunked, hashed and compressed at once; 0
	// means the number of CPUs.
	Workers int
	// Uploads bounds packs being sent at once; 0 means 1, so an interrupted
	// upload has at most one pack's worth of data in flight to send again.
	Uploads  int
	Progress Progress
	Logger   *slog.Logger
}

// UploadResult reports an upload. The JSON form is the CLI's contract.
type UploadResult struct {
	ID                string  `json:"id"`
	Node              string  `json:"node"`
	Files             int64   `json:"files"`
	FilesRead         int64   `json:"filesRead"`
	FilesReused       int64   `json:"filesReused"` // content already archived: not read at all
	BytesRead         int64   `json:"bytesRead"`
	ChunksNew         int64   `json:"chunksNew"`
	ChunksReused      int64   `json:"chunksReused"`
	PacksWritten      int64   `json:"packsWritten"`
	BytesSent         int64   `json:"bytesSent"` // pack bytes put
	OrphanPacksReused int     `json:"orphanPacksReused"`
	DurationMs        float64 `json:"durationMs"`
	// Retention is set for an archive with an object lock.
	Retention *RetentionReport `json:"retention,omitempty"`
}

type blobMsg struct {
	id   repo.ID
	blob []byte
	raw  int
}

// Buffers are pooled: at a GB/s, fresh multi-MiB allocations cost more in
// page faults and GC than the compression itself.
var (
	chunkBufs = sync.Pool{New: func() any { return []byte(nil) }}
	blobBufs  = sync.Pool{New: func() any { return []byte(nil) }}
	packBufs  = sync.Pool{New: func() any { return []byte(nil) }}
)

// blobBuf returns a pooled buffer that holds a blob of an n-byte chunk.
func blobBuf(n int) []byte {
	b := blobBufs.Get().([]byte)
	if cap(b) < n+1024 {
		b = make([]byte, 0, n+n/64+1024) // zstd's worst case stays below this
	}
	return b[:0]
}

// sealBlob compresses a chunk into a blob and, in an encrypted archive,
// seals it (fresh nonce), in pooled buffers.
func (r *Repo) sealBlob(chunk []byte) []byte {
	b := repo.EncodeBlob(blobBuf(len(chunk)), chunk)
	if !r.Encrypted() {
		return b
	}
	sealed := r.Seal(blobBuf(len(b)+r.Overhead()), b)
	blobBufs.Put(b[:0])
	return sealed
}

// Upload sends local snapshot id to the archive. Its manifest is proven
// first. Then its files are read (in parallel, their content records kept
// in manifest order), chunked, and every chunk the archive lacks goes into
// packs; the content records and the manifest itself go the same way, as
// two streams. Then the index objects, then the small snapshot object that
// names the streams: a snapshot exists in the archive only when everything
// it needs does. Finally everything written is read back (the snapshot
// object, the index objects, both streams in full, zipped and checked as a
// download would): an upload never succeeds with a snapshot that cannot be
// read. A file whose path and content the node's previous archived
// snapshot had is not read (its chunk list is reused); a file that is read
// must hash to its manifest value. Packs left by an interrupted upload are
// found and reused. Memory does not grow with the number of files.
func Upload(ctx context.Context, r *Repo, l Local, id string, o UploadOptions) (*UploadResult, error) {
	start := time.Now()
	if o.Workers <= 0 {
		o.Workers = defaults.Workers() / 2
	}
	if o.Uploads <= 0 {
		o.Uploads = 1
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	mf, err := l.OpenManifest(id)
	if err != nil {
		return nil, err
	}
	defer mf.Close()
	// The header only: the records pass reads every entry and proves the
	// seal before anything is committed (a third full read of a million
	// entries cost more than the index).
	hdr, err := mf.Header()
	if err != nil {
		return nil, err
	}
	tree, err := l.OpenTree(id)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	res := &UploadResult{ID: id, Node: hdr.Node.ID, Files: hdr.Totals.Files}
	lock, err := r.Lock(ctx, repo.LockShared, "upload "+id)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	idx, orphans, err := r.LoadIndex(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	res.OrphanPacksReused = len(orphans)
	prev := r.previousPiece(ctx, idx, hdr.Node.ID, id, o.Logger)

	o.Progress.Start("upload", hdr.Totals.Files, hdr.Totals.Bytes)
	defer o.Progress.Done()
	u := r.newUploader(ctx, idx, lock, o, res)
	content, cerr := u.contentStream(tree, mf, prev)
	var mdesc repo.StreamDesc
	if cerr == nil {
		raw, err := mf.Raw()
		if err == nil {
			mdesc, err = u.storeStream(raw)
		}
		cerr = err
	}
	ferr := u.finish()
	if err := errors.Join(cerr, ferr); err != nil {
		return res, err
	}
	// Commit order: index objects (the last new packs and adopted
	// orphans; earlier ones were written as they filled), then the
	// snapshot object; each only while the lock is still ours.
	if err := u.flushIndex(ctx, append(u.newPacks, orphans...)); err != nil {
		return res, err
	}
	crash.Point("upload.indexed")
	if err := lock.Check(ctx); err != nil {
		return res, err
	}
	if err := r.CheckConfig(ctx); err != nil {
		return res, err
	}
	if r.Config().ObjectLock != nil {
		if res.Retention, err = r.protect(ctx, u.usedPacks, time.Now()); err != nil {
			return res, fmt.Errorf("keep the snapshot's objects locked: %w", err)
		}
	}
	obj := &repo.SnapshotObject{ID: id, Node: hdr.Node.ID, CreatedAt: hdr.CreatedAt, Files: hdr.Totals.Files, Bytes: hdr.Totals.Bytes,
		PotentiallyInconsistent: hdr.PotentiallyInconsistent, Manifest: mdesc, Content: content}
	b, err := r.EncodeSnapshot(obj)
	if err != nil {
		return res, err
	}
	if err := r.Store().Put(ctx, repo.SnapshotKey(id, hdr.Node.ID), b); err != nil {
		return res, fmt.Errorf("write manifest: %w", err)
	}
	if err := r.readBack(ctx, idx, u.indexKeys, id, hdr.Node.ID); err != nil {
		return res, fmt.Errorf("upload of %s wrote a snapshot that does not read back: %w", id, err)
	}
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// readBack reads what an upload wrote: the index objects, the snapshot
// object, and its two streams in full, zipped as a download reads them.
func (r *Repo) readBack(ctx context.Context, idx *repo.Index, keys []string, id, node string) error {
	for _, k := range keys {
		if o := r.ReadIndex(ctx, k); o.Err != nil || o.Misnamed {
			return fmt.Errorf("index object %s: %v (misnamed: %v)", k, o.Err, o.Misnamed)
		}
	}
	s, err := r.ReadSnapshot(ctx, id, node)
	if err != nil {
		return err
	}
	return r.EachFile(ctx, idx, s, func([]repo.ID) error { return nil })
}

// previousPiece finds the node's newest archived piece (id's own, when it
// was uploaded before) whose streams are indexed, for reusing chunk lists;
// nil when none.
func (r *Repo) previousPiece(ctx context.Context, idx *repo.Index, node, id string, log *slog.Logger) *repo.RemoteSnapshot {
	keys, err := r.SnapshotKeys(ctx)
	if err != nil {
		return nil
	}
	for i := len(keys) - 1; i >= 0; i-- {
		s, err := r.ReadSnapshotKey(ctx, keys[i])
		if err != nil || s.Node != node || s.CheckStreams(idx) != nil {
			continue
		}
		return s
	}
	return nil
}

// uploader is one upload's pipeline: producers hand chunks to add, which
// drops those the archive or this upload already holds; a packer fills
// packs; senders put them. newPacks lists the packs stored and not yet
// indexed: once they hold a full index object's blobs, the index object
// is written and they move into idx (flushIndex), so what an upload holds
// per new chunk is idx's 48 bytes, not a growing list and set.
type uploader struct {
	r       *Repo
	idx     *repo.Index
	lock    *repo.ArchiveLock
	o       UploadOptions
	res     *UploadResult
	ctx     context.Context
	g       *errgroup.Group
	blobs   chan blobMsg
	mu      sync.Mutex // claimed, newPacks, newBlobs, indexKeys, usedPacks
	claimed map[repo.ID]struct{}
	// usedPacks, with an object lock only, gathers the packs of earlier
	// uploads the snapshot needs (their retention may need extending).
	usedPacks map[repo.ID]struct{}
	newPacks  []repo.PackEntry
	newBlobs  int
	indexKeys []string // index objects written
	newCh     atomic.Int64
	reusedCh  atomic.Int64
	packs     atomic.Int64
	sent      atomic.Int64
	read      atomic.Int64
	readN     atomic.Int64
	reused    atomic.Int64
}

func (r *Repo) newUploader(ctx context.Context, idx *repo.Index, lock *repo.ArchiveLock, o UploadOptions, res *UploadResult) *uploader {
	g, gctx := errgroup.WithContext(ctx)
	u := &uploader{r: r, idx: idx, lock: lock, o: o, res: res, ctx: gctx, g: g, blobs: make(chan blobMsg, o.Workers), claimed: map[repo.ID]struct{}{}}
	if r.Config().ObjectLock != nil {
		u.usedPacks = map[repo.ID]struct{}{}
	}
	// One finished pack may wait while another is sent, so compression goes
	// on during a PUT; still only o.Uploads PUTs are ever in flight.
	puts := make(chan *repo.PackWriter, 1)
	g.Go(func() error { return par.Safely(func() error { return u.pack(puts) }) })
	var senders sync.WaitGroup
	for range o.Uploads {
		senders.Add(1)
		g.Go(func() error {
			defer senders.Done()
			return par.Safely(func() error { return u.send(puts) })
		})
	}
	return u
}

// add hands one chunk to the pipeline unless the archive or this upload
// already holds it, and returns its id.
func (u *uploader) add(chunk []byte) (repo.ID, error) {
	cid := u.r.ChunkID(chunk)
	u.mu.Lock()
	_, dup := u.claimed[cid]
	if !dup {
		var loc repo.Location
		loc, dup = u.idx.Lookup(cid)
		if dup && u.usedPacks != nil {
			u.usedPacks[loc.Pack] = struct{}{}
		}
	}
	if !dup {
		u.claimed[cid] = struct{}{}
	}
	u.mu.Unlock()
	if dup {
		u.reusedCh.Add(1)
		return cid, nil
	}
	u.newCh.Add(1)
	select {
	case u.blobs <- blobMsg{id: cid, blob: u.r.sealBlob(chunk), raw: len(chunk)}:
		return cid, nil
	case <-u.ctx.Done():
		return cid, u.ctx.Err()
	}
}

// pack fills packs of about PackSize.
func (u *uploader) pack(puts chan<- *repo.PackWriter) error {
	defer close(puts)
	r := u.r
	newPack := func() *repo.PackWriter {
		buf := packBufs.Get().([]byte)
		if want := r.Config().PackSize + r.MaxBlob() + 1<<16; cap(buf) < want {
			buf = make([]byte, 0, want) // a pack never grows past this
		}
		return repo.NewPackWriter(buf)
	}
	p := newPack()
	for b := range u.blobs {
		p.Add(b.id, b.blob, b.raw)
		blobBufs.Put(b.blob[:0])
		if p.Size() >= r.Config().PackSize {
			select {
			case puts <- p:
			case <-u.ctx.Done():
				return u.ctx.Err()
			}
			p = newPack()
		}
	}
	if len(p.Blobs()) > 0 {
		select {
		case puts <- p:
		case <-u.ctx.Done():
			return u.ctx.Err()
		}
	}
	return nil
}

// send puts packs.
func (u *uploader) send(puts <-chan *repo.PackWriter) error {
	for p := range puts {
		data, pid, refs := u.r.FinishPack(p)
		if err := u.r.Store().Put(u.ctx, repo.PackKey(pid), data); err != nil {
			return fmt.Errorf("upload pack: %w", err)
		}
		u.sent.Add(int64(len(data)))
		packBufs.Put(data[:0])
		n := u.packs.Add(1)
		u.mu.Lock()
		var full []repo.PackEntry // the packs of one full index object
		if u.newBlobs+len(refs) > indexFlushBlobs && len(u.newPacks) > 0 {
			full, u.newPacks, u.newBlobs = u.newPacks, nil, 0
		}
		u.newPacks = append(u.newPacks, repo.PackEntry{ID: pid, Size: int64(len(data)), Blobs: refs})
		u.newBlobs += len(refs)
		u.mu.Unlock()
		crash.Point(fmt.Sprintf("upload.pack.%d", n))
		if full != nil {
			if err := u.flushIndex(u.ctx, full); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexFlushBlobs is how many new blobs an upload gathers before it writes
// their index object (a variable for tests).
var indexFlushBlobs = repo.MaxIndexBlobs

// finish waits for every pack to be stored and fills in the result.
func (u *uploader) finish() error {
	close(u.blobs)
	err := u.g.Wait()
	res := u.res
	res.FilesRead, res.BytesRead, res.FilesReused = u.readN.Load(), u.read.Load(), u.reused.Load()
	res.ChunksNew, res.ChunksReused = u.newCh.Load(), u.reusedCh.Load()
	res.PacksWritten, res.BytesSent = u.packs.Load(), u.sent.Load()
	return err
}

// reusing notes the packs of a file's chunk list taken from the previous
// snapshot (with an object lock only).
func (u *uploader) reusing(ids []repo.ID) {
	if u.usedPacks == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, id := range ids {
		if loc, ok := u.idx.Lookup(id); ok {
			u.usedPacks[loc.Pack] = struct{}{}
		}
	}
}

// chunkFile reads one file of a snapshot, cutting it into chunks handed to
// the pipeline, and checks that its BLAKE3 and size are the manifest's.
func (u *uploader) chunkFile(tree *fsutil.Dir, e *manifest.Entry, ids []repo.ID) ([]repo.ID, error) {
	f, _, err := tree.OpenRegular(string(e.Path))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", e.Path, err)
	}
	defer f.Close()
	c := u.r.NewChunker(f, chunkBufs.Get().([]byte))
	defer chunkBufs.Put(c.Buf())
	h := blake3.New()
	var n int64
	for {
		if err := u.ctx.Err(); err != nil {
			return nil, err
		}
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Path, err)
		}
		n += int64(len(chunk))
		h.Write(chunk)
		cid, err := u.add(chunk)
		if err != nil {
			return nil, err
		}
		ids = append(ids, cid)
	}
	u.read.Add(n)
	if sum := hex.EncodeToString(h.Sum(nil)); sum != e.BLAKE3 || n != e.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes with BLAKE3 %s, the manifest says %d bytes, %s (verify the snapshot; take a new one)", ErrChanged, e.Path, n, sum, e.Size, e.BLAKE3)
	}
	return ids, nil
}
