package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// originName marks a snapshot that was not taken here (downloaded): its
// manifest's inode numbers describe another filesystem, so Create never
// reuses hashes from it.
const originName = "origin.json"

// ImportSource is what Import publishes (tree.Source).
type ImportSource = fstree.Source

// Import publishes snapshot id, built by src, the way Create publishes its
// own: under the operation lock, after recovery, in staging (in the private
// state dir), then one atomic rename. The manifest is written first and
// proven (seal, checks, its id) before anything is built from it: by a
// pass beside the fill, and by the source's own first pass. origin is
// stored as origin.json. On any error nothing is left behind.
func (l *Layout) Import(ctx context.Context, id string, origin []byte, src ImportSource, log *slog.Logger) (err error) {
	if err := validID(id); err != nil {
		return err
	}
	// The operation lock is held only to clean up and to publish, not while
	// the tree is built (a download can take hours): the staging tree has
	// its own lock, so another command's recovery leaves it alone.
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return err
	}
	defer s.close()
	if s.backups.Exists(id) {
		return fmt.Errorf("snapshot %s: %w (delete it first)", id, ErrExists)
	}
	if err := s.mkdirPriv(stagingName); err != nil {
		return err
	}
	stage := stagingName + "/" + id
	sl, err := s.lockStage(stage)
	if err != nil {
		return fmt.Errorf("%w: another download of %s is running", ErrBusy, id)
	}
	defer func() {
		sl.release()
		s.priv.Remove(stage + stageLockSuffix)
	}()
	err = s.priv.Mkdir(stage, 0o700)
	s.op.release()
	s.op = nil
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.priv.RemoveAll(stage)
		}
	}()
	mf, err := s.importManifest(ctx, stage, id, src)
	if err != nil {
		return err
	}
	defer mf.Close()
	// The proving pass (which also collects the directories) runs beside
	// the fill: a source proves the manifest itself before it builds
	// anything from it (fstree.Source), and the two passes take a core
	// each (a download checks its content stream against the manifest in
	// its pass). A failed proof stops the fill, and its error is the one
	// returned, whatever the fill's, as when the proof ran first.
	fillCtx, stopFill := context.WithCancel(ctx)
	defer stopFill()
	var dirs []manifest.Entry
	var proveErr error
	proved := make(chan struct{})
	go func() {
		defer close(proved)
		proveErr = par.Safely(func() (err error) { // a panic is an error here, as in the caller's goroutine
			dirs, err = proveManifest(ctx, mf)
			return err
		})
		if proveErr != nil {
			stopFill()
		}
	}()
	tree, err := s.fillTree(fillCtx, stage+"/"+dataName, mf, src)
	<-proved
	if proveErr != nil {
		if tree != nil {
			tree.Close()
		}
		return proveErr
	}
	if err != nil {
		return err
	}
	defer tree.Close()
	crashPoint("import.filled")
	if err := finishImported(tree, dirs); err != nil {
		return err
	}
	if err := writeNew(s.priv, stage+"/"+originName, origin); err != nil {
		return err
	}
	if err := s.writeProof(stage, id); err != nil {
		return err
	}
	if s.op, err = lockOp(ctx, s.priv, DefaultOpLockWait); err != nil {
		return err
	}
	if err := s.writeSeal(stage); err != nil {
		return fmt.Errorf("write the seal record: %w", err)
	}
	return s.publish(stage, id)
}

