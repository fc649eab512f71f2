package hardlink

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// Capturing one regular file: a hard link, or a copy or clone (private
// copies for --copy globs and reflink mode), checked to be what was listed.

// linkAt hard-links the entry name of sfd into dfd and returns the link's
// stat. The link is of whatever stands at name now: anything but a regular
// file (a symlink, fifo or device swapped in since it was listed) is
// unlinked again and left out (skip), so nothing but a regular file of the
// data dir ever enters the tree as a file.
func (b *builder) linkAt(sfd, dfd int, rel, name string) (fsutil.Stat, bool, error) {
	if err := unix.Linkat(sfd, name, dfd, name, 0); err != nil {
		if err == unix.ENOENT {
			b.warn(rel, "vanished while the tree was captured")
			return fsutil.Stat{}, true, nil
		}
		if err == unix.EXDEV {
			if st, serr := fsutil.LstatAt(sfd, name); serr == nil && st.Dev != b.dev {
				b.warn(rel, otherFilesystem) // mounted over since it was listed
				return fsutil.Stat{}, true, nil
			}
			return fsutil.Stat{}, false, fmt.Errorf("link %s: the backups dir is on another filesystem than the data dir", b.src.Join(rel))
		}
		return fsutil.Stat{}, false, fmt.Errorf("link %s: %w", b.src.Join(rel), err)
	}
	return b.linked(dfd, rel, name)
}

// linked checks the link just made at name in dfd and returns its stat: a
// link of anything but a regular file, or of another owner's file brought
// in from outside, is unlinked again and left out (skip).
func (b *builder) linked(dfd int, rel, name string) (fsutil.Stat, bool, error) {
	// Stat the link, not the source: if the name was replaced between the
	// two calls, the link is what the snapshot holds.
	lst, err := b.statLink(dfd, rel, name)
	if err != nil {
		return fsutil.Stat{}, false, err
	}
	if !lst.IsRegular() {
		unix.Unlinkat(dfd, name, 0)
		b.warn(rel, fmt.Sprintf("replaced by a %s while the tree was captured; left out", lst.TypeName()))
		return fsutil.Stat{}, true, nil
	}
	// The listing's stat said whose the file was; the link is of whatever
	// stood at the name when it was made. Check the inode linked (the link
	// just made is one of its links), and drop it if it is another owner's
	// with links elsewhere: a name swapped in between must not bring a
	// file from outside the data dir.
	if reason := b.foreign(lst, 1); reason != "" {
		unix.Unlinkat(dfd, name, 0)
		b.warn(rel, reason)
		return fsutil.Stat{}, true, nil
	}
	return lst, false, nil
}

// statLink returns the stat of the link just made at name in dfd.
func (b *builder) statLink(dfd int, rel, name string) (fsutil.Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsutil.Stat{}, fmt.Errorf("lstat %s: %w", b.dst.Join(rel), err)
	}
	return statOf(&st), nil
}

// otherFilesystem is the warning for an entry on another filesystem.
const otherFilesystem = "left out: on another filesystem (a FUSE or bind mount inside the data dir): never linked, copied or read"

// foreign says why st, a file with ours extra links of hotsnap's own, is
// left out: another owner's than the data dir's, with links elsewhere, on
// a system where users may hard-link files they cannot read. "" when it
// is not.
func (b *builder) foreign(st fsutil.Stat, ours uint64) string {
	if b.opts.ForeignLinksOf == nil || st.UID == *b.opts.ForeignLinksOf || st.Nlink-ours <= 1 {
		return ""
	}
	return fmt.Sprintf("left out: a file of uid %d with %d links, in a data dir of uid %d, on a system that lets users hard-link files they cannot read (fs.protected_hardlinks=0)", st.UID, st.Nlink-ours, *b.opts.ForeignLinksOf)
}

func (b *builder) file(sfd, dfd int, rel, name string, sst fsutil.Stat) (Item, bool, error) {
	private := (b.opts.Copy != nil && b.opts.Copy(rel)) || (b.opts.CopyInode != nil && b.opts.CopyInode(sst.Dev, sst.Ino))
	clone := b.opts.LinkMode == LinkModeReflink || (b.opts.LinkMode == LinkModeAuto && !b.cloneUnsupported())
	if !private && !clone {
		lst, skip, err := b.linkAt(sfd, dfd, rel, name)
		if skip || err != nil {
			return Item{}, skip, err
		}
		it := item(rel, lst, lst, CaptureLink, "")
		it.SrcNlink-- // the link just made is not the data dir's
		return it, false, nil
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
		c.st, c.capture, c.err = b.copyFile(sfd, dfd, rel, name, private)
	})
	if c.err != nil {
		return Item{}, false, c.err
	}
	if c.capture == "" {
		return Item{}, true, nil // left out (see copyFile)
	}
	if c.rel != rel {
		if err := b.dst.Link(c.rel, b.dst, rel); err != nil {
			return Item{}, false, err
		}
	}
	return item(rel, c.st, sst, c.capture, ""), false, nil
}

