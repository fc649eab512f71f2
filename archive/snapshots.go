package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/manifest"
)

// archivedManifest is snapshots/<id>/<node>.manifest (zstd-compressed JSON):
// the node's sealed manifest, byte for byte, and the chunk list of every
// distinct file content it holds, keyed by the content's BLAKE3.
type archivedManifest struct {
	Format   int                 `json:"format"`
	KeyID    string              `json:"keyId,omitempty"` // the archive key's id, when encrypted
	Manifest string              `json:"manifest"`
	Content  map[string][]string `json:"content"`
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

	manifest []byte
	m        *manifest.Manifest
	content  map[string][]ID
}

func decodeArchivedManifest(c *crypter, b []byte) (*RemoteSnapshot, error) {
	z, err := c.open(b)
	if err != nil {
		return nil, err
	}
	raw, err := decompress(z, 8<<30)
	if err != nil {
		return nil, err
	}
	var a archivedManifest
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("%w: archived manifest: %v", ErrCorrupt, err)
	}
	if a.Format != 1 {
		return nil, fmt.Errorf("%w: archived manifest format %d", ErrCorrupt, a.Format)
	}
	if c != nil && a.KeyID != c.keyID {
		return nil, fmt.Errorf("%w: archived manifest names key %q, the archive's is %q", ErrCorrupt, a.KeyID, c.keyID)
	}
	m, err := manifest.Decode([]byte(a.Manifest))
	if err != nil {
		return nil, err
	}
	s := &RemoteSnapshot{ID: m.ID, Node: m.Node.ID, CreatedAt: m.CreatedAt, Files: m.Totals.Files, Bytes: m.Totals.Bytes,
		PotentiallyInconsistent: m.PotentiallyInconsistent, manifest: []byte(a.Manifest), m: m, content: map[string][]ID{}}
	for h, ids := range a.Content {
		list := make([]ID, len(ids))
		for i, x := range ids {
			if list[i], err = ParseID(x); err != nil {
				return nil, err
			}
		}
		s.content[h] = list
	}
	for _, e := range m.Entries {
		if e.Type == manifest.TypeFile {
			if _, ok := s.content[e.BLAKE3]; !ok {
				return nil, fmt.Errorf("%w: archived manifest of %s/%s has no chunk list for %s", ErrCorrupt, m.ID, m.Node.ID, e.Path)
			}
		}
	}
	return s, nil
}

func encodeArchivedManifest(c *crypter, manifestBytes []byte, content map[string][]ID) ([]byte, error) {
	a := archivedManifest{Format: 1, Manifest: string(manifestBytes), Content: map[string][]string{}}
	if c != nil {
		a.KeyID = c.keyID
	}
	for h, ids := range content {
		l := make([]string, len(ids))
		for i, id := range ids {
			l[i] = id.String()
		}
		a.Content[h] = l
	}
	b, err := json.Marshal(&a)
	if err != nil {
		return nil, err
	}
	return c.seal(nil, compress(b)), nil
}

// snapshotKeys lists every snapshots/<id>/<node>.manifest key.
func (r *Repo) snapshotKeys(ctx context.Context) ([]string, error) {
	var keys []string
	err := r.st.List(ctx, "snapshots/", func(k string, _ int64) error {
		if strings.HasSuffix(k, ".manifest") {
			keys = append(keys, k)
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// List returns every node piece of every snapshot in the archive, oldest first.
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
	b, err := r.st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	s, err := decodeArchivedManifest(r.enc, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if snapshotKey(s.ID, s.Node) != key {
		return nil, fmt.Errorf("%w: %s holds the manifest of %s/%s", ErrCorrupt, key, s.ID, s.Node)
	}
	return s, nil
}

// readSnapshot reads one node's piece; ErrNotFound names the nodes present.
func (r *Repo) readSnapshot(ctx context.Context, id, node string) (*RemoteSnapshot, error) {
	if !manifest.IDPattern.MatchString(id) || !nodePattern.MatchString(node) {
		return nil, fmt.Errorf("bad snapshot id %q or node %q", id, node)
	}
	s, err := r.readSnapshotKey(ctx, snapshotKey(id, node))
	if errors.Is(err, store.ErrNotFound) {
		var nodes []string
		r.st.List(ctx, "snapshots/"+id+"/", func(k string, _ int64) error {
			nodes = append(nodes, strings.TrimSuffix(k[strings.LastIndexByte(k, '/')+1:], ".manifest"))
			return nil
		})
		if len(nodes) > 0 {
			return nil, fmt.Errorf("snapshot %s has no piece of node %q (nodes: %s): %w", id, node, strings.Join(nodes, ", "), ErrNotFound)
		}
		return nil, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	}
	return s, err
}
