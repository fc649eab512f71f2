package fstree

import (
	"context"
	"io"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// Source is a snapshot built elsewhere (a download) that snapshot.Import
// publishes: its manifest, stored byte for byte, and a way to build its
// tree. It is declared here, below both, so that the archive can provide
// one without importing snapshot.
type Source interface {
	// WriteManifest writes the snapshot's manifest.json to w.
	WriteManifest(ctx context.Context, w io.Writer) error
	// Fill builds the tree below root, the entries of mf, through root
	// alone: every file, dir and symlink, with file contents proven
	// against their hashes and attributes set. Directories' modes and
	// mtimes are left to the caller. The caller proves mf's seal in a pass
	// beside Fill, so Fill reads mf through to its end (which proves the
	// seal) before it builds anything from it.
	Fill(ctx context.Context, root *fsutil.Dir, mf *manifest.File) error
}
