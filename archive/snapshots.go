package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/manifest"
)

// snapshotFormat is the format of snapshots/<id>/<node>.manifest objects.
const snapshotFormat = 2

// snapshotObject is snapshots/<id>/<node>.manifest: small, whatever the
// snapshot's size. It names the two streams that hold the node's piece
// (its manifest.json byte for byte, and its content records) and repeats
// the manifest's header fields a listing needs, which a download checks
// against the manifest itself. Sealed in an encrypted archive.
type snapshotObject struct {
	Format                  int        `json:"format"`
	KeyID                   string     `json:"keyId,omitempty"` // the archive key's id, when encrypted
	ID                      string     `json:"id"`
	Node                    string     `json:"node"`
	CreatedAt               time.Time  `json:"createdAt"`
	Files                   int64      `json:"files"`
	Bytes                   int64      `json:"bytes"`
	PotentiallyInconsistent bool       `json:"potentiallyInconsistent"`
	Manifest                streamDesc `json:"manifest"`
	Content                 streamDesc `json:"content"`
}

var nodePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func snapshotKey(id, node string) string { return "snapshots/" + id + "/" + node + ".manifest" }

// RemoteSnapshot is one node's piece of a snapshot in the archive.
type RemoteSnapshot struct {
	ID        string    `json:"id"`
	Node      string    `json:"node"`
	CreatedAt time.Time `json:"createdAt"`
	Files     int64     `json:"files"`
	Bytes     int64     `json:"bytes"`
	// PotentiallyInconsistent is copied from the manifest.
	PotentiallyInconsistent bool   `json:"potentiallyInconsistent"`
	Error                   string `json:"error,omitempty"`

	key string
	obj *snapshotObject
}

