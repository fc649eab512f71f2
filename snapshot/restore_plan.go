package snapshot

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// RestorePlan says what a restore changes in the data dir.
type RestorePlan struct {
	Added        []string `json:"added"`
	Removed      []string `json:"removed"`
	Changed      []string `json:"changed"`
	AddedBytes   int64    `json:"addedBytes"`   // bytes of files added or changed
	RemovedBytes int64    `json:"removedBytes"` // bytes of files removed or replaced
}

// emptyData says whether the live data dir holds nothing but hotsnap's
// own places: then a full restore's plan adds every entry of the
// manifest, and the build lists them as it reads the manifest
// (planAdding) instead of a pass of its own beside it.
func (s *session) emptyData() bool {
	names, err := s.data.Names(".")
	if err != nil {
		return false
	}
	reserved := s.l.reservedNames()
	for _, n := range names {
		if !reserved[n] {
			return false
		}
	}
	return true
}

// planAdding is the plan of a full restore into an empty data dir, made
// by the build entry by entry (add), in the manifest's order.
type planAdding struct {
	plan     *RestorePlan
	reserved map[string]bool
}

func (s *session) newPlanAdding() *planAdding {
	return &planAdding{plan: &RestorePlan{Added: []string{}, Removed: []string{}, Changed: []string{}}, reserved: s.l.reservedNames()}
}

// add lists e as added; an entry on hotsnap's own places is refused, as
// planRestore refuses it.
func (a *planAdding) add(e *manifest.Entry, p string) error {
	if a == nil {
		return nil
	}
	if err := reservedTop(a.reserved, e); err != nil {
		return err
	}
	a.plan.Added = append(a.plan.Added, p)
	if e.Type == manifest.TypeFile {
		a.plan.AddedBytes += e.Size
	}
	return nil
}

// planRestore compares the live data dir with the manifest: the live tree
// is walked in the manifest's order and merged with it, so nothing grows
// with the number of entries but the lists of paths reported.
//
// A partial restore (sel not nil) compares only what it replaces: the
// entries at or below its tops, and the directories above them, which are
// added when missing and otherwise kept; the rest of the live tree is not
// walked.
func (s *session) planRestore(ctx context.Context, mf *ManifestFile, sel *selection) (*RestorePlan, error) {
	plan := &RestorePlan{Added: []string{}, Removed: []string{}, Changed: []string{}}
	reserved := s.l.reservedNames()
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	var cur *manifest.Entry
	var merr error
	next := func() error {
		for {
			cur, merr = r.Next()
			if merr != nil {
				return nil
			}
			if err := reservedTop(reserved, cur); err != nil {
				return err
			}
			if sel.scope(string(cur.Path)) != scopeOut {
				return nil
			}
		}
	}
	if err := next(); err != nil {
		return nil, err
	}
	added := func(e *manifest.Entry) {
		plan.Added = append(plan.Added, string(e.Path))
		if e.Type == manifest.TypeFile {
			plan.AddedBytes += e.Size
		}
	}
	removed := func(p string, st fsutil.Stat) {
		plan.Removed = append(plan.Removed, p)
		if st.IsRegular() {
			plan.RemovedBytes += st.Size
		}
	}
	// The application may still be writing (the plan is made before the
	// lock): entries that vanish during the walk are simply not counted.
	// A file whose listed inode is the manifest's own is unchanged (the
	// snapshot holds it): most of a tree, judged without a stat of its own.
	err = s.data.WalkEntries(ctx, func(rel string, de *fsutil.Entry) error {
		sc := sel.scope(rel)
		if reserved[rel] || sc == scopeOut {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		var st fsutil.Stat
		stat := func() (bool, error) {
			var err error
			if st, err = de.Stat(); err != nil {
				return false, fsutil.IgnoreVanished(rel, err)
			}
			return true, nil
		}
		if de.IsDir() {
			if ok, err := stat(); !ok {
				return err
			}
			if marked(s.data, rel, st) {
				return fmt.Errorf("%w: %s: a directory of hotsnap's own (marked %s) was moved inside the data dir; the restore would move it into the failsafe; move it back where it belongs (or remove it, after checking it); nothing was changed",
					ErrUntrusted, s.data.Join(rel), markerName)
			}
		}
		if sc == scopeAbove && !de.IsDir() {
			return fmt.Errorf("%w: %s is a %s in the data dir where the snapshot has a directory above the entries to restore; include %s itself to replace it; nothing was changed",
				ErrConflict, rel, de.TypeName(), rel)
		}
		for merr == nil && string(cur.Path) < rel {
			added(cur)
			if err := next(); err != nil {
				return err
			}
		}
		if merr != nil && merr != io.EOF {
			return merr
		}
		if merr != nil || string(cur.Path) != rel {
			if ok, err := stat(); !ok {
				return err
			}
			removed(rel, st)
			return nil
		}
		e := cur
		if sc == scopeAbove {
			return next() // a directory kept as it is
		}
		changed := de.TypeName() != e.Type
		if !changed {
			switch e.Type {
			case manifest.TypeFile:
				if de.Ino == e.Inode.Ino && de.DirDev == e.Inode.Dev {
					break // the snapshot's own inode
				}
				if ok, err := stat(); !ok {
					return err
				}
				sameInode := st.Dev == e.Inode.Dev && st.Ino == e.Inode.Ino
				changed = !sameInode && (st.Size != e.Size || st.MtimeNs != e.MtimeNs)
			case manifest.TypeSymlink:
				t, _ := s.data.Readlink(rel)
				changed = manifest.Name(t) != e.Target
			case manifest.TypeDir:
				changed = st.Perm() != e.Mode
			}
		}
		if changed {
			if ok, err := stat(); !ok {
				return err // vanished: the snapshot's entry is added
			}
			plan.Changed = append(plan.Changed, rel)
			if e.Type == manifest.TypeFile {
				plan.AddedBytes += e.Size
			}
			if st.IsRegular() {
				plan.RemovedBytes += st.Size
			}
		}
		return next()
	}, fsutil.IgnoreVanished)
	if err != nil {
		return nil, err
	}
	for merr == nil {
		added(cur)
		if err := next(); err != nil {
			return nil, err
		}
	}
	if merr != io.EOF {
		return nil, merr
	}
	return plan, nil
}
