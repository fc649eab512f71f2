package repo

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

// SnapshotFormat is the format of snapshots/<id>/<node>.manifest objects.
const SnapshotFormat = 2

// SnapshotObject is snapshots/<id>/<node>.manifest: small, whatever the
// snapshot's size. It names the two streams that hold the node's piece
// (its manifest.json byte for byte, and its content records) and repeats
// the manifest's header fields a listing needs, which a download checks
// against the manifest itself. Sealed in an encrypted archive.
type SnapshotObject struct {
	Format                  int        `json:"format"`
	KeyID                   string     `json:"keyId,omitempty"` // the archive key's id, when encrypted
	ID                      string     `json:"id"`
	Node                    string     `json:"node"`
	CreatedAt               time.Time  `json:"createdAt"`
	Files                   int64      `json:"files"`
	Bytes                   int64      `json:"bytes"`
	PotentiallyInconsistent bool       `json:"potentiallyInconsistent"`
	Manifest                StreamDesc `json:"manifest"`
	Content                 StreamDesc `json:"content"`
}

var nodePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func SnapshotKey(id, node string) string { return "snapshots/" + id + "/" + node + ".manifest" }

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
	obj *SnapshotObject
}

// Key is the snapshot object's key in the store.
func (s *RemoteSnapshot) Key() string { return s.key }

// Object is the snapshot object itself (nil when it could not be read).
func (s *RemoteSnapshot) Object() *SnapshotObject { return s.obj }

