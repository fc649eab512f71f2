package archive

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/zeebo/blake3"

	"github.com/hotsnap/hotsnap/archive/repo"
)

// What an upload stores besides packs: the manifest and content streams,
// and index objects as packs fill.

// flushIndex writes index objects for packs already stored (only while
// the lock is still ours), then moves their chunks from the claimed set
// into idx. An upload that fails later leaves indexed packs no snapshot
// uses: the next upload dedups against them, gc removes what stays unused.
func (u *uploader) flushIndex(ctx context.Context, packs []repo.PackEntry) error {
	if len(packs) == 0 {
		return nil
	}
	if err := u.lock.Check(ctx); err != nil {
		return err
	}
	keys, err := u.r.WriteIndex(ctx, packs)
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	for _, p := range packs {
		u.idx.AddPack(p.ID, p.Size, p.Blobs)
	}
	u.mu.Lock()
	u.indexKeys = append(u.indexKeys, keys...)
	for _, p := range packs {
		for _, b := range p.Blobs {
			delete(u.claimed, b.ID)
		}
	}
	u.mu.Unlock()
	return nil
}

// storeStream chunks a byte stream into the pipeline and describes it.
func (u *uploader) storeStream(rd io.Reader) (repo.StreamDesc, error) {
	c := u.r.NewChunker(rd, chunkBufs.Get().([]byte))
	defer chunkBufs.Put(c.Buf())
	h := blake3.New()
	d := repo.StreamDesc{Chunks: []string{}}
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d, err
		}
		h.Write(chunk)
		d.Size += int64(len(chunk))
		cid, err := u.add(chunk)
		if err != nil {
			return d, err
		}
		d.Chunks = append(d.Chunks, cid.String())
	}
	d.BLAKE3 = hex.EncodeToString(h.Sum(nil))
	return d, nil
}
