package hardlink

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// The locked pass's work on single files of directories that stood:
// copies, changed clones, files held open for writing.

// recapture handles the files of directories kept as they were: copies
// deferred by the first pass, clones whose source changed, and links of
// inodes copyInode chooses; each is captured again through batch.
func (p *Pass) recapture() error {
	b := p.b
	type todo struct {
		names []string
		stale []int // first-pass items to unstage
	}
	byDir := map[string]*todo{}
	add := func(rel string, k int) {
		dir := parentOf(rel)
		t := byDir[dir]
		if t == nil {
			t = &todo{}
			byDir[dir] = t
		}
		t.names = append(t.names, baseOf(rel))
		if k >= 0 {
			t.stale = append(t.stale, k)
		}
	}
	for _, rel := range p.deferred {
		if !p.rescanned[parentOf(rel)] && !p.isDropped(rel) {
			add(rel, -1)
		}
	}
	// Clones in kept directories: a stat each, grouped by directory.
	clones := map[string][]int{}
	for _, k := range p.clones {
		dir := parentOf(p.items[k].Rel)
		if !p.rescanned[dir] && !p.isDropped(p.items[k].Rel) {
			clones[dir] = append(clones[dir], k)
		}
	}
	for dir, ks := range clones {
		if err := p.statClones(dir, ks, add); err != nil {
			return err
		}
	}
	if ci := b.opts.CopyInode; ci != nil {
		for k := range p.items {
			it := &p.items[k]
			if it.Capture == CaptureLink && ci(it.Dev, it.Ino) && !p.isDropped(it.Rel) {
				add(it.Rel, k)
			}
		}
	}
	for dir, t := range byDir {
		pair, _, _, _, err := b.openPair(dir, false)
		if err != nil {
			return err
		}
		err = func() error {
			defer pair.release()
			for _, k := range t.stale {
				if err := p.unstage(pair.dfd, p.items[k].Rel, baseOf(p.items[k].Rel), false); err != nil {
					return err
				}
			}
			slices.Sort(t.names)
			return b.batch(pair, dir, t.names, nil)
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// statClones stats the sources of the clones ks of dir and passes those
// that changed to add.
func (p *Pass) statClones(dir string, ks []int, add func(string, int)) error {
	dot := dir
	if dot == "" {
		dot = "."
	}
	sd, err := p.b.src.OpenDir(dot)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", p.b.src.Join(dir), err)
	}
	defer sd.Close()
	for _, k := range ks {
		it := &p.items[k]
		cur, err := fsutil.LstatAt(sd.Fd(), baseOf(it.Rel))
		if err != nil && err != unix.ENOENT {
			return fmt.Errorf("lstat %s: %w", p.b.src.Join(it.Rel), err)
		}
		if err != nil || !p.holds(it, cur) {
			add(it.Rel, k)
		}
	}
	return nil
}