func (r *Repo) EncodeSnapshot(o *SnapshotObject) ([]byte, error) {
	o.Format = SnapshotFormat
	if r.enc != nil {
		o.KeyID = r.enc.keyID
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	return r.enc.seal(nil, b), nil
}

// DecodeSnapshot opens and strictly parses a snapshot object, bounding its
// streams' sizes and chunk counts.
func (r *Repo) DecodeSnapshot(b []byte) (*SnapshotObject, error) {
	plain, err := r.enc.open(b)
	if err != nil {
		return nil, err
	}
	var o SnapshotObject
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || dec.More() {
		if err == nil {
			err = errors.New("trailing data")
		}
		return nil, fmt.Errorf("%w: snapshot object: %v", ErrCorrupt, err)
	}
	switch {
	case o.Format != SnapshotFormat:
		return nil, fmt.Errorf("%w: snapshot object format %d (this hotsnap reads %d)", ErrCorrupt, o.Format, SnapshotFormat)
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

// SnapshotKeys lists every snapshots/<id>/<node>.manifest key.
func (r *Repo) SnapshotKeys(ctx context.Context) ([]string, error) {
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
	keys, err := r.SnapshotKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RemoteSnapshot, 0, len(keys))
	for _, k := range keys {
		s, err := r.ReadSnapshotKey(ctx, k)
		if err != nil {
			parts := strings.Split(k, "/")
			out = append(out, RemoteSnapshot{ID: parts[1], Node: strings.TrimSuffix(parts[len(parts)-1], ".manifest"), Error: err.Error()})
			continue
		}
		out = append(out, *s)
	}
	return out, nil
}

func (r *Repo) ReadSnapshotKey(ctx context.Context, key string) (*RemoteSnapshot, error) {
	b, err := r.st.Get(ctx, key, maxSnapshotObject)
	if err != nil {
		return nil, err
	}
	o, err := r.DecodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if SnapshotKey(o.ID, o.Node) != key {
		return nil, fmt.Errorf("%w: %s holds the manifest of %s/%s", ErrCorrupt, key, o.ID, o.Node)
	}
	return &RemoteSnapshot{ID: o.ID, Node: o.Node, CreatedAt: o.CreatedAt, Files: o.Files, Bytes: o.Bytes,
		PotentiallyInconsistent: o.PotentiallyInconsistent, key: key, obj: o}, nil
}

// ReadSnapshot reads one node's piece; ErrNotFound names the nodes present.
func (r *Repo) ReadSnapshot(ctx context.Context, id, node string) (*RemoteSnapshot, error) {
	if !manifest.IDPattern.MatchString(id) || !nodePattern.MatchString(node) {
		return nil, fmt.Errorf("bad snapshot id %q or node %q", id, node)
	}
	s, err := r.ReadSnapshotKey(ctx, SnapshotKey(id, node))
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

// CheckStreams requires every chunk of a snapshot's two streams to be
// indexed.
func (s *RemoteSnapshot) CheckStreams(idx *Index) error {
	for _, d := range []*StreamDesc{&s.obj.Manifest, &s.obj.Content} {
		for _, id := range d.IDs() {
			if !idx.Has(id) {
				return fmt.Errorf("%w: %s needs chunk %s, which %w", ErrCorrupt, s.key, id, ErrNotIndexed)
			}
		}
	}
	return nil
}

// PieceReader reads a node piece's manifest and content records together:
// each file entry comes with its chunks, checked to make exactly the file.
type PieceReader struct {
	s       *RemoteSnapshot
	ms, cs  *StreamReader
	mr      *manifest.Reader
	rr      *RecordReader
	idx     *Index
	buf     []ID
	entries int
}

// EachFile reads s to its end (both streams, every check of a piece
// reader), calling fn with each file entry's chunk ids.
func (r *Repo) EachFile(ctx context.Context, idx *Index, s *RemoteSnapshot, fn func(ids []ID) error) error {
	p, err := r.OpenPiece(ctx, idx, s)
	if err != nil {
		return err
	}
	defer p.Close()
	for {
		_, ids, err := p.Next()
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

// OpenPieceOf reads the snapshot object of id's piece of node and starts
// reading the piece (OpenPiece).
func (r *Repo) OpenPieceOf(ctx context.Context, idx *Index, id, node string) (*PieceReader, error) {
	s, err := r.ReadSnapshot(ctx, id, node)
	if err != nil {
		return nil, err
	}
	return r.OpenPiece(ctx, idx, s)
}

// OpenPiece starts reading s: its manifest must be the one the snapshot
// object Describes (id, node, totals).
func (r *Repo) OpenPiece(ctx context.Context, idx *Index, s *RemoteSnapshot) (*PieceReader, error) {
	if err := s.CheckStreams(idx); err != nil {
		return nil, err
	}
	p := &PieceReader{s: s, idx: idx}
	p.ms = r.OpenStream(ctx, idx, s.key+" (manifest stream)", s.obj.Manifest)
	p.cs = r.OpenStream(ctx, idx, s.key+" (content stream)", s.obj.Content)
	mr, err := manifest.NewReader(p.ms)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", s.key, err)
	}
	if err := s.Describes(mr.Header()); err != nil {
		p.Close()
		return nil, err
	}
	p.mr = mr
	p.rr = NewRecordReader(p.cs, r.cfg.Chunker.Min)
	return p, nil
}

// Describes requires the manifest header h to be the one the snapshot
// object Describes: its id, node and totals.
func (s *RemoteSnapshot) Describes(h *manifest.Manifest) error {
	if h.ID != s.ID || h.Node.ID != s.Node || h.Totals.Files != s.obj.Files || h.Totals.Bytes != s.obj.Bytes {
		return fmt.Errorf("%w: %s Describes %s/%s, its manifest is %s/%s", ErrCorrupt, s.key, s.ID, s.Node, h.ID, h.Node.ID)
	}
	return nil
}

// Header is the manifest's header.
func (p *PieceReader) Header() *manifest.Manifest { return p.mr.Header() }

// next returns the next entry and, for a file, its chunks (valid until the
// following call), or io.EOF once both streams are read whole and proven.
func (p *PieceReader) Next() (*manifest.Entry, []ID, error) {
	e, err := p.mr.Next()
	if err == io.EOF {
		if err := p.rr.End(); err != nil {
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
	ids, err := p.rr.Next(e, p.buf)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.s.key, err)
	}
	p.buf = ids
	if err := CheckExtents(p.idx, e, ids); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.s.key, err)
	}
	return e, ids, nil
}

// Close stops both streams.
func (p *PieceReader) Close() {
	p.ms.Close()
	p.cs.Close()
}
