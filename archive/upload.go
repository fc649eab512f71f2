package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/crash"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// ErrChanged is returned by Upload when a file of the snapshot no longer
// hashes to its manifest value (the snapshot changed after it was taken).
var ErrChanged = errors.New("snapshot file changed since it was taken")

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
}

type blobMsg struct {
	id   ID
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
	b := encodeBlob(blobBuf(len(chunk)), chunk)
	if r.enc == nil {
		return b
	}
	sealed := r.enc.seal(blobBuf(len(b)+r.enc.overhead()), b)
	blobBufs.Put(b[:0])
	return sealed
}

// Upload sends local snapshot id to the archive: packs, then an index, then
// the node's manifest, so a manifest exists only when everything it needs
// does. A file whose content an archived manifest already lists is not read;
// a file that is read must hash to its manifest value. Packs left by an
// interrupted upload are found and reused, so a rerun sends only the rest.
func Upload(ctx context.Context, r *Repo, l *snapshot.Layout, id string, o UploadOptions) (*UploadResult, error) {
	start := time.Now()
	if o.Workers <= 0 {
		o.Workers = par.DefaultWorkers() / 2
	}
	if o.Uploads <= 0 {
		o.Uploads = 1
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	m, manifestBytes, err := snapshot.ReadManifestBytes(l, id)
	if err != nil {
		return nil, err
	}
	tree, err := snapshot.OpenTree(l, id)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	res := &UploadResult{ID: id, Node: m.Node.ID, Files: m.Totals.Files}
	lock, err := r.Lock(ctx, LockShared, "upload "+id)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	idx, orphans, err := r.LoadIndex(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	res.OrphanPacksReused = len(orphans)
	known, err := r.knownContent(ctx, idx)
	if err != nil {
		return nil, err
	}

	// Which contents must be read: one file per distinct hash not archived.
	content := map[string][]ID{}
	var todo []*manifest.Entry
	var todoBytes int64
	scheduled := map[string]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != manifest.TypeFile {
			continue
		}
		if ids, ok := known[e.BLAKE3]; ok {
			content[e.BLAKE3] = ids
			res.FilesReused++
			continue
		}
		if !scheduled[e.BLAKE3] {
			scheduled[e.BLAKE3] = true
			todo = append(todo, e)
			todoBytes += e.Size
		}
	}
	o.Progress.Start("upload", int64(len(todo)), todoBytes)
	defer o.Progress.Done()

	var (
		mu       sync.Mutex // content, claimed, newPacks
		claimed  = map[ID]bool{}
		newPacks []packEntry
		read     atomic.Int64
		newCh    atomic.Int64
		reusedCh atomic.Int64
		packs    atomic.Int64
		sent     atomic.Int64
	)
	g, gctx := errgroup.WithContext(ctx)
	blobs := make(chan blobMsg, o.Workers)
	// One finished pack may wait while another is sent, so compression goes
	// on during a PUT; still only o.Uploads PUTs are ever in flight.
	puts := make(chan *packWriter, 1)
	// Readers: chunk, hash, compress.
	g.Go(func() error {
		defer close(blobs)
		return par.ForEach(gctx, len(todo), o.Workers, func(ctx context.Context, i int) error {
			e := todo[i]
			ids, n, err := r.chunkFile(ctx, tree, e, func(cid ID, chunk []byte) error {
				mu.Lock()
				dup := claimed[cid] || idx.Has(cid)
				claimed[cid] = true
				mu.Unlock()
				if dup {
					reusedCh.Add(1)
					return nil
				}
				newCh.Add(1)
				select {
				case blobs <- blobMsg{id: cid, blob: r.sealBlob(chunk), raw: len(chunk)}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			read.Add(n)
			if err != nil {
				return err
			}
			mu.Lock()
			content[e.BLAKE3] = ids
			mu.Unlock()
			o.Progress.Add(1, n)
			return nil
		})
	})
	// Packer: blobs into packs of about PackSize.
	g.Go(func() error {
		defer close(puts)
		newPack := func() *packWriter {
			buf := packBufs.Get().([]byte)
			if want := r.cfg.PackSize + r.cfg.Chunker.Max + 1<<16; cap(buf) < want {
				buf = make([]byte, 0, want) // a pack never grows past this
			}
			return &packWriter{buf: buf[:0]}
		}
		p := newPack()
		for b := range blobs {
			p.add(b.id, b.blob, b.raw)
			blobBufs.Put(b.blob[:0])
			if p.size() >= r.cfg.PackSize {
				select {
				case puts <- p:
				case <-gctx.Done():
					return gctx.Err()
				}
				p = newPack()
			}
		}
		if len(p.blobs) > 0 {
			select {
			case puts <- p:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	// Senders.
	for k := 0; k < o.Uploads; k++ {
		g.Go(func() error {
			for p := range puts {
				data, pid, refs := p.finish(r.enc)
				if err := r.st.Put(gctx, packKey(pid), data); err != nil {
					return fmt.Errorf("upload pack: %w", err)
				}
				sent.Add(int64(len(data)))
				packBufs.Put(data[:0])
				n := packs.Add(1)
				mu.Lock()
				newPacks = append(newPacks, packEntry{ID: pid, Size: int64(len(data)), Blobs: refs})
				mu.Unlock()
				crash.Point(fmt.Sprintf("upload.pack.%d", n))
			}
			return nil
		})
	}
	err = g.Wait()
	res.FilesRead, res.BytesRead = int64(len(todo)), read.Load()
	res.ChunksNew, res.ChunksReused = newCh.Load(), reusedCh.Load()
	res.PacksWritten, res.BytesSent = packs.Load(), sent.Load()
	if err != nil {
		return res, err
	}
	// Commit order: index (new packs and adopted orphans), then the manifest.
	if err := r.writeIndex(ctx, append(newPacks, orphans...)); err != nil {
		return res, fmt.Errorf("write index: %w", err)
	}
	crash.Point("upload.indexed")
	am, err := encodeArchivedManifest(r.enc, manifestBytes, content)
	if err != nil {
		return res, err
	}
	if err := r.st.Put(ctx, snapshotKey(id, m.Node.ID), am); err != nil {
		return res, fmt.Errorf("write manifest: %w", err)
	}
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// chunkFile reads one file of a snapshot, cutting it into chunks handed to
// fn, and checks that its BLAKE3 and size are the manifest's.
func (r *Repo) chunkFile(ctx context.Context, tree *fsutil.Dir, e *manifest.Entry, fn func(ID, []byte) error) ([]ID, int64, error) {
	f, _, err := tree.OpenRegular(string(e.Path))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", e.Path, err)
	}
	defer f.Close()
	c := newChunker(f, &r.gear, r.cfg.Chunker, chunkBufs.Get().([]byte))
	defer chunkBufs.Put(c.buf)
	h := blake3.New()
	var ids []ID
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, n, err
		}
		chunk, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, n, fmt.Errorf("read %s: %w", e.Path, err)
		}
		n += int64(len(chunk))
		h.Write(chunk)
		cid := r.enc.chunkID(chunk)
		ids = append(ids, cid)
		if err := fn(cid, chunk); err != nil {
			return nil, n, err
		}
	}
	if sum := fmt.Sprintf("%x", h.Sum(nil)); sum != e.BLAKE3 || n != e.Size {
		return nil, n, fmt.Errorf("%w: %s is %d bytes with BLAKE3 %s, the manifest says %d bytes, %s (verify the snapshot; take a new one)", ErrChanged, e.Path, n, sum, e.Size, e.BLAKE3)
	}
	return ids, n, nil
}

// knownContent gathers the chunk lists of every archived manifest whose
// chunks are all indexed: files with those contents need not be read.
func (r *Repo) knownContent(ctx context.Context, idx *Index) (map[string][]ID, error) {
	keys, err := r.snapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string][]ID{}
	for _, k := range keys {
		s, err := r.readSnapshotKey(ctx, k)
		if err != nil {
			continue // a damaged manifest only costs reuse; check reports it
		}
	next:
		for h, ids := range s.content {
			if _, ok := known[h]; ok {
				continue
			}
			for _, id := range ids {
				if !idx.Has(id) {
					continue next
				}
			}
			known[h] = ids
		}
	}
	return known, nil
}
