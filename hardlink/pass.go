package hardlink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
)

// Two-pass capture (docs/DESIGN.md, Create). Pre captures the tree while
// writes go on; Finish, under the write lock, brings it up to date. Under
// the link contract every change the application makes is a change of
// directory entries, and every such change moves the directory's ctime, so
// Finish stats each directory once and lists again only those whose ctime
// is at or above a floor read before the first pass began: a directory
// changed during the first pass (before or after it was listed, in the
// same clock tick or not) or since. Files are looked at one by one only
// where hard links cannot hold their bytes: copies (always made under the
// lock), reflink clones (made again when their source changed), and files
// the stopped application holds open for writing.

// FinishStats say what the locked pass did.
type FinishStats struct {
	Dirs       int // directories stat-ed
	Rescanned  int // directories listed again
	Recaptured int // entries captured again or for the first time
}

// A Pass is a tree captured while writes went on: Finish it under the
// write lock, then read its Result.
type Pass struct {
	b        *builder
	root     fsutil.Stat // the source root, when the first pass began
	floor    int64       // ctime floor read before the first pass began
	items    []Item      // the first pass's, sorted by path
	dirs     []int       // indexes of its directories, -1 first for the root
	clones   []int       // indexes of its private copies (reflink clones)
	warnings []Warning   // the first pass's
	deferred []string    // files chosen for copying, left for the locked pass

	finished  bool
	lockFloor int64
	rescanned map[string]bool // directories listed again under the lock
	dropped   map[string]bool // first-pass entries no longer captured, with their subtrees
	stats     FinishStats
}

// Pre is the first pass: it captures the tree below src into dst (an
// existing empty directory on the same filesystem) as Build does, while
// writes may go on, except the files that opts.Copy chooses: those are
// copied by Finish. On error dst may hold a partial tree: the caller
// removes it.
func Pre(ctx context.Context, src, dst *fsutil.Dir, opts Options) (*Pass, error) {
	opts, err := checkOptions(opts)
	if err != nil {
		return nil, err
	}
	opts.CopyInode = nil
	if names, err := dst.Names("."); err != nil || len(names) > 0 {
		if err == nil {
			err = fmt.Errorf("%s is not empty", dst.Path())
		}
		return nil, err
	}
	floor, err := fsutil.CtimeFloor(dst)
	if err != nil {
		return nil, fmt.Errorf("read the ctime clock in %s: %w", dst.Path(), err)
	}
	rootSt, err := src.Stat()
	if err != nil {
		return nil, err
	}
	b := &builder{ctx: ctx, src: src, dst: dst, dev: rootSt.Dev, opts: opts, pre: true,
		sem: make(chan struct{}, opts.Workers), copies: map[inodeKey]*copyOnce{}}
	b.spawnDir("")
	items, warnings, err := b.run()
	if err != nil {
		return nil, err
	}
	slices.Sort(b.deferred)
	p := &Pass{b: b, root: rootSt, floor: floor, items: items, warnings: warnings, deferred: b.deferred, dirs: []int{-1}}
	// Indexed here, with writes going on, so that Finish does not scan
	// every item under the lock.
	for i := range items {
		switch {
		case items[i].IsDir():
			p.dirs = append(p.dirs, i)
		case items[i].Capture != "" && items[i].Capture != CaptureLink:
			p.clones = append(p.clones, i)
		}
	}
	return p, nil
}

// Dir states found by Finish's stat of every directory.
const (
	dirClean    = iota // nothing changed below the floor: the first pass's listing holds
	dirChanged         // entries may have changed: list again
	dirReplaced        // gone or another inode: its parent captures what stands there
)

