package snapshot

import (
	"context"
	"log/slog"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Fast    bool // stat only; the default re-hashes every file
	Workers int
	Logger  *slog.Logger
	// Progress, when set, follows the re-hash ("verify"), started with the
	// manifest's totals; a stat-only check reports none.
	Progress Progress
}

// Verify reads snapshot id's manifest (checking who wrote it, and its seal
// as it goes) and compares the snapshot's tree with it, reporting every
// difference (content, type, size, mode and owner). Manifest and tree are
// both streamed, so memory does not grow with the number of files. A
// corrupt manifest is an error wrapping ErrCorrupt, an untrusted one
// ErrUntrusted; differences are in the result (use Err). Verify writes
// nothing.
func Verify(ctx context.Context, l *Layout, id string, o VerifyOptions) (*manifest.VerifyResult, error) {
	var res *manifest.VerifyResult
	err := l.readTree(ctx, o.Logger, id, func(s *session, tree *fsutil.Dir, mf *ManifestFile) (err error) {
		vo := manifest.VerifyOptions{Fast: o.Fast, Workers: o.Workers}
		if o.Progress != nil && !o.Fast {
			h, err := mf.Header()
			if err != nil {
				return err
			}
			o.Progress.Start("verify", h.Totals.Files, h.Totals.Bytes)
			defer o.Progress.Done()
			vo.OnHashed = func(n int64) { o.Progress.Add(1, n) }
		}
		res, err = s.verifyTree(ctx, tree, mf, vo)
		return err
	})
	return res, err
}

// verifyTree proves tree against its manifest mf.
func (s *session) verifyTree(ctx context.Context, tree *fsutil.Dir, mf *ManifestFile, o manifest.VerifyOptions) (*manifest.VerifyResult, error) {
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	o.Trusted = !s.l.AllowSharedBackups
	return manifest.VerifyTree(ctx, tree, r, o)
}
