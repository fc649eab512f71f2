package hardlink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
)

// Link modes: how regular files not chosen for copying are captured.
const (
	LinkModeLink    = "link"    // hard link (the default)
	LinkModeReflink = "reflink" // FICLONE every file; fail where unsupported
	LinkModeAuto    = "auto"    // FICLONE where supported, hard link elsewhere
)

// Capture modes, as recorded in manifests.
const (
	CaptureLink    = "link"
	CaptureCopy    = "copy"
	CaptureReflink = "reflink"
)

// batchSize is how many entries of one directory one task handles: big
// directories are split so both cores work on them.
const batchSize = 128

// Options tune Build and Pre.
type Options struct {
	// Skip reports whether the entry at rel (slash path) is left out, with
	// its subtree when it is a directory.
	Skip func(rel string, isDir bool) bool
	// Copy reports whether the regular file at rel is copied (or, in auto and
	// reflink modes, cloned) instead of linked: for files the application
	// rewrites in place.
	Copy func(rel string) bool
	// CopyInode, when set, reports whether the regular file of that device
	// and inode is copied (or cloned) instead of linked, whatever its name:
	// for files the stopped application holds open for writing. Only the
	// locked pass uses it (Build passes it to Finish; Pre ignores it).
	CopyInode func(dev, ino uint64) bool
	// LinkMode is LinkModeLink (default), LinkModeReflink or LinkModeAuto.
	LinkMode string
	// Workers bounds parallel tasks; 0 means defaults.Workers.
	Workers int
	// ForeignLinksOf, when set, is the data dir owner's uid: a regular file
	// with several links that someone else owns is left out, unopened and
	// unlinked. Set it when the kernel does not stop users from hard-linking
	// files they cannot read (fs.protected_hardlinks=0): such a link in the
	// data dir may be another user's file brought in from outside.
	ForeignLinksOf *uint32
	// Marker, when set, is the extended attribute hotsnap sets on its own
	// directories (the backups dir, the private state dir). A directory of
	// the tree that carries it and is the invoking user's or root's means
	// a directory of hotsnap's was moved inside the data dir: the capture
	// fails with ErrMarked rather than take old snapshots or hotsnap's
	// state as the application's data.
	Marker string
	// OnEntries, when set, is told how many entries were captured and
	// their bytes, as they are (progress; called from the workers).
	OnEntries func(n int, bytes int64)
}

// ErrMarked is returned when the tree holds a directory of hotsnap's own.
var ErrMarked = errors.New("a directory of hotsnap's own (its backups or state dir) was moved inside the data dir")

// Item is one captured entry, kept compact: a capture of a million files
// holds a million of them.
type Item struct {
	Rel    string // slash path relative to the tree root
	Target string // symlinks: the link's target
	// The captured entry: the shared inode for links, the copy for copies.
	Dev, Ino      uint64
	Size, MtimeNs int64
	// Mode is the captured entry's st_mode (type and permission bits); a
	// copy carries the source's permission bits and owner.
	Mode     uint32
	UID, GID uint32
	// SrcIno is the source's inode (Ino itself for links and symlinks; a
	// copy's source for copies): the locked pass knows by it whether a name
	// still holds what the first pass captured.
	SrcIno uint64
	// SrcNlink is the source's link count before the capture (a link
	// group needs several links).
	SrcNlink uint32
	Capture  string // files: link, copy or reflink (constants: no allocation)
}

// IsDir, IsSymlink and Perm read Mode.
func (it Item) IsDir() bool     { return it.Mode&unix.S_IFMT == unix.S_IFDIR }
func (it Item) IsSymlink() bool { return it.Mode&unix.S_IFMT == unix.S_IFLNK }
func (it Item) Perm() uint32    { return it.Mode & 0o7777 }

// item makes the Item of rel captured as st (the source's own stat src).
func item(rel string, st, src fsutil.Stat, capture, target string) Item {
	return Item{Rel: rel, Target: target, Dev: st.Dev, Ino: st.Ino, Size: st.Size, MtimeNs: st.MtimeNs,
		Mode: st.Mode&unix.S_IFMT | src.Perm(), UID: src.UID, GID: src.GID, SrcIno: src.Ino,
		SrcNlink: uint32(min(src.Nlink, 1<<32-1)), Capture: capture}
}

// Warning is an entry that was not captured, with the reason.
type Warning struct {
	Rel    string
	Reason string
}