// Finish brings the first pass's tree up to date, under the write lock:
// one stat per directory, a new listing of the directories that changed,
// then the files that need more than a link (copies, changed clones, and
// those copyInode chooses). It is called once.
func (p *Pass) Finish(ctx context.Context, copyInode func(dev, ino uint64) bool) error {
	if p.finished {
		return errors.New("hardlink: Finish called twice")
	}
	p.finished = true
	b := p.b
	b.ctx, b.pre, b.opts.CopyInode = ctx, false, copyInode
	b.copies = map[inodeKey]*copyOnce{} // pass-1 clones are not shared with new captures
	p.rescanned, p.dropped = map[string]bool{}, map[string]bool{}

	// 1. Stat every directory.
	dirs := p.dirs
	state := make([]uint8, len(dirs))
	err := par.Stripes(ctx, len(dirs), b.opts.Workers, func(_ context.Context, k int) error {
		if dirs[k] < 0 {
			st, err := b.src.Stat()
			if err != nil {
				return err
			}
			if st.CtimeNs >= p.floor {
				state[k] = dirChanged
			}
			return nil
		}
		it := &p.items[dirs[k]]
		st, err := b.src.Lstat(it.Rel)
		switch {
		case err != nil || !st.IsDir() || st.Ino != it.Ino || st.Dev != b.dev:
			// Whatever stands there now (or the error reading it) is for the
			// parent's new listing to find.
			state[k] = dirReplaced
		case st.CtimeNs >= p.floor:
			state[k] = dirChanged
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.stats.Dirs = len(dirs)
	var at map[string]int // dir path -> index in dirs, made if a dir was replaced
	for k, i := range dirs {
		if state[k] != dirReplaced {
			continue
		}
		if at == nil {
			at = make(map[string]int, len(dirs))
			for dk, di := range dirs {
				if di >= 0 {
					at[p.items[di].Rel] = dk
				} else {
					at[""] = dk
				}
			}
		}
		rel := p.items[i].Rel
		p.dropped[rel] = true
		if pk, ok := at[parentOf(rel)]; ok && state[pk] == dirClean {
			state[pk] = dirChanged // its ctime says so too, unless the clock was set back
		}
	}

	// 2. List the changed directories again, parents before their
	// subdirectories (paths sorted), skipping those a parent dropped.
	for k, i := range dirs {
		if state[k] != dirChanged {
			continue
		}
		rel := ""
		if i >= 0 {
			rel = p.items[i].Rel
		}
		if p.isDropped(rel) {
			continue
		}
		if err := p.rescan(rel, i); err != nil {
			return b.stop(err)
		}
	}

	// 3. Files in the directories kept as they were that need more than a
	// link, then the new captures' tasks.
	if err := p.recapture(); err != nil {
		return b.stop(err)
	}
	b.wg.Wait()
	if b.err != nil {
		return b.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Read last, just before writes resume: an inode whose ctime is below
	// it has not changed since (Result.LockFloor).
	if p.lockFloor, err = fsutil.CtimeFloor(b.dst); err != nil {
		return fmt.Errorf("read the ctime clock in %s: %w", b.dst.Path(), err)
	}
	return nil
}

func parentOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// isDropped reports whether rel or a directory above it was dropped.
func (p *Pass) isDropped(rel string) bool {
	if len(p.dropped) == 0 {
		return false
	}
	for {
		if p.dropped[rel] {
			return true
		}
		i := strings.LastIndexByte(rel, '/')
		if i < 0 {
			return false
		}
		rel = rel[:i]
	}
}

// children maps the names of dir's direct children among the first pass's
// items to their indexes. The items are sorted by path, so dir's subtree is
// the range from dir+"/" up to dir+"0" ('0' follows '/').
func (p *Pass) children(dir string) map[string]int {
	out := map[string]int{}
	lo, hi, prefix := 0, len(p.items), ""
	if dir != "" {
		prefix = dir + "/"
		lo, _ = slices.BinarySearchFunc(p.items, prefix, func(it Item, s string) int { return strings.Compare(it.Rel, s) })
		hi, _ = slices.BinarySearchFunc(p.items, dir+"0", func(it Item, s string) int { return strings.Compare(it.Rel, s) })
	}
	for i := lo; i < hi; i++ {
		name := p.items[i].Rel[len(prefix):]
		if !strings.Contains(name, "/") {
			out[name] = i
		}
	}
	return out
}

// holds reports whether the source entry cur (stat-ed under the lock) is
// still what the first pass captured as it: the same inode and, where the
// capture is a copy of its own (symlinks, clones), no change since the
// floor. A linked file needs no more: the link pins its inode, so the
// number cannot have been reused, and its bytes are the inode's.
func (p *Pass) holds(it *Item, cur fsutil.Stat) bool {
	switch {
	case it.IsDir():
		return cur.IsDir() && cur.Ino == it.Ino
	case it.IsSymlink():
		return cur.IsSymlink() && cur.Ino == it.Ino && cur.CtimeNs < p.floor
	case it.Capture == CaptureLink:
		return cur.IsRegular() && cur.Ino == it.Ino
	default:
		return cur.IsRegular() && cur.Ino == it.SrcIno && cur.CtimeNs < p.floor
	}
}

// unstage removes the first pass's capture of rel (name in dfd).
func (p *Pass) unstage(dfd int, rel, name string, isDir bool) error {
	p.dropped[rel] = true
	if isDir {
		return p.b.dst.RemoveAll(rel)
	}
	if err := unix.Unlinkat(dfd, name, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("unlink %s: %w", p.b.dst.Join(rel), err)
	}
	return nil
}

func baseOf(rel string) string { return rel[strings.LastIndexByte(rel, '/')+1:] }

// rescan lists the changed directory rel (item i; -1 for the root) again
// and brings its capture up to date: entries gone are removed, entries that
// no longer hold what was captured are captured again, new ones captured,
// and the items of those kept (and of rel itself) take their stat now.
func (p *Pass) rescan(rel string, i int) error {
	b := p.b
	pair, st, names, _, err := b.openPair(rel, true)
	if err != nil {
		if rel != "" && vanished(err) { // only without the lock
			p.dropped[rel] = true
			b.dirVanished(rel)
			return nil
		}
		return err
	}
	defer pair.release()
	p.rescanned[rel] = true
	p.stats.Rescanned++
	if i >= 0 {
		p.items[i] = item(rel, st, st, "", "") // the directory as it is now
	}
	old := p.children(rel)
	var fresh []string
	for _, name := range names {
		k, ok := old[name]
		if !ok {
			fresh = append(fresh, name)
			continue
		}
		delete(old, name)
		it := &p.items[k]
		cur, serr := fsutil.LstatAt(pair.sfd, name)
		if serr != nil && serr != unix.ENOENT {
			return fmt.Errorf("lstat %s: %w", b.src.Join(it.Rel), serr)
		}
		if serr == nil && !p.dropped[it.Rel] && p.holds(it, cur) {
			if it.Capture == CaptureLink {
				*it = item(it.Rel, cur, cur, CaptureLink, "")
				it.SrcNlink-- // the first pass's link is not the data dir's
			}
			continue
		}
		if err := p.unstage(pair.dfd, it.Rel, name, it.IsDir()); err != nil {
			return err
		}
		if serr == nil {
			fresh = append(fresh, name)
		}
	}
	for name, k := range old { // gone since the first pass
		if err := p.unstage(pair.dfd, p.items[k].Rel, name, p.items[k].IsDir()); err != nil {
			return err
		}
	}
	return b.batch(pair, rel, fresh, nil)
}

// Result is the capture after Finish, sorted by path.
func (p *Pass) Result() *Result {
	fresh, warnings, _ := p.b.run()
	items := p.items[:0] // compacted in place: a million items are not copied
	if len(p.dropped) == 0 {
		items = p.items
	} else {
		for k := range p.items {
			if !p.isDropped(p.items[k].Rel) {
				items = append(items, p.items[k])
			}
		}
	}
	p.stats.Recaptured = len(fresh)
	items = append(items, fresh...)
	sortItems(items)
	for _, w := range p.warnings {
		if !p.rescanned[parentOf(w.Rel)] && !p.isDropped(w.Rel) {
			warnings = append(warnings, w)
		}
	}
	slices.SortFunc(warnings, func(x, y Warning) int { return strings.Compare(x.Rel, y.Rel) })
	p.items, p.warnings = nil, nil
	return &Result{Items: items, Warnings: warnings, Stats: p.stats, LockFloor: p.lockFloor}
}
