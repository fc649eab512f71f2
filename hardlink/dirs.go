package hardlink

// The builder's directories: reading one, opening its source and staging
// sides as a pair, and what a directory that vanished mid-capture means.

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// joinAll returns join(dir, name) for every name, the strings sharing one
// allocation: a million captured paths are then some thousands of objects
// for the garbage collector to mark, not a million (at a million files the
// collector had spent more CPU than the capture).
func joinAll(dir string, names []string) []string {
	n := 0
	for _, name := range names {
		n += len(dir) + 1 + len(name)
	}
	buf := make([]byte, 0, n)
	out := make([]string, len(names))
	for i, name := range names {
		start := len(buf)
		if dir != "" {
			buf = append(append(buf, dir...), '/')
		}
		buf = append(buf, name...)
		if len(buf) > start {
			out[i] = unsafe.String(&buf[start], len(buf)-start)
		}
	}
	return out
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// dirPair is one directory open on both sides, shared by the batches of
// its entries; the last batch closes it.
type dirPair struct {
	sfd, dfd int
	refs     atomic.Int32
}

func (p *dirPair) release() {
	if p.refs.Add(-1) == 0 {
		unix.Close(p.sfd)
		unix.Close(p.dfd)
	}
}

// vanished reports errors of an entry that went away or changed type
// between two calls: a name that was a directory and is now a symlink
// (ELOOP, ENOTDIR), or that is gone (ENOENT).
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)
}

// readDir opens one source directory (through the root, no symlink in any
// component), records it, and schedules its entries in batches.
func (b *builder) readDir(rel string) error {
	pair, st, names, types, err := b.openPair(rel, true)
	if err != nil {
		if rel != "" && vanished(err) {
			b.dirVanished(rel)
			return nil
		}
		return err
	}
	if rel != "" {
		b.record(item(rel, st, st, "", ""))
	}
	// The pair owns the two descriptors from here on.
	nb := (len(names) + batchSize - 1) / batchSize
	if nb == 0 {
		pair.release()
		return nil
	}
	pair.refs.Store(int32(nb))
	for start := 0; start < len(names); start += batchSize {
		end := min(start+batchSize, len(names))
		batch, btypes := names[start:end], types[start:end]
		if end == len(names) {
			// The last batch runs in this task: no scheduling cost for small dirs.
			defer pair.release()
			return b.batch(pair, rel, batch, btypes)
		}
		b.spawn(func() error {
			defer pair.release()
			return b.batch(pair, rel, batch, btypes)
		})
	}
	return nil
}

// openPair opens the directory rel on both sides (through the roots, no
// symlink followed), with one reference, and lists the source side when
// list is set (each name with the type its listing gives). A mount point
// is refused: hard links cannot cross it.
func (b *builder) openPair(rel string, list bool) (*dirPair, fsutil.Stat, []string, []uint32, error) {
	dot := rel
	if dot == "" {
		dot = "."
	}
	sd, err := b.src.OpenDir(dot)
	if err != nil {
		return nil, fsutil.Stat{}, nil, nil, fmt.Errorf("open dir %s: %w", b.src.Join(rel), err)
	}
	st, err := sd.Stat()
	if err == nil && st.Dev != b.dev {
		err = fmt.Errorf("%s is a mount point (another filesystem inside the data dir): hard links cannot cross it; leave it out with --exclude %q", b.src.Join(rel), rel)
	}
	if err == nil && b.opts.Marker != "" && (st.UID == 0 || st.UID == uint32(os.Geteuid())) {
		if _, ok := fsutil.FdXattr(sd.Fd(), b.opts.Marker); ok {
			err = fmt.Errorf("%w: %s is marked %s; move it back where it belongs (or remove it, after checking it); nothing was captured", ErrMarked, b.src.Join(rel), b.opts.Marker)
		}
	}
	var names []string
	var types []uint32
	if err == nil && list {
		if names, types, err = sd.NamesAndTypes("."); err != nil {
			err = fmt.Errorf("read dir %s: %w", b.src.Join(rel), err)
		}
	}
	if err != nil {
		sd.Close()
		return nil, fsutil.Stat{}, nil, nil, err
	}
	dd, err := b.dst.OpenDir(dot)
	if err != nil {
		sd.Close()
		return nil, fsutil.Stat{}, nil, nil, fmt.Errorf("open dir %s: %w", b.dst.Join(rel), err)
	}
	pair := &dirPair{sfd: sd.Detach(), dfd: dd.Detach()}
	pair.refs.Store(1)
	return pair, st, names, types, nil
}