// linkOnly says whether every regular file this pass captures is a hard
// link whatever its stat says: no copies by inode, no foreign-link check
// on the source, no clone to try.
func (b *builder) linkOnly() bool {
	if b.opts.CopyInode != nil || b.opts.ForeignLinksOf != nil {
		return false
	}
	return b.opts.LinkMode == LinkModeLink || (b.opts.LinkMode == LinkModeAuto && b.cloneUnsupported())
}

func (b *builder) cloneUnsupported() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.noClone
}

// copyFile makes a private copy of one file: FICLONE where allowed and
// supported, else a kernel copy. The copy keeps the source's owner, then
// permission bits (in that order, so setuid and setgid survive), and mtime,
// so a restore can hand it back unchanged. The source is opened only once
// it is proven a regular file; anything else in its place is left out (an
// empty capture).
func (b *builder) copyFile(sfd, dfd int, rel, name string, private bool) (fsutil.Stat, string, error) {
	// Opened on the data dir's filesystem only: a mount over the name is
	// never read, and its owner and mode never taken.
	inf, _, err := fsutil.OpenRegularOnDev(sfd, name, b.src.Join(rel), b.dev)
	if err != nil {
		if errors.Is(err, fsutil.ErrOtherFilesystem) {
			b.warn(rel, otherFilesystem)
			return fsutil.Stat{}, "", nil
		}
		if errors.Is(err, fsutil.ErrNotRegular) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
			b.warn(rel, "vanished or was replaced while the tree was captured; left out")
			return fsutil.Stat{}, "", nil
		}
		return fsutil.Stat{}, "", err
	}
	defer inf.Close()
	in := int(inf.Fd())
	out, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("create %s: %w", b.dst.Join(rel), err)
	}
	outf := os.NewFile(uintptr(out), b.dst.Join(rel))
	defer outf.Close()
	capture := CaptureCopy
	cloned := false
	if b.opts.LinkMode != LinkModeLink && !b.cloneUnsupported() {
		err := unix.IoctlFileClone(out, in)
		switch {
		case err == nil:
			cloned, capture = true, CaptureReflink
		case b.opts.LinkMode == LinkModeReflink:
			return fsutil.Stat{}, "", fmt.Errorf("reflink %s: %w (use --link-mode auto or link on this filesystem)", b.src.Join(rel), err)
		case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY):
			b.mu.Lock()
			b.noClone = true
			b.mu.Unlock()
		default:
			return fsutil.Stat{}, "", fmt.Errorf("reflink %s: %w", b.src.Join(rel), err)
		}
	}
	if !cloned {
		if !private {
			// auto mode on a filesystem without reflinks: a plain link, not a copy.
			outf.Close()
			unix.Unlinkat(dfd, name, 0)
			lst, skip, err := b.linkAt(sfd, dfd, rel, name)
			if skip || err != nil {
				return fsutil.Stat{}, "", err
			}
			return lst, CaptureLink, nil
		}
		if _, err := io.Copy(outf, inf); err != nil {
			return fsutil.Stat{}, "", fmt.Errorf("copy %s: %w", b.src.Join(rel), err)
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
	if reason := b.foreign(src, 0); reason != "" {
		b.warn(rel, reason) // swapped for another owner's file since it was listed
		outf.Close()
		unix.Unlinkat(dfd, name, 0)
		return fsutil.Stat{}, "", nil
	}
	if err := fsutil.SetOwnerMode(out, src.UID, src.GID, src.Perm()); err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("chmod %s: %w", b.dst.Join(rel), err)
	}
	if err := fsutil.SetMtimeFd(out, src.MtimeNs); err != nil {
		return fsutil.Stat{}, "", fmt.Errorf("set mtime %s: %w", b.dst.Join(rel), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(out, &st); err != nil {
		return fsutil.Stat{}, "", err
	}
	return statOf(&st), capture, nil
}

func statOf(st *unix.Stat_t) fsutil.Stat {
	return fsutil.Stat{
		Dev: uint64(st.Dev), Ino: st.Ino, Mode: st.Mode, Nlink: uint64(st.Nlink),
		UID: st.Uid, GID: st.Gid, Size: st.Size,
		MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(),
	}
}