// importManifest writes the manifest into staging and opens it; Import
// proves it (proveManifest) beside the fill.
func (s *session) importManifest(ctx context.Context, stage, id string, src ImportSource) (*ManifestFile, error) {
	rel := stage + "/" + manifestName
	f, err := s.priv.Create(rel, 0o600)
	if err != nil {
		return nil, err
	}
	// No fsync here: the filled tree's syncfs (finishImported) makes the
	// manifest durable with it, before the proof and the publish, and a
	// crash before that leaves only staging, which recovery removes (an
	// fsync of a million files' manifest waited for some 150 MB to reach
	// the disk before the first file was made).
	err = src.WriteManifest(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	g, st, err := s.priv.OpenRegular(rel)
	if err != nil {
		return nil, err
	}
	return manifest.NewFile(g, st.Size, id), nil
}

// proveManifest reads mf through (proving its seal, checks and id) and
// returns its directory entries, whose attributes are set once the tree
// is filled.
func proveManifest(ctx context.Context, mf *ManifestFile) ([]manifest.Entry, error) {
	var dirs []manifest.Entry
	_, err := mf.Each(func(e *manifest.Entry) error {
		if e.Type == manifest.TypeDir {
			dirs = append(dirs, *e)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return dirs, nil
}

// fetchManifest writes the manifest src gives into an unnamed temp file of
// the private state dir (gone when closed; a dry run's is in the temp dir)
// and proves it, as importManifest does; it returns the directory entries
// too.
func (s *session) fetchManifest(ctx context.Context, id string, src ImportSource) (*ManifestFile, []manifest.Entry, error) {
	var f *os.File
	if s.priv == nil { // a dry run: no private state dir is made
		var err error
		if f, err = os.CreateTemp("", "hotsnap-manifest-"); err != nil {
			return nil, nil, err
		}
		os.Remove(f.Name())
	} else {
		fd, err := unix.Openat(s.priv.Fd(), ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, nil, &os.PathError{Op: "create temp file in", Path: s.priv.Path(), Err: err}
		}
		f = os.NewFile(uintptr(fd), s.priv.Join("(manifest of "+id+")"))
	}
	if err := src.WriteManifest(ctx, f); err != nil {
		f.Close()
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	mf := manifest.NewFile(f, st.Size(), id)
	dirs, err := proveManifest(ctx, mf)
	if err != nil {
		mf.Close()
		return nil, nil, err
	}
	return mf, dirs, nil
}

// fillRestoreTree has src write the snapshot's tree at dstRel in the
// private state dir, then gives its directories their attributes and makes
// it durable (finishImported).
func (s *session) fillRestoreTree(ctx context.Context, dstRel string, mf *ManifestFile, dirs []manifest.Entry, src ImportSource) error {
	tree, err := s.fillTree(ctx, dstRel, mf, src)
	if err != nil {
		return err
	}
	defer tree.Close()
	if err := finishImported(tree, dirs); err != nil {
		return err
	}
	return s.priv.SyncDir(restoringName)
}

// fillTree makes the new directory rel of the private state dir and has
// src fill it from mf; it returns the tree, open (the caller closes it).
func (s *session) fillTree(ctx context.Context, rel string, mf *ManifestFile, src ImportSource) (*fsutil.Dir, error) {
	if err := s.priv.Mkdir(rel, 0o700); err != nil {
		return nil, err
	}
	tree, err := s.priv.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	if err := src.Fill(ctx, tree, mf); err != nil {
		tree.Close()
		return nil, err
	}
	return tree, nil
}

// finishImported gives the tree's directories their attributes, then makes
// everything durable with one syncfs of the filesystem: every file was
// written here (nothing is shared with live data), and one call costs less
// than an fsync per file by orders of magnitude for small files.
func finishImported(tree *fsutil.Dir, dirs []manifest.Entry) error {
	if err := fstree.FinishDirs(tree, dirs); err != nil {
		return err
	}
	if err := unix.Syncfs(tree.Fd()); err != nil {
		return &os.PathError{Op: "syncfs", Path: tree.Path(), Err: err}
	}
	return nil
}

// OpenLatest opens the tree and manifest of the newest local snapshot
// whose manifest can be read (a download takes unchanged files from it
// instead of fetching them); nils when there is none. Close both.
func (l *Layout) OpenLatest(ctx context.Context) (*fsutil.Dir, *ManifestFile, error) {
	s, err := l.openSession(ctx, nil, false)
	if err != nil {
		return nil, nil, err
	}
	defer s.close()
	ids, err := s.ids()
	if err != nil {
		return nil, nil, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if tree, mf, err := s.treeOf(ids[i]); err == nil {
			return tree, mf, nil
		}
	}
	return nil, nil, nil
}
