package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// swap runs the journaled swap; the caller holds the write lock. source is
// the folder of the private state dir holding the new entries. It returns
// the failsafe dir holding the previous state. A partial restore (sel not
// nil) moves its units (partialUnits) instead of every top-level entry.
func (s *session) swap(id, source string, sel *selection, o RestoreOptions) (string, error) {
	out, in, err := s.swapNames(source, sel)
	if err != nil {
		return "", err
	}
	partial := ""
	if sel != nil {
		partial = partialMarker
	}
	if err := s.mkdirPriv(failsafeName); err != nil {
		return "", err
	}
	var fs string
	for i := 0; ; i++ {
		fs = fmt.Sprintf("%s%s_before_%s_%08x", o.Now().UTC().Format(IDTimeLayout), partial, id, fsutil.RandUint32())
		err := s.priv.Mkdir(failsafeName+"/"+fs, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || i > 10 {
			return "", fmt.Errorf("create failsafe: %w", err)
		}
	}
	j := &journal{ID: id, Failsafe: fs, Source: source, MoveOut: out, MoveIn: in, Partial: sel != nil, StartCmd: o.StartCmd}
	if err := s.writeJournal(j); err != nil {
		s.priv.Remove(j.failsafe())
		return "", fmt.Errorf("write restore journal: %w", err)
	}
	crashPoint("restore.journal")
	if err := s.rollForward(j); err != nil {
		if berr := s.rollBack(j); berr != nil {
			return "", fmt.Errorf("swap failed (%v) and so did the roll back (%w): the journal %s is kept; run `hotsnap recover`", err, berr, s.journalPath())
		}
		s.priv.Remove(journalName)
		s.priv.Remove(j.failsafe())
		return "", fmt.Errorf("swap failed and was rolled back, the data dir is as before: %w", err)
	}
	crashPoint("restore.swapped")
	if err := s.priv.Remove(journalName); err != nil {
		return "", err
	}
	if err := s.priv.Sync(); err != nil {
		return "", err
	}
	crashPoint("restore.done")
	// Keep only this restore's failsafe (or none).
	olds, _ := s.priv.Names(failsafeName)
	for _, n := range olds {
		if n != fs || o.NoFailsafe {
			s.priv.RemoveAll(failsafeName + "/" + n)
		}
	}
	return s.priv.Join(j.failsafe()), nil
}

// swapNames lists what a swap moves out of the data dir and in from source:
// every top-level entry but hotsnap's own, or a partial restore's units.
func (s *session) swapNames(source string, sel *selection) (out, in []string, err error) {
	if sel != nil {
		return s.partialUnits(sel)
	}
	reserved := s.l.reservedNames()
	names, err := s.data.Names(".")
	if err != nil {
		return nil, nil, err
	}
	out = []string{}
	for _, n := range names {
		if !reserved[n] {
			out = append(out, n)
		}
	}
	in, err = s.priv.Names(source)
	return out, in, err
}

// restoreBatch is the most files of one directory a restore's worker
// takes at once. A directory of up to this many goes to one worker: a link
// or create takes its directory's lock, so two workers in one directory
// wait on each other rather than work side by side (a restore of 200,000
// files in directories of 1,000 spent 3 % of its CPU spinning on that lock
// with batches of 512, and took 2.52 to 2.62 s against 2.69 to 2.85 s with
// whole directories; docs/benchmarks.md, stop 41). The bound keeps the
// batches in flight (two per worker) to a few megabytes.
const restoreBatch = 4096

// buildRestoreTree recreates the snapshot's tree (snap) at dstRel in the
// private state dir, streaming its manifest: linked entries are linked (the
// snapshot's inode, as at create), copied and reflinked entries are copied
// afresh, link groups are kept, then owners, modes and mtimes are set.
// Symlinks are created, never followed. Each file is opened once, checked
// against its entry, and linked or copied from that open file. With
// include, only the entries it selects are built, with the directories
// above them. With proven (a re-hash of every file runs beside the build,
// and the swap waits for it), a linked file in a directory nobody else
// writes is linked by name without a stat of its own: the re-hash checks
// the same name's inode, which nobody else can swap (a failed link is
// then checked, to name the damage).
func (s *session) buildRestoreTree(ctx context.Context, snap *fsutil.Dir, dstRel string, mf *ManifestFile, include []string, workers int, proven bool, proof *proofCheck, plan *planAdding, prog Progress) error {
	sel, err := fstree.NewSelector(include)
	if err != nil {
		return err
	}
	if err := s.priv.Mkdir(dstRel, 0o700); err != nil {
		return err
	}
	dst, err := s.priv.OpenDir(dstRel)
	if err != nil {
		return err
	}
	defer dst.Close()
	if workers <= 0 {
		workers = defaults.Workers()
	}
	copies := map[int]string{} // link group -> the first copy's path
	var dirs []manifest.Entry  // finished last
	var owned []string         // what the tree owns, to fsync: dirs and copies
	var ownedMu sync.Mutex
	// Files are made by workers, a directory's files at a time (a
	// manifest lists a directory's entries together; a batch holds up to
	// restoreBatch of them), each worker reaching them from the open
	// directory on both sides (fstree.DirCache). Directories and symlinks
	// are made here, in order, before the files in them; so are the
	// members of link groups, which link to each other.
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan []*manifest.Entry, workers)
	for range workers {
		g.Go(func() error {
			return par.Safely(func() error {
				from, to := &fstree.DirCache{Root: snap}, &fstree.DirCache{Root: dst}
				defer from.Close()
				defer to.Close()
				for b := range batches {
					for _, e := range b {
						copied, err := s.makeFile(from, to, e, proven, proof, prog)
						if err != nil {
							return err
						}
						if copied {
							ownedMu.Lock()
							owned = append(owned, string(e.Path))
							ownedMu.Unlock()
						}
					}
				}
				return nil
			})
		})
	}
	var batch []*manifest.Entry
	batchDir := ""
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case batches <- batch:
		case <-gctx.Done():
			return gctx.Err()
		}
		batch = nil
		return nil
	}
	from, to := &fstree.DirCache{Root: snap}, &fstree.DirCache{Root: dst}
	defer from.Close()
	defer to.Close()
	_, err = mf.Each(func(e *manifest.Entry) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		proof.name(e)
		parents, selected := sel.Next(e)
		if !selected {
			return nil
		}
		for i := range parents {
			if err := dst.Mkdir(string(parents[i].Path), 0o700); err != nil {
				return err
			}
			dirs = append(dirs, parents[i])
			ownedMu.Lock()
			owned = append(owned, string(parents[i].Path))
			ownedMu.Unlock()
		}
		p := string(e.Path)
		if err := plan.add(e, p); err != nil {
			return err
		}
		if err := fstree.MakeDirOrSymlink(dst, e); err != nil {
			return err
		}
		switch e.Type {
		case manifest.TypeDir:
			dirs = append(dirs, *e)
			ownedMu.Lock()
			owned = append(owned, p)
			ownedMu.Unlock()
			return nil
		case manifest.TypeSymlink:
			return nil
		}
		if e.LinkGroup != 0 {
			// Here, in order: a member may link to the first copy.
			if first, ok := copies[e.LinkGroup]; ok && e.Capture != manifest.CaptureLink {
				return dst.Link(first, dst, p)
			}
			copied, err := s.makeFile(from, to, e, proven, proof, prog)
			if copied {
				ownedMu.Lock()
				owned = append(owned, p)
				ownedMu.Unlock()
			}
			copies[e.LinkGroup] = p
			return err
		}
		dir, _ := path.Split(p)
		if dir != batchDir || len(batch) >= restoreBatch {
			if err := flush(); err != nil {
				return err
			}
			batchDir = dir
		}
		ec := *e
		batch = append(batch, &ec)
		return nil
	})
	if err == nil {
		err = flush()
	}
	close(batches)
	if werr := g.Wait(); err == nil || errors.Is(err, context.Canceled) && werr != nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if err := proof.finish(); err != nil {
		return err
	}
	// Directories last: modes that forbid writing, mtimes that creating
	// entries would disturb.
	if err := fstree.FinishDirs(dst, dirs); err != nil {
		return err
	}
	if err := fstree.Sync(ctx, dst, owned, workers); err != nil {
		return err
	}
	return s.priv.SyncDir(restoringName)
}

