package snapshot

import (
	"context"
	"log/slog"

	"github.com/hotsnap/hotsnap/manifest"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Fast    bool // stat only; the default re-hashes every file
	Workers int
	Logger  *slog.Logger
}

// Verify reads snapshot id's manifest (checking its seal) and compares the
// snapshot's tree with it, reporting every difference. A corrupt manifest is
// an error wrapping ErrCorrupt; differences are in the result (use Err).
func Verify(ctx context.Context, l *Layout, id string, o VerifyOptions) (*manifest.VerifyResult, error) {
	l.recoverIfIdle(ctx, o.Logger)
	m, err := ReadManifest(l, id)
	if err != nil {
		return nil, err
	}
	return manifest.VerifyTree(ctx, l.TreeDir(id), m, manifest.VerifyOptions{Fast: o.Fast, Workers: o.Workers})
}