// dirVanished leaves out the directory rel, swapped for a symlink or
// removed since it was listed (never followed), with what was captured
// of it.
func (b *builder) dirVanished(rel string) {
	b.warn(rel, "directory vanished or was replaced while the tree was captured (never followed)")
	b.dst.RemoveAll(rel)
}

// batch captures some entries of one directory through its descriptors,
// so each syscall resolves one name, never a path. types, when not nil,
// are the names' types as their listing gave them.
func (b *builder) batch(pair *dirPair, rel string, names []string, types []uint32) error {
	sfd, dfd := pair.sfd, pair.dfd
	items := make([]Item, 0, len(names))
	rels := joinAll(rel, names)
	linkOnly := b.linkOnly()
	for k, name := range names {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		r := rels[k]
		// A file the listing calls regular, where nothing but a link can
		// capture it: linked by its name at once, without a stat first (a
		// third fewer calls a file). The link's own stat says what was
		// captured. Whatever the stat first would have kept out is kept
		// out here too: a mount over the name by linkat itself (EXDEV), a
		// name no longer a regular file by the link's stat (unlinked
		// again). Either, or any failure, goes the long way below, which
		// captures what stands there now or says why not.
		if linkOnly && types != nil && types[k] == unix.S_IFREG && (b.opts.Skip == nil || !b.opts.Skip(r, false)) &&
			(b.opts.Copy == nil || !b.opts.Copy(r)) {
			if unix.Linkat(sfd, name, dfd, name, 0) == nil {
				lst, err := b.statLink(dfd, r, name)
				if err != nil {
					return err
				}
				if lst.IsRegular() {
					it := item(r, lst, lst, CaptureLink, "")
					it.SrcNlink-- // the link just made is not the data dir's
					items = append(items, it)
					continue
				}
				if err := unix.Unlinkat(dfd, name, 0); err != nil {
					return fmt.Errorf("unlink %s: %w", b.dst.Join(r), err)
				}
			}
		}
		// No fresh attributes asked of a FUSE daemon: a mount is seen by
		// its Dev, and left out below without ever being asked anything.
		sst, err := fsutil.LstatAt(sfd, name)
		if err != nil {
			if err == unix.ENOENT {
				b.warn(r, "vanished while the tree was captured")
				continue
			}
			return fmt.Errorf("lstat %s: %w", b.src.Join(r), err)
		}
		isDir := sst.IsDir()
		if b.opts.Skip != nil && b.opts.Skip(r, isDir) {
			continue
		}
		switch {
		case !isDir && sst.Dev != b.dev:
			b.warn(r, otherFilesystem)
		case isDir && sst.Dev != b.dev:
			// Never opened: a FUSE daemon could hold the open forever.
			return fmt.Errorf("%s is a mount point (another filesystem inside the data dir): hard links cannot cross it; leave it out with --exclude %q", b.src.Join(r), r)
		case isDir:
			if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
				return fmt.Errorf("mkdir %s: %w", b.dst.Join(r), err)
			}
			// The directory's own task opens it (no symlink followed) and
			// records it.
			b.spawnDir(r)
		case sst.IsSymlink():
			target, err := fsutil.ReadlinkAt(sfd, name, sst.Size)
			if err != nil {
				if err == unix.ENOENT || err == unix.EINVAL {
					b.warn(r, "vanished or was replaced while the tree was captured")
					continue
				}
				return fmt.Errorf("readlink %s: %w", b.src.Join(r), err)
			}
			if err := unix.Symlinkat(target, dfd, name); err != nil {
				return fmt.Errorf("symlink %s: %w", b.dst.Join(r), err)
			}
			// The symlink's own owner, where permitted (it is never followed).
			unix.Fchownat(dfd, name, int(sst.UID), int(sst.GID), unix.AT_SYMLINK_NOFOLLOW)
			items = append(items, item(r, sst, sst, "", target))
		case sst.IsRegular() && b.foreign(sst, 0) != "":
			b.warn(r, b.foreign(sst, 0))
		case sst.IsRegular() && b.pre && b.opts.Copy != nil && b.opts.Copy(r):
			b.mu.Lock()
			b.deferred = append(b.deferred, r)
			b.mu.Unlock()
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
	b.record(items...)
	return nil
}