// makeFile makes the regular file e in the restore tree: reached from the
// open directories from (the snapshot's) and to (the tree's); it reports
// whether it wrote a copy (which the tree then fsyncs). proven: the
// re-hash beside checks the file; proof, when set: the file's stat must
// be covered by the download's proof (else errUnproven).
func (s *session) makeFile(from, to *fstree.DirCache, e *manifest.Entry, proven bool, proof *proofCheck, prog Progress) (copied bool, err error) {
	p := string(e.Path)
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	sd, sst, err := from.At(dir)
	if err != nil {
		return false, err
	}
	dd, _, err := to.At(dir)
	if err != nil {
		return false, err
	}
	be := *e
	be.Path = manifest.Name(base)
	prog.Add(1, e.Size)
	if e.Capture == manifest.CaptureLink && nobodyElseWrites(sst) {
		if proven && sd.Link(base, dd, base) == nil {
			return false, nil
		}
		// Link by name from the stat: nobody but this user (or root) can
		// change the entries of this directory, so the inode checked is
		// the one linked, without opening it. (With proven, the link
		// failed: the check says whether the snapshot is damaged.)
		st, err := sd.Lstat(base)
		if err == nil {
			if perr := proof.check(e, st); perr != nil {
				return false, perr
			}
			err = fstree.CheckStat(sd, &be, st)
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrVerifyFailed, err)
		}
		return false, sd.Link(base, dd, base)
	}
	// Others may write the directory: link or copy from the open file
	// that was checked.
	f, st, err := fstree.OpenChecked(sd, &be)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrVerifyFailed, err)
	}
	defer f.Close()
	if err := proof.check(e, st); err != nil {
		return false, err
	}
	if e.Capture == manifest.CaptureLink {
		return false, fsutil.LinkFile(f, dd, base)
	}
	return true, s.copyChecked(f, dd, &be)
}

