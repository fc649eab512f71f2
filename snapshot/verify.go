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
	// OnHashed, when set, is called with the size of each file hashed.
	OnHashed func(bytes int64)
}

// Verify reads snapshot id's manifest (checking who wrote it, and its seal
// as it goes) and compares the snapshot's tree with it, reporting every
// difference (content, type, size, mode and owner). Manifest and tree are
// both streamed, so memory does not grow with the number of files. A
// corrupt manifest is an error wrapping ErrCorrupt, an untrusted one
// ErrUntrusted; differences are in the result (use Err). Verify writes
// nothing.
func Verify(ctx context.Context, l *Layout, id string, o VerifyOptions) (*manifest.VerifyResult, error) {
	s, err := l.openSession(ctx, o.Logger, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.verify(ctx, id, manifest.VerifyOptions{Fast: o.Fast, Workers: o.Workers, OnHashed: o.OnHashed})
}

func (s *session) verify(ctx context.Context, id string, o manifest.VerifyOptions) (*manifest.VerifyResult, error) {
	tree, mf, err := s.treeOf(id)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	defer mf.Close()
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	o.Trusted = !s.l.AllowSharedBackups
	return manifest.VerifyTree(ctx, tree, r, o)
}