// Result is what Build captured, sorted by path.
type Result struct {
	Items    []Item
	Warnings []Warning
	Stats    FinishStats
	// LockFloor is a ctime read at the end of Finish (under the write lock,
	// when there is one): a file whose ctime is below it has not changed
	// since, so its stat then is its stat at the lock.
	LockFloor int64
}

type inodeKey struct{ dev, ino uint64 }

type copyOnce struct {
	once    sync.Once
	rel     string // where the first copy was made (in dst)
	st      fsutil.Stat
	capture string
	err     error
}

type builder struct {
	ctx      context.Context
	src, dst *fsutil.Dir
	dev      uint64 // the source root's filesystem
	opts     Options
	sem      chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	batches  [][]Item // each batch's items; joined once at the end
	warnings []Warning
	err      error
	copies   map[inodeKey]*copyOnce
	noClone  bool // auto mode found FICLONE unsupported

	// pre is set in the first pass of a two-pass capture (pass.go): files
	// chosen for copying by name are not copied yet but listed in deferred,
	// for the locked pass.
	pre      bool
	deferred []string
}

// Build captures the tree below src into dst, an existing empty directory
// on the same filesystem (for hard links), in one pass: Pre, then Finish
// and Result at once. Every directory of src is opened through its parent
// with no symlink followed, and every entry is captured as what it is when
// it is reached: a directory swapped for a symlink, or a file swapped for
// anything but a regular file, is left out with a warning, never followed.
// On error dst may hold a partial tree: the caller removes it.
func Build(ctx context.Context, src, dst *fsutil.Dir, opts Options) (*Result, error) {
	p, err := Pre(ctx, src, dst, opts)
	if err != nil {
		return nil, err
	}
	if err := p.Finish(ctx, opts.CopyInode); err != nil {
		return nil, err
	}
	return p.Result(), nil
}

// checkOptions fills in the defaults of opts and refuses a bad link mode.
func checkOptions(opts Options) (Options, error) {
	if opts.LinkMode == "" {
		opts.LinkMode = LinkModeLink
	}
	switch opts.LinkMode {
	case LinkModeLink, LinkModeReflink, LinkModeAuto:
	default:
		return opts, fmt.Errorf("unknown link mode %q (want link, reflink or auto)", opts.LinkMode)
	}
	if opts.Workers <= 0 {
		opts.Workers = defaults.Workers()
	}
	return opts, nil
}

// run waits for every task, then hands over the items recorded since the
// last run, sorted by path, and the warnings.
func (b *builder) run() ([]Item, []Warning, error) {
	b.wg.Wait()
	if b.err != nil {
		return nil, nil, b.err
	}
	if err := b.ctx.Err(); err != nil {
		return nil, nil, err
	}
	n := 0
	for _, bt := range b.batches {
		n += len(bt)
	}
	items := make([]Item, 0, n) // one exact allocation: a million items is no reason to double
	for i, bt := range b.batches {
		items = append(items, bt...)
		b.batches[i] = nil
	}
	b.batches = nil
	sortItems(items)
	warnings := b.warnings
	b.warnings = nil
	return items, warnings, nil
}

func sortItems(items []Item) {
	slices.SortFunc(items, func(x, y Item) int { return strings.Compare(x.Rel, y.Rel) })
}

func (b *builder) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
}

// stop fails the build with err and waits for the tasks already spawned
// (they see the failure and end): nobody may use the directories they
// work in, or close them, before they are done.
func (b *builder) stop(err error) error {
	b.fail(err)
	b.wg.Wait()
	return err
}

func (b *builder) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil || b.ctx.Err() != nil
}

func (b *builder) warn(rel, reason string) {
	b.mu.Lock()
	b.warnings = append(b.warnings, Warning{Rel: rel, Reason: reason})
	b.mu.Unlock()
}

func (b *builder) record(items ...Item) {
	if len(items) == 0 {
		return
	}
	b.mu.Lock()
	b.batches = append(b.batches, items)
	b.mu.Unlock()
	if b.opts.OnEntries != nil {
		var n int64
		for i := range items {
			n += items[i].Size
		}
		b.opts.OnEntries(len(items), n)
	}
}

// spawn runs fn as a task once a worker slot is free. A task never waits for
// the tasks it spawns, so the bounded semaphore cannot deadlock. A panic in
// a task becomes the build's error.
func (b *builder) spawn(fn func() error) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sem <- struct{}{}
		defer func() { <-b.sem }()
		if b.failed() {
			return
		}
		if err := par.Safely(fn); err != nil {
			b.fail(err)
		}
	}()
}

func (b *builder) spawnDir(rel string) {
	b.spawn(func() error { return b.readDir(rel) })
}
