package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// ManifestFile is a snapshot's manifest.json, opened once and checked (a
// regular file with one link, owned by the invoking user or root and
// writable by no one else, whatever the layout allows: a manifest is the
// truth a restore acts on, and its seal, a plain hash, does not say who
// wrote it), read as streams (manifest.File).
type ManifestFile = manifest.File

// openManifest opens snapshot id's manifest.json.
func (s *session) openManifest(id string) (*ManifestFile, error) {
	snap, err := s.openSnapshot(id)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	f, st, err := snap.OpenRegular(manifestName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(ErrCorrupt, "snapshot %s has no manifest.json", id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: manifest of %s: %v", ErrUntrusted, id, err)
	}
	p := snap.Join(manifestName)
	if err := checkTrusted(st, "manifest", p); err != nil {
		f.Close()
		return nil, err
	}
	if st.Nlink != 1 {
		f.Close()
		return nil, fmt.Errorf("%w: manifest %s has %d links: hotsnap writes manifests with one", ErrUntrusted, p, st.Nlink)
	}
	if st.Size > manifest.MaxSize {
		f.Close()
		return nil, errorf(ErrCorrupt, "%s is %d bytes, more than the %d a manifest may have", p, st.Size, manifest.MaxSize)
	}
	return manifest.NewFile(f, st.Size, id), nil
}

// readHeader reads only snapshot id's manifest header (for listings).
func (s *session) readHeader(id string) (*manifest.Manifest, error) {
	mf, err := s.openManifest(id)
	if err != nil {
		return nil, err
	}
	defer mf.Close()
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	return r.Header(), nil
}

// readManifest reads, checks and holds all of snapshot id's manifest (for
// small manifests and tests: commands stream them).
func (s *session) readManifest(id string) (*manifest.Manifest, error) {
	mf, err := s.openManifest(id)
	if err != nil {
		return nil, err
	}
	defer mf.Close()
	var entries []manifest.Entry
	h, err := mf.Each(func(e *manifest.Entry) error {
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := *h
	m.Entries = entries
	return &m, nil
}

// ReadManifest reads and checks the whole manifest of snapshot id into
// memory. It returns ErrNotFound when there is no such snapshot, an error
// wrapping ErrCorrupt when the manifest is damaged and ErrUntrusted when
// another user could have written it. Commands that may meet a million
// entries use OpenManifest and stream instead.
func ReadManifest(l *Layout, id string) (*manifest.Manifest, error) {
	s, err := l.openSession(context.Background(), nil, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.readManifest(id)
}

// ReadHeader reads only the header of snapshot id's manifest (id, times,
// versions, topology, totals): what a listing needs, with the same checks
// of who wrote it, but neither entries read nor seal proven.
func ReadHeader(l *Layout, id string) (*manifest.Manifest, error) {
	s, err := l.openSession(context.Background(), nil, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.readHeader(id)
}

// OpenManifest opens snapshot id's manifest for streaming reads. Close it.
func (l *Layout) OpenManifest(id string) (*ManifestFile, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	s, err := l.openSession(context.Background(), nil, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.openManifest(id)
}

// readTree runs fn over snapshot id's tree and manifest in a read-only
// session, and closes all three after: what cat, extract and verify share.
func (l *Layout) readTree(ctx context.Context, log *slog.Logger, id string, fn func(s *session, tree *fsutil.Dir, mf *ManifestFile) error) error {
	s, err := l.openSession(ctx, log, false)
	if err != nil {
		return err
	}
	defer s.close()
	tree, mf, err := s.treeOf(id)
	if err != nil {
		return err
	}
	defer tree.Close()
	defer mf.Close()
	return fn(s, tree, mf)
}

// treeOf is a snapshot's tree and manifest, open together.
func (s *session) treeOf(id string) (*fsutil.Dir, *ManifestFile, error) {
	mf, err := s.openManifest(id)
	if err != nil {
		return nil, nil, err
	}
	tree, err := s.openTree(id)
	if err != nil {
		mf.Close()
		return nil, nil, err
	}
	return tree, mf, nil
}
