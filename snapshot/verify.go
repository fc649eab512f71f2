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

// Verify reads snapshot id's manifest (checking its seal and who wrote it)
// and compares the snapshot's tree with it, reporting every difference
// (content, type, size, mode and owner). A corrupt manifest is an error
// wrapping ErrCorrupt, an untrusted one ErrUntrusted; differences are in
// the result (use Err). Verify writes nothing.
func Verify(ctx context.Context, l *Layout, id string, o VerifyOptions) (*manifest.VerifyResult, error) {
	s, err := l.openSession(ctx, o.Logger, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	m, _, err := s.readManifest(id)
	if err != nil {
		return nil, err
	}
	return s.verifyTree(ctx, id, m, manifest.VerifyOptions{Fast: o.Fast, Workers: o.Workers})
}

// VerifyManifest compares snapshot id's tree with m, a manifest the
// caller already read (and checked) with ReadManifest.
func VerifyManifest(ctx context.Context, l *Layout, id string, m *manifest.Manifest, o manifest.VerifyOptions) (*manifest.VerifyResult, error) {
	s, err := l.openSession(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.verifyTree(ctx, id, m, o)
}

func (s *session) verifyTree(ctx context.Context, id string, m *manifest.Manifest, o manifest.VerifyOptions) (*manifest.VerifyResult, error) {
	tree, err := s.openTree(id)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	return manifest.VerifyTree(ctx, tree, m, o)
}
