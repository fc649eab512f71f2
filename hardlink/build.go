package hardlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

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

// Options tune Build.
type Options struct {
	// Skip reports whether the entry at rel (slash path) is left out, with
	// its subtree when it is a directory.
	Skip func(rel string, isDir bool) bool
	// Copy reports whether the regular file at rel is copied (or, in auto and
	// reflink modes, cloned) instead of linked: for files the application
	// rewrites in place.
	Copy func(rel string) bool
	// LinkMode is LinkModeLink (default), LinkModeReflink or LinkModeAuto.
	LinkMode string
	// Workers bounds parallel tasks; 0 means par.DefaultWorkers.
	Workers int
}

// Item is one captured entry.
type Item struct {
	Rel     string      // slash path relative to the tree root
	Stat    fsutil.Stat // the captured entry: the shared inode for links, the copy for copies
	Capture string      // files: link, copy or reflink
	Target  string      // symlinks: the link's target
	SrcStat fsutil.Stat // the source entry (same as Stat for links)
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
	src, dst string
	opts     Options
	sem      chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	items    []Item
	warnings []Warning
	err      error
	copies   map[inodeKey]*copyOnce
	noClone  bool // auto mode found FICLONE unsupported
}

// Build captures the tree at src into dst, which must not exist. Both must be
// on one filesystem for hard links. On error dst may hold a partial tree: the
// caller removes it.
func Build(ctx context.Context, src, dst string, opts Options) (*Result, error) {
	if opts.LinkMode == "" {
		opts.LinkMode = LinkModeLink
	}
	switch opts.LinkMode {
	case LinkModeLink, LinkModeReflink, LinkModeAuto:
	default:
		return nil, fmt.Errorf("unknown link mode %q (want link, reflink or auto)", opts.LinkMode)
	}
	if opts.Workers <= 0 {
		opts.Workers = par.DefaultWorkers()
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return nil, err
	}
	b := &builder{ctx: ctx, src: src, dst: dst, opts: opts,
		sem: make(chan struct{}, opts.Workers), copies: map[inodeKey]*copyOnce{}}
	b.spawnDir("")
	b.wg.Wait()
	if b.err != nil {
		return nil, b.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.Slice(b.items, func(i, j int) bool { return b.items[i].Rel < b.items[j].Rel })
	sort.Slice(b.warnings, func(i, j int) bool { return b.warnings[i].Rel < b.warnings[j].Rel })
	return &Result{Items: b.items, Warnings: b.warnings}, nil
}

func (b *builder) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
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

// spawn runs fn as a task once a worker slot is free. A task never waits for
// the tasks it spawns, so the bounded semaphore cannot deadlock.
func (b *builder) spawn(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sem <- struct{}{}
		defer func() { <-b.sem }()
		if b.failed() {
			return
		}
		fn()
	}()
}

