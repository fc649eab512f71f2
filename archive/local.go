package archive

import (
	"context"
	"log/slog"

	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// Local is the node's own snapshots, as an upload reads one and a download
// publishes one; *snapshot.Layout implements it. The archive reaches local
// snapshots only through it, so it does not import snapshot (docs/DESIGN.md,
// Layers).
type Local interface {
	// OpenManifest opens snapshot id's manifest, checked for who may have
	// written it.
	OpenManifest(id string) (*manifest.File, error)
	// OpenTree opens snapshot id's tree.
	OpenTree(id string) (*fsutil.Dir, error)
	// OpenLatest opens the tree and manifest of the newest snapshot whose
	// manifest can be read; nils when there is none.
	OpenLatest(ctx context.Context) (*fsutil.Dir, *manifest.File, error)
	// Import publishes snapshot id, built by src: staged, proven, then one
	// atomic rename; nothing is left on failure.
	Import(ctx context.Context, id string, origin []byte, src fstree.Source, log *slog.Logger) error
	// SnapshotDir is where snapshot id lives once published.
	SnapshotDir(id string) string
}