func (r *Repo) encodeSnapshot(o *snapshotObject) ([]byte, error) {
	o.Format = snapshotFormat
	if r.enc != nil {
		o.KeyID = r.enc.keyID
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	return r.enc.seal(nil, b), nil
}

// decodeSnapshot opens and strictly parses a snapshot object, bounding its
// streams' sizes and chunk counts.
func (r *Repo) decodeSnapshot(b []byte) (*snapshotObject, error) {
	plain, err := r.enc.open(b)
	if err != nil {
		return nil, err
	}
	var o snapshotObject
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || dec.More() {
		if err == nil {
			err = errors.New("trailing data")
		}
		return nil, fmt.Errorf("%w: snapshot object: %v", ErrCorrupt, err)
	}
	switch {
	case o.Format != snapshotFormat:
		return nil, fmt.Errorf("%w: snapshot object format %d (this hotsnap reads %d)", ErrCorrupt, o.Format, snapshotFormat)
	case r.enc != nil && o.KeyID != r.enc.keyID:
		return nil, fmt.Errorf("%w: snapshot object names key %q, the archive's is %q", ErrCorrupt, o.KeyID, r.enc.keyID)
	case !manifest.IDPattern.MatchString(o.ID) || !nodePattern.MatchString(o.Node):
		return nil, fmt.Errorf("%w: snapshot object of id %q, node %q", ErrCorrupt, o.ID, o.Node)
	}
	if err := o.Manifest.check(r.cfg.Chunker.Max, manifest.MaxSize); err != nil {
		return nil, fmt.Errorf("manifest stream: %w", err)
	}
	if err := o.Content.check(r.cfg.Chunker.Max, maxStreamSize); err != nil {
		return nil, fmt.Errorf("content stream: %w", err)
	}
	return &o, nil
}

// snapshotKeys lists every snapshots/<id>/<node>.manifest key.
func (r *Repo) snapshotKeys(ctx context.Context) ([]string, error) {
	var keys []string
	err := r.st.List(ctx, "snapshots/", func(i store.Info) error {
		if strings.HasSuffix(i.Key, ".manifest") {
			keys = append(keys, i.Key)
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// List returns every node piece of every snapshot in the archive, oldest
// first, from the small snapshot objects alone.
func (r *Repo) List(ctx context.Context) ([]RemoteSnapshot, error) {
	keys, err := r.snapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RemoteSnapshot, 0, len(keys))
	for _, k := range keys {
		s, err := r.readSnapshotKey(ctx, k)
		if err != nil {
			parts := strings.Split(k, "/")
			out = append(out, RemoteSnapshot{ID: parts[1], Node: strings.TrimSuffix(parts[len(parts)-1], ".manifest"), Error: err.Error()})
			continue
		}
		out = append(out, *s)
	}
	return out, nil
}

func (r *Repo) readSnapshotKey(ctx context.Context, key string) (*RemoteSnapshot, error) {
	b, err := r.st.Get(ctx, key, maxSnapshotObject)
	if err != nil {
		return nil, err
	}
	o, err := r.decodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if snapshotKey(o.ID, o.Node) != key {
		return nil, fmt.Errorf("%w: %s holds the manifest of %s/%s", ErrCorrupt, key, o.ID, o.Node)
	}
	return &RemoteSnapshot{ID: o.ID, Node: o.Node, CreatedAt: o.CreatedAt, Files: o.Files, Bytes: o.Bytes,
		PotentiallyInconsistent: o.PotentiallyInconsistent, key: key, obj: o}, nil
}

// readSnapshot reads one node's piece; ErrNotFound names the nodes present.
func (r *Repo) readSnapshot(ctx context.Context, id, node string) (*RemoteSnapshot, error) {
	if !manifest.IDPattern.MatchString(id) || !nodePattern.MatchString(node) {
		return nil, fmt.Errorf("bad snapshot id %q or node %q", id, node)
	}
	s, err := r.readSnapshotKey(ctx, snapshotKey(id, node))
	if errors.Is(err, store.ErrNotFound) {
		var nodes []string
		r.st.List(ctx, "snapshots/"+id+"/", func(i store.Info) error {
			nodes = append(nodes, strings.TrimSuffix(i.Key[strings.LastIndexByte(i.Key, '/')+1:], ".manifest"))
			return nil
		})
		if len(nodes) > 0 {
			return nil, fmt.Errorf("snapshot %s has no piece of node %q (nodes: %s): %w", id, node, strings.Join(nodes, ", "), ErrNotFound)
		}
		return nil, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	}
	return s, err
}

// checkStreams requires every chunk of a snapshot's two streams to be
// indexed.
func (s *RemoteSnapshot) checkStreams(idx *Index) error {
	for _, d := range []*streamDesc{&s.obj.Manifest, &s.obj.Content} {
		for _, id := range d.ids() {
			if !idx.Has(id) {
				return fmt.Errorf("%w: %s needs chunk %s, which %w", ErrCorrupt, s.key, id, errNotIndexed)
			}
		}
	}
	return nil
}

// pieceReader reads a node piece's manifest and content records together:
// each file entry comes with its chunks, checked to make exactly the file.
type pieceReader struct {
	s       *RemoteSnapshot
	ms, cs  *streamReader
	mr      *manifest.Reader
	rr      *recordReader
	idx     *Index
	buf     []ID
	entries int
}

// eachFile reads s to its end (both streams, every check of a piece
// reader), calling fn with each file entry's chunk ids.
func (r *Repo) eachFile(ctx context.Context, idx *Index, s *RemoteSnapshot, fn func(ids []ID) error) error {
	p, err := r.openPiece(ctx, idx, s)
	if err != nil {
		return err
	}
	defer p.Close()
	for {
		_, ids, err := p.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(ids); err != nil {
			return err
		}
	}
}

// openPieceOf reads the snapshot object of id's piece of node and starts
// reading the piece (openPiece).
func (r *Repo) openPieceOf(ctx context.Context, idx *Index, id, node string) (*pieceReader, error) {
	s, err := r.readSnapshot(ctx, id, node)
	if err != nil {
		return nil, err
	}
	return r.openPiece(ctx, idx, s)
}

// openPiece starts reading s: its manifest must be the one the snapshot
// object describes (id, node, totals).
func (r *Repo) openPiece(ctx context.Context, idx *Index, s *RemoteSnapshot) (*pieceReader, error) {
	if err := s.checkStreams(idx); err != nil {
		return nil, err
	}
	p := &pieceReader{s: s, idx: idx}
	p.ms = r.openStream(ctx, idx, s.key+" (manifest stream)", s.obj.Manifest)
	p.cs = r.openStream(ctx, idx, s.key+" (content stream)", s.obj.Content)
	mr, err := manifest.NewReader(p.ms)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", s.key, err)
	}
	if err := s.describes(mr.Header()); err != nil {
		p.Close()
		return nil, err
	}
	p.mr = mr
	p.rr = newRecordReader(p.cs, r.cfg.Chunker.Min)
	return p, nil
}

// describes requires the manifest header h to be the one the snapshot
// object describes: its id, node and totals.
func (s *RemoteSnapshot) describes(h *manifest.Manifest) error {
	if h.ID != s.ID || h.Node.ID != s.Node || h.Totals.Files != s.obj.Files || h.Totals.Bytes != s.obj.Bytes {
		return fmt.Errorf("%w: %s describes %s/%s, its manifest is %s/%s", ErrCorrupt, s.key, s.ID, s.Node, h.ID, h.Node.ID)
	}
	return nil
}

// Header is the manifest's header.
func (p *pieceReader) Header() *manifest.Manifest { return p.mr.Header() }

// next returns the next entry and, for a file, its chunks (valid until the
// following call), or io.EOF once both streams are read whole and proven.
func (p *pieceReader) next() (*manifest.Entry, []ID, error) {
	e, err := p.mr.Next()
	if err == io.EOF {
		if err := p.rr.end(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.s.key, err)
		}
		return nil, nil, io.EOF
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.s.key, err)
	}
	p.entries++
	if e.Type != manifest.TypeFile {
		return e, nil, nil
	}
	ids, err := p.rr.next(e, p.buf)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.s.key, err)
	}
	p.buf = ids
	if err := checkExtents(p.idx, e, ids); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.s.key, err)
	}
	return e, ids, nil
}

// Close stops both streams.
func (p *pieceReader) Close() {
	p.ms.Close()
	p.cs.Close()
}