func (b *builder) spawnDir(rel string) {
	b.spawn(func() {
		if err := b.readDir(rel); err != nil {
			b.fail(err)
		}
	})
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (b *builder) abs(root, rel string) string {
	if rel == "" {
		return root
	}
	return root + "/" + rel
}

// readDir lists one source directory and schedules its entries in batches.
func (b *builder) readDir(rel string) error {
	f, err := os.Open(b.abs(b.src, rel))
	if err != nil {
		return fmt.Errorf("open dir %s: %w", b.abs(b.src, rel), err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read dir %s: %w", b.abs(b.src, rel), err)
	}
	for start := 0; start < len(names); start += batchSize {
		end := min(start+batchSize, len(names))
		batch := names[start:end]
		if end == len(names) {
			// The last batch runs in this task: no scheduling cost for small dirs.
			return b.batch(rel, batch)
		}
		b.spawn(func() {
			if err := b.batch(rel, batch); err != nil {
				b.fail(err)
			}
		})
	}
	return nil
}

// batch captures some entries of one directory using directory fds, so each
// syscall resolves one name instead of a whole path.
func (b *builder) batch(rel string, names []string) error {
	sfd, err := unix.Open(b.abs(b.src, rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", b.abs(b.src, rel), err)
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(b.abs(b.dst, rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", b.abs(b.dst, rel), err)
	}
	defer unix.Close(dfd)
	items := make([]Item, 0, len(names))
	for _, name := range names {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		r := join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				b.warn(r, "vanished while the tree was captured")
				continue
			}
			return fmt.Errorf("lstat %s: %w", b.abs(b.src, r), err)
		}
		sst := statOf(&st)
		isDir := sst.IsDir()
		if b.opts.Skip != nil && b.opts.Skip(r, isDir) {
			continue
		}
		switch {
		case isDir:
			if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
				return fmt.Errorf("mkdir %s: %w", b.abs(b.dst, r), err)
			}
			items = append(items, Item{Rel: r, Stat: sst, SrcStat: sst})
			b.spawnDir(r)
		case sst.IsSymlink():
			target, err := readlinkat(sfd, name, sst.Size)
			if err != nil {
				if err == unix.ENOENT {
					b.warn(r, "vanished while the tree was captured")
					continue
				}
				return fmt.Errorf("readlink %s: %w", b.abs(b.src, r), err)
			}
			if err := unix.Symlinkat(target, dfd, name); err != nil {
				return fmt.Errorf("symlink %s: %w", b.abs(b.dst, r), err)
			}
			items = append(items, Item{Rel: r, Stat: sst, SrcStat: sst, Target: target})
		case sst.IsRegular():
			it, skip, err := b.file(sfd, dfd, r, name, sst)
			if err != nil {
				return err
			}
			if !skip {
				items = append(items, it)
			}
		default:
			b.warn(r, fmt.Sprintf("%s skipped: only files, dirs and symlinks are captured", sst.TypeName()))
		}
	}
	b.mu.Lock()
	b.items = append(b.items, items...)
	b.mu.Unlock()
	return nil
}

func (b *builder) file(sfd, dfd int, rel, name string, sst fsutil.Stat) (Item, bool, error) {
	private := b.opts.Copy != nil && b.opts.Copy(rel)
	clone := b.opts.LinkMode == LinkModeReflink || (b.opts.LinkMode == LinkModeAuto && !b.cloneUnsupported())
	if !private && !clone {
		if err := unix.Linkat(sfd, name, dfd, name, 0); err != nil {
			if err == unix.ENOENT {
				b.warn(rel, "vanished while the tree was captured")
				return Item{}, true, nil
			}
			if err == unix.EXDEV {
				return Item{}, false, fmt.Errorf("link %s: the backups dir is on another filesystem than the data dir", b.abs(b.src, rel))
			}
			return Item{}, false, fmt.Errorf("link %s: %w", b.abs(b.src, rel), err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return Item{}, false, fmt.Errorf("lstat %s: %w", b.abs(b.dst, rel), err)
		}
		// Stat the link, not the source: if the name was replaced between the
		// two calls, the link is what the snapshot holds.
		lst := statOf(&st)
		return Item{Rel: rel, Stat: lst, SrcStat: lst, Capture: CaptureLink}, false, nil
	}
	// A private copy. Names of one inode inside the data dir share one copy.
	key := inodeKey{sst.Dev, sst.Ino}
	b.mu.Lock()
	c, ok := b.copies[key]
	if !ok {
		c = &copyOnce{}
		b.copies[key] = c
	}
	b.mu.Unlock()
	c.once.Do(func() {
		c.rel = rel
		c.st, c.capture, c.err = b.copyFile(sfd, dfd, rel, name, sst, private)
	})
	if c.err != nil {
		return Item{}, false, c.err
	}
	if c.rel != rel {
		if err := unix.Linkat(unix.AT_FDCWD, b.abs(b.dst, c.rel), dfd, name, 0); err != nil {
			return Item{}, false, fmt.Errorf("link %s: %w", b.abs(b.dst, rel), err)
		}
	}
	return Item{Rel: rel, Stat: c.st, SrcStat: sst, Capture: c.capture}, false, nil
}

func (b *builder) cloneUnsupported() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.noClone
}

// copyFile makes a private copy of one file: FICLONE where allowed and
// supported, else a kernel copy. The copy keeps the source's permission bits
// and mtime, so a restore can hand it back unchanged.
func (b *builder) copyFile(sfd, dfd int, rel, name string, sst fsutil.Stat, private bool) (fsutil.Stat, string, error) {
	in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("open %s: %w", b.abs(b.src, rel), err)
	}
	inf := os.NewFile(uintptr(in), b.abs(b.src, rel))
	defer inf.Close()
	out, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("create %s: %w", b.abs(b.dst, rel), err)
	}
	outf := os.NewFile(uintptr(out), b.abs(b.dst, rel))
	defer outf.Close()
	capture := CaptureCopy
	cloned := false
	if b.opts.LinkMode != LinkModeLink && !b.cloneUnsupported() {
		err := unix.IoctlFileClone(out, in)
		switch {
		case err == nil:
			cloned, capture = true, CaptureReflink
		case b.opts.LinkMode == LinkModeReflink:
			return fsutil.Stat{}, "", fmt.Errorf("reflink %s: %w (use --link-mode auto or link on this filesystem)", b.abs(b.src, rel), err)
		case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY):
			b.mu.Lock()
			b.noClone = true
			b.mu.Unlock()
		default:
			return fsutil.Stat{}, "", fmt.Errorf("reflink %s: %w", b.abs(b.src, rel), err)
		}
	}
	if !cloned {
		if !private {
			// auto mode on a filesystem without reflinks: a plain link, not a copy.
			outf.Close()
			unix.Unlinkat(dfd, name, 0)
			if err := unix.Linkat(sfd, name, dfd, name, 0); err != nil {
				return fsutil.Stat{}, "", fmt.Errorf("link %s: %w", b.abs(b.src, rel), err)
			}
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fsutil.Stat{}, "", fmt.Errorf("lstat %s: %w", b.abs(b.dst, rel), err)
			}
			return statOf(&st), CaptureLink, nil
		}
		if _, err := io.Copy(outf, inf); err != nil {
			return fsutil.Stat{}, "", fmt.Errorf("copy %s: %w", b.abs(b.src, rel), err)
		}
	}
	// The copy must describe the source as it was: read the source's stat
	// again now that the bytes are taken, so a file written to meanwhile (no
	// write lock held) records the size and mtime that go with the copy.
	var now unix.Stat_t
	if err := unix.Fstat(in, &now); err != nil {
		return fsutil.Stat{}, "", err
	}
	src := statOf(&now)
	if err := unix.Fchmod(out, src.Perm()); err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("chmod %s: %w", b.abs(b.dst, rel), err)
	}
	_ = unix.Fchown(out, int(src.UID), int(src.GID)) // where permitted
	ts := unix.NsecToTimespec(src.MtimeNs)
	if err := unix.UtimesNanoAt(dfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("set mtime %s: %w", b.abs(b.dst, rel), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(out, &st); err != nil {
		return fsutil.Stat{}, "", err
	}
	return statOf(&st), capture, nil
}

func readlinkat(dirfd int, name string, size int64) (string, error) {
	n := int(size) + 1
	if n < 256 {
		n = 256
	}
	for {
		buf := make([]byte, n)
		got, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if got < n {
			return string(buf[:got]), nil
		}
		n *= 2
	}
}

func statOf(st *unix.Stat_t) fsutil.Stat {
	return fsutil.Stat{
		Dev: uint64(st.Dev), Ino: st.Ino, Mode: st.Mode, Nlink: uint64(st.Nlink),
		UID: st.Uid, GID: st.Gid, Size: st.Size,
		MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(),
	}
}