// nobodyElseWrites reports whether a directory of the given stat can be
// changed only by this process's user or root: theirs, not writable by
// group or others.
func nobodyElseWrites(st fsutil.Stat) bool {
	return (st.UID == 0 || st.UID == uint32(os.Geteuid())) && st.Mode&0o022 == 0
}

// copyChecked copies a snapshot's file for a restore. When other users may
// write the backups dir, the copy is hashed on the way and must match the
// manifest: what was verified may have been swapped since.
func (s *session) copyChecked(f *os.File, dst *fsutil.Dir, e *manifest.Entry) error {
	sum, err := fstree.Copy(f, dst, e, s.l.AllowSharedBackups)
	if err != nil {
		return err
	}
	if s.l.AllowSharedBackups && sum != e.BLAKE3 {
		dst.Remove(string(e.Path))
		return fmt.Errorf("%w: %s changed after it was verified (blake3 %s, manifest says %s)", ErrVerifyFailed, e.Path, sum, e.BLAKE3)
	}
	return nil
}

// RevertOptions tune Revert.
type RevertOptions struct {
	Quiescer quiesce.Quiescer
	Lock     quiesce.Policy
	Logger   *slog.Logger
	Now      func() time.Time
}

// Revert puts the state a restore moved aside (its failsafe, as returned in
// RestoreResult.Failsafe) back as the data dir, with the same journaled swap
// under the write lock. A cluster restore uses it when another node failed,
// so no node is left restored alone. The state being replaced goes to a new
// failsafe, whose path is returned.
func Revert(ctx context.Context, l *Layout, failsafe string, o RevertOptions) (string, error) {
	log := logger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Quiescer == nil {
		o.Quiescer = quiesce.None{}
	}
	// The failsafe is named as a restore returned it (its path) or by its
	// folder name; either way only that one name is used, below the
	// private state dir's failsafe/.
	name := failsafe
	if filepath.IsAbs(failsafe) {
		if filepath.Dir(filepath.Clean(failsafe)) != l.failsafeDir() {
			return "", fmt.Errorf("%w: %q is not a failsafe of this data dir (want a folder of %s)", ErrInvalid, failsafe, l.failsafeDir())
		}
		name = filepath.Base(filepath.Clean(failsafe))
	}
	if err := validName(name); err != nil {
		return "", fmt.Errorf("%w: failsafe %v", ErrInvalid, err)
	}
	if len(name) > len(IDTimeLayout) && strings.HasPrefix(name[len(IDTimeLayout):], partialMarker+"_") {
		return "", fmt.Errorf("%w: failsafe %s is a partial restore's: it holds only the entries that restore replaced, so it cannot be swapped in as the data dir; move them back by hand", ErrInvalid, name)
	}
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return "", err
	}
	defer s.close()
	source := failsafeName + "/" + name
	if st, err := s.priv.Lstat(source); err != nil || !st.IsDir() {
		return "", fmt.Errorf("failsafe %s: %w", s.priv.Join(source), ErrNotFound)
	}
	stats, err := quiesce.Acquire(ctx, o.Quiescer, o.Lock)
	if err != nil {
		return "", fmt.Errorf("revert refused, nothing was changed: the write lock could not be held for the swap: %w", err)
	}
	held := quiesce.Hold(ctx, o.Quiescer)
	defer held.Resume()
	next, serr := s.swap("revert", source, nil, RestoreOptions{Now: o.Now})
	rerr := held.Resume()
	if serr != nil {
		return "", serr
	}
	log.Info("restore reverted", "failsafe", failsafe, "lockHeldMs", ms(time.Since(stats.Acquired)))
	if rerr != nil {
		return next, fmt.Errorf("resume writes: %w", rerr)
	}
	return next, nil
}
