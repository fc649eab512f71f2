package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/manifest"
)

// Browsing an archived snapshot without downloading it: its manifest as a
// stream (ls, diff), one file's bytes (cat).

// ManifestStream reads an archived node piece's manifest: its header at
// once, its entries with Next (io.EOF once the seal is proven). Only the
// manifest stream's chunks are fetched, never file data.
type ManifestStream struct {
	*manifest.Reader
	s *streamReader
}

// Close stops the stream.
func (m *ManifestStream) Close() { m.s.Close() }

// OpenManifest starts reading the manifest of snapshot id's piece of node.
// idx is from LoadIndex.
func (r *Repo) OpenManifest(ctx context.Context, idx *Index, id, node string) (*ManifestStream, error) {
	s, err := r.readSnapshot(ctx, id, node)
	if err != nil {
		return nil, err
	}
	if err := s.checkStreams(idx); err != nil {
		return nil, err
	}
	ms := r.openStream(ctx, idx, s.key+" (manifest stream)", s.obj.Manifest)
	mr, err := manifest.NewReader(ms)
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("%s: %w", s.key, err)
	}
	h := mr.Header()
	if h.ID != s.ID || h.Node.ID != s.Node || h.Totals.Files != s.obj.Files || h.Totals.Bytes != s.obj.Bytes {
		ms.Close()
		return nil, fmt.Errorf("%w: %s describes %s/%s, its manifest is %s/%s", ErrCorrupt, s.key, s.ID, s.Node, h.ID, h.Node.ID)
	}
	return &ManifestStream{Reader: mr, s: ms}, nil
}

// Cat writes the content of the file at path in snapshot id's piece of
// node to w, chunk by chunk as they arrive, each chunk checked against its
// id, and the whole against the manifest's BLAKE3 at the end: an error
// wrapping ErrCorrupt then says w got bytes that are not the file's. The
// manifest is read only up to the file (entries are sorted by path).
func (r *Repo) Cat(ctx context.Context, idx *Index, id, node, path string, w io.Writer) (*manifest.Entry, error) {
	s, err := r.readSnapshot(ctx, id, node)
	if err != nil {
		return nil, err
	}
	p, err := r.openPiece(ctx, idx, s)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	for {
		e, ids, err := p.next()
		if err == io.EOF || (err == nil && string(e.Path) > path) {
			return nil, fmt.Errorf("%s is not in snapshot %s (node %s): %w", path, id, node, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		if string(e.Path) != path {
			continue
		}
		if e.Type != manifest.TypeFile {
			return nil, fmt.Errorf("%w: %s is a %s in snapshot %s, not a file", errs.ErrInvalid, path, e.Type, id)
		}
		h := manifest.NewHasher()
		out := io.MultiWriter(w, h)
		for _, cid := range ids {
			b, err := r.fetchChunk(ctx, idx, cid)
			if err != nil {
				return nil, err
			}
			if _, err := out.Write(b); err != nil {
				return nil, err
			}
		}
		if sum := h.Sum(); sum != e.BLAKE3 {
			return nil, fmt.Errorf("%w: %s: the bytes written hash to %s, the manifest says %s", ErrCorrupt, path, sum, e.BLAKE3)
		}
		return e, nil
	}
}
