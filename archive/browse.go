package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// Browsing an archived snapshot without downloading it: its manifest as a
// stream (ls, diff), one file's bytes (cat).

// ManifestStream reads an archived node piece's manifest: its header at
// once, its entries with Next (io.EOF once the seal is proven). Only the
// manifest stream's chunks are fetched, never file data.
type ManifestStream struct {
	*manifest.Reader
	s *repo.StreamReader
}

// Close stops the stream.
func (m *ManifestStream) Close() { m.s.Close() }

// openManifest starts reading the manifest of snapshot id's piece of node.
// idx is from LoadIndex.
func (r *Repo) openManifest(ctx context.Context, idx *repo.Index, id, node string) (*ManifestStream, error) {
	s, err := r.ReadSnapshot(ctx, id, node)
	if err != nil {
		return nil, err
	}
	if err := s.CheckStreams(idx); err != nil {
		return nil, err
	}
	ms := r.OpenStream(ctx, idx, s.Key()+" (manifest stream)", s.Object().Manifest)
	mr, err := manifest.NewReader(ms)
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("%s: %w", s.Key(), err)
	}
	if err := s.Describes(mr.Header()); err != nil {
		ms.Close()
		return nil, err
	}
	return &ManifestStream{Reader: mr, s: ms}, nil
}

// cat writes the content of the file at path in snapshot id's piece of
// node to w, chunk by chunk as they arrive, each chunk checked against its
// id, and the whole against the manifest's BLAKE3 at the end: an error
// wrapping repo.ErrCorrupt then says w got bytes that are not the file's. The
// manifest is read only up to the file (entries are sorted by path).
func (r *Repo) cat(ctx context.Context, idx *repo.Index, id, node, path string, w io.Writer) (*manifest.Entry, error) {
	p, err := r.OpenPieceOf(ctx, idx, id, node)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	for {
		e, ids, err := p.Next()
		if err == io.EOF || (err == nil && string(e.Path) > path) {
			return nil, fmt.Errorf("%s is not in snapshot %s (node %s): %w", path, id, node, repo.ErrNotFound)
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
			b, err := r.FetchChunk(ctx, idx, cid)
			if err != nil {
				return nil, err
			}
			if _, err := out.Write(b); err != nil {
				return nil, err
			}
		}
		if sum := h.Sum(); sum != e.BLAKE3 {
			return nil, fmt.Errorf("%w: %s: the bytes written hash to %s, the manifest says %s", repo.ErrCorrupt, path, sum, e.BLAKE3)
		}
		return e, nil
	}
}

// ExtractResult reports an Extract. The JSON form is `download --target`'s.
type ExtractResult struct {
	ID            string  `json:"id"`
	Node          string  `json:"node"`
	Target        string  `json:"target"`
	Files         int64   `json:"files"`
	Dirs          int64   `json:"dirs"`
	Symlinks      int64   `json:"symlinks"`
	Bytes         int64   `json:"bytes"`
	ChunksFetched int64   `json:"chunksFetched"`
	DurationMs    float64 `json:"durationMs"`
}

// extract writes the entries of an archived snapshot that include selects
// (fstree.Selector rules; none: everything) into target, a directory that
// must not exist yet, fetching only the chunks of the selected files as a
// download does (merged range reads, each file proven against its BLAKE3
// as its chunks land; a failing file's chunks against their ids, to name
// the pack). It does not
// make a local snapshot, and it takes no lock of the data dir. The tree is
// built in a hidden directory beside target and renamed to target only
// when whole and the manifest's seal is proven.
func (r *Repo) extract(ctx context.Context, idx *repo.Index, id, node, target string, include []string, allowSetID bool) (*ExtractResult, error) {
	start := time.Now()
	x, err := fstree.NewExtraction(target, include)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	p, err := r.OpenPieceOf(ctx, idx, id, node)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var (
		chunks int64
		batch  jobBatch
		root   *fsutil.Dir
		mk     *fsutil.Maker
	)
	o := DownloadOptions{Workers: defaults.DownloadWorkers, Progress: NoProgress{}}
	flush := func() error {
		_, _, _, err := batch.fetch(ctx, r, idx, root, mk, o)
		return err
	}
	for {
		e, ids, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		err = x.Add(e, func(dst *fsutil.Dir, e *manifest.Entry) error {
			if err := r.gateSetID(id, e, allowSetID); err != nil {
				return err
			}
			if mk == nil {
				m, err := fsutil.NewMaker(dst)
				if err != nil {
					return err
				}
				root, mk = dst, m
			}
			chunks += int64(len(ids)) // ids: every chunk indexed, making e's size (CheckExtents)
			if batch.add(e, ids) {
				return flush()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if err := x.Publish(ctx, uint32(os.Geteuid()), uint32(os.Getegid()), 0o755); err != nil {
		return nil, fmt.Errorf("snapshot %s (node %s): %w", id, node, err)
	}
	return &ExtractResult{ID: id, Node: node, Target: x.Target, Files: x.Files, Dirs: x.Dirs, Symlinks: x.Symlinks,
		Bytes: x.Bytes, ChunksFetched: chunks, DurationMs: float64(time.Since(start).Microseconds()) / 1000}, nil
}
