package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
)

// Problem kinds reported by VerifyTree.
const (
	ProblemMissing  = "missing"  // in the manifest, not in the tree
	ProblemExtra    = "extra"    // in the tree, not in the manifest
	ProblemType     = "type"     // different file type
	ProblemSize     = "size"     // different size
	ProblemModified = "modified" // size or mtime changed: modified in place
	ProblemHash     = "hash"     // content differs from the recorded BLAKE3
	ProblemMode     = "mode"     // permission bits differ (setuid, setgid and sticky included)
	ProblemOwner    = "owner"    // uid or gid differ
	ProblemTarget   = "target"   // symlink target differs
	ProblemRead     = "read"     // could not be read
	// ProblemUnproven: changed (its ctime moved) since a proof said the
	// tree was whole; see VerifyOptions.ProvenBefore.
	ProblemUnproven = "unproven"
)

// Problem is one difference between a tree and its manifest.
type Problem struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	// Type is the entry's type: the manifest's, or the tree's for an
	// extra entry ("" when unknown: an entry that could not be read).
	Type string `json:"type,omitempty"`
}

// String is the problem as one line of text, its path quoted (fsutil.Quote).
func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s", fsutil.Quote(p.Path), p.Kind, fsutil.QuoteText(p.Detail))
}

// VerifyOptions tune VerifyTree.
type VerifyOptions struct {
	// Fast compares stat only (type, size, mtime, mode, target); the default
	// also re-hashes every file.
	Fast bool
	// Workers bounds the parallel opens, stats and hashes of files; 0
	// means twice defaults.Workers.
	Workers int
	// OnHashed, when set, is called after each file is hashed with its size.
	OnHashed func(bytes int64)
	// Trusted says no one but hotsnap's user can change the tree (a backups
	// dir of its own): files are opened once (non-blocking, so a fifo
	// never blocks), without first proving that the name is a regular
	// file; the open file's fstat then must say it is one.
	Trusted bool
	// Skip, when set, leaves out the entry at rel (with its subtree): the
	// live data dir's .hotsnap and backups, which no manifest holds.
	Skip func(rel string) bool
	// Only, when set, checks just the entries it accepts, on both sides;
	// a directory it refuses must have nothing it accepts below it (a
	// partial restore checks what it puts back).
	Only func(rel string) bool
	// ProvenBefore, when set (a ctime in ns), trusts the content of every
	// entry whose ctime is below it, because a proof recorded that the
	// tree was whole when the kernel's clock read that: such entries are
	// checked by stat (as Fast), and every other entry is reported
	// ProblemUnproven. Any change to an entry (content, owner, mode,
	// links, times) moves its ctime to the time of the change. A file with
	// more links than its link group has names in the manifest (one for a
	// file of no group) is unproven too: another name (the live data's,
	// for a file a download took from a local snapshot by link) may have
	// written it before the mark.
	ProvenBefore int64
	// LinkGroups, with ProvenBefore, holds the number of names of each
	// link group of the manifest (LinkGroupSizes).
	LinkGroups map[int]uint64
}

// VerifyResult is what VerifyTree found.
type VerifyResult struct {
	Entries     int       `json:"entries"`
	BytesHashed int64     `json:"bytesHashed"`
	Problems    []Problem `json:"problems"`
}

// OK reports whether the tree matched.
func (r *VerifyResult) OK() bool { return len(r.Problems) == 0 }

// Err returns nil when the tree matched, else an error wrapping ErrVerifyFailed
// that counts the problems and names the first few.
func (r *VerifyResult) Err() error {
	if r.OK() {
		return nil
	}
	msg := fmt.Sprintf("%d difference(s)", len(r.Problems))
	for i, p := range r.Problems {
		if i == 5 {
			msg += "; ..."
			break
		}
		msg += "; " + p.String()
	}
	return fmt.Errorf("%w: %s", ErrVerifyFailed, msg)
}

// VerifyTree compares the tree below root with the manifest mr reads and
// reports every difference, sorted by path. It walks the tree in the
// manifest's order and reads the manifest as a stream, merging the two, so
// memory does not grow with the number of entries; files are hashed by
// Workers in parallel as the walk goes. It never follows symlinks (every
// entry is reached through directory descriptors) and never writes. The
// error is for failures to run at all: a cancelled ctx, or a manifest that
// turns out corrupt (its seal is proven when its end is read); differences
// are in the result.
func VerifyTree(ctx context.Context, root *fsutil.Dir, mr *Reader, opts VerifyOptions) (*VerifyResult, error) {
	res := &VerifyResult{}
	var mu sync.Mutex
	add := func(p Problem) {
		mu.Lock()
		res.Problems = append(res.Problems, p)
		mu.Unlock()
	}
	// check compares an entry's stat with its manifest entry and says
	// whether its bytes are to be hashed (it is the file it should be).
	check := func(e *Entry, st fsutil.Stat) bool {
		p := string(e.Path)
		if opts.ProvenBefore != 0 {
			if why := Unproven(e, st, opts.ProvenBefore, opts.LinkGroups[e.LinkGroup]); why != "" {
				add(Problem{p, ProblemUnproven, why, e.Type})
				return false
			}
		}
		if got := st.TypeName(); got != e.Type {
			add(Problem{p, ProblemType, fmt.Sprintf("manifest says %s, tree has %s", e.Type, got), got})
			return false
		}
		if st.Perm() != e.Mode && e.Type != TypeSymlink {
			add(Problem{p, ProblemMode, fmt.Sprintf("mode %04o, manifest says %04o", st.Perm(), e.Mode), e.Type})
		}
		if st.UID != e.UID || st.GID != e.GID {
			add(Problem{p, ProblemOwner, fmt.Sprintf("owner %d:%d, manifest says %d:%d", st.UID, st.GID, e.UID, e.GID), e.Type})
		}
		switch e.Type {
		case TypeSymlink:
			target, err := root.Readlink(p)
			if err != nil {
				add(Problem{p, ProblemRead, err.Error(), e.Type})
			} else if Name(target) != e.Target {
				add(Problem{p, ProblemTarget, fmt.Sprintf("points to %q, manifest says %q", target, string(e.Target)), e.Type})
			}
		case TypeFile:
			if st.Size != e.Size {
				add(Problem{p, ProblemSize, fmt.Sprintf("%d bytes, manifest says %d", st.Size, e.Size), e.Type})
			} else if st.MtimeNs != e.MtimeNs {
				add(Problem{p, ProblemModified, fmt.Sprintf("mtime %d, manifest says %d: modified in place", st.MtimeNs, e.MtimeNs), e.Type})
			}
			return true
		}
		return false
	}
	missing := func(e *Entry) {
		if opts.Only != nil && !opts.Only(string(e.Path)) {
			return
		}
		add(Problem{string(e.Path), ProblemMissing, fmt.Sprintf("%s is in the manifest but not in the tree", e.Type), e.Type})
	}
	rehash := !opts.Fast && opts.ProvenBefore == 0
	workers := opts.Workers
	if workers <= 0 {
		// Twice the usual: each worker waits on two reads a file (its
		// inode, then its bytes). 500,000 small files on a direct-I/O
		// loop device, cold: verify 21.7 and 23.2 s with 4, 18.7 and 20.0
		// s with 8; --fast 3.9 and 4.2 s, 3.5 and 3.6 s.
		workers = 2 * defaults.Workers()
	}
	// A file goes to a worker unstat'ed (the walk reads listings only):
	// the worker reaches it from its open parent directory (parentDirs)
	// and, to re-hash, opens it, compares the open file's fstat (the inode
	// it then hashes) and hashes it, one lookup of the name; else (Fast,
	// ProvenBefore) it stats it. Either way the inode reads of many files
	// are in flight at once instead of one at a time in the walk.
	jobs := make(chan *Entry, 4*workers)
	var hashed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			return par.Safely(func() error {
				dirs := &parentDirs{root: root}
				defer dirs.close()
				for e := range jobs {
					p := string(e.Path)
					d, base, err := dirs.at(p)
					if err != nil {
						// The directory went (or is no longer one) since the
						// walk listed it.
						if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
							missing(e)
						} else {
							add(Problem{Path: p, Kind: ProblemRead, Detail: err.Error()})
						}
						continue
					}
					if !rehash {
						st, err := d.Lstat(base)
						if errors.Is(err, unix.ENOENT) {
							missing(e)
						} else if err != nil {
							add(Problem{Path: p, Kind: ProblemRead, Detail: err.Error()})
						} else {
							check(e, st)
						}
						continue
					}
					fd, done, st, err := openForHash(d, base, opts.Trusted)
					if err != nil && !errors.Is(err, fsutil.ErrNotRegular) {
						// Gone, or swapped for what cannot be opened (a
						// symlink): what stands there now says why.
						var lerr error
						if st, lerr = d.Lstat(base); errors.Is(lerr, unix.ENOENT) {
							missing(e)
							continue
						} else if lerr != nil {
							add(Problem{Path: p, Kind: ProblemRead, Detail: err.Error()})
							continue
						}
						if check(e, st) {
							add(Problem{p, ProblemRead, err.Error(), TypeFile})
						}
						continue
					}
					if done == nil {
						check(e, st) // not a regular file: the type's problem
						continue
					}
					if !check(e, st) {
						done()
						continue
					}
					sum, n, err := HashFd(fd)
					done()
					if err != nil {
						err = &os.PathError{Op: "read", Path: root.Join(p), Err: err}
					}
					hashed.Add(n)
					if opts.OnHashed != nil {
						opts.OnHashed(n)
					}
					switch {
					case err != nil:
						add(Problem{p, ProblemRead, err.Error(), TypeFile})
					case sum != e.BLAKE3:
						add(Problem{p, ProblemHash, fmt.Sprintf("blake3 %s, manifest says %s", sum, e.BLAKE3), TypeFile})
					}
				}
				return nil
			})
		})
	}
	cur, merr := mr.Next()
	next := func() {
		cur, merr = mr.Next()
	}
	walkErr := root.WalkEntries(gctx, func(rel string, de *fsutil.Entry) error {
		if (opts.Skip != nil && opts.Skip(rel)) || (opts.Only != nil && !opts.Only(rel)) {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		for merr == nil && string(cur.Path) < rel {
			missing(cur)
			next()
		}
		if merr != nil && merr != io.EOF {
			return merr
		}
		if merr == nil && string(cur.Path) == rel {
			e := cur
			if e.Type == TypeFile && !de.IsRegular() {
				// The listing says another type; the stat has the last word.
				st, err := de.Stat()
				if err != nil {
					// As an entry the walk could not stat: unreadable, and
					// (not consumed) missing.
					add(Problem{Path: rel, Kind: ProblemRead, Detail: err.Error()})
					return fs.SkipDir
				}
				if !st.IsRegular() {
					check(e, st) // the type's problem
					next()
					return nil
				}
			}
			if e.Type == TypeFile {
				// A file goes to a worker, which stats (and hashes) it.
				next()
				select {
				case jobs <- e:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			st, err := de.Stat()
			if err != nil {
				add(Problem{Path: rel, Kind: ProblemRead, Detail: err.Error()})
				return fs.SkipDir
			}
			check(e, st)
			next()
			return nil
		}
		st, err := de.Stat()
		if err != nil {
			add(Problem{Path: rel, Kind: ProblemRead, Detail: err.Error()})
			return fs.SkipDir
		}
		add(Problem{rel, ProblemExtra, fmt.Sprintf("%s is in the tree but not in the manifest", st.TypeName()), st.TypeName()})
		return nil
	}, func(rel string, err error) error {
		add(Problem{Path: rel, Kind: ProblemRead, Detail: err.Error()})
		return nil
	})
	for walkErr == nil && merr == nil {
		missing(cur)
		next()
	}
	close(jobs)
	werr := g.Wait()
	switch {
	case walkErr != nil:
		return nil, fmt.Errorf("verify %s: %w", root.Path(), walkErr)
	case merr != io.EOF:
		return nil, merr
	case werr != nil:
		return nil, werr
	}
	res.Entries = mr.Entries()
	res.BytesHashed = hashed.Load()
	sort.SliceStable(res.Problems, func(a, b int) bool { return res.Problems[a].Path < res.Problems[b].Path })
	return res, nil
}

// Unproven says why a proof whose ctime mark is provenBefore does not
// cover the entry e of stat st ("" when it does; names: how many names
// e's inode may have, the names of its link group, LinkGroupSizes, or 1
// for a file of no group). An entry changed since the mark has a ctime at
// or past it. A file with more links than that may be reached by another
// name (the live data's, for a file a download took from a local snapshot
// by link), whose writer could have changed the bytes before the mark:
// only an inode of hotsnap's own names is covered.
func Unproven(e *Entry, st fsutil.Stat, provenBefore int64, names uint64) string {
	if st.CtimeNs >= provenBefore {
		return fmt.Sprintf("changed (ctime %d) since the proof (%d)", st.CtimeNs, provenBefore)
	}
	if e.Type == TypeFile && st.Nlink > max(1, names) {
		return TooManyLinks(st.Nlink)
	}
	return ""
}

// TooManyLinks is Unproven's word for a file with more links than names.
func TooManyLinks(n uint64) string {
	return fmt.Sprintf("%d links: another name may have written it before the proof", n)
}

// parentDirs reaches entries beneath root from their open parent
// directory, kept open while the entries asked for are in it (a manifest
// lists a directory's entries together): an entry is then one lookup of a
// name away, not a walk of its path.
type parentDirs struct {
	root *fsutil.Dir
	rel  string
	d    *fsutil.Dir
}

// at returns the open directory holding rel, and rel's last component.
func (c *parentDirs) at(rel string) (*fsutil.Dir, string, error) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return c.root, rel, nil
	}
	dir, base := rel[:i], rel[i+1:]
	if c.d == nil || c.rel != dir {
		c.close()
		d, err := c.root.OpenDir(dir)
		if err != nil {
			return nil, "", err
		}
		c.d, c.rel = d, dir
	}
	return c.d, base, nil
}

func (c *parentDirs) close() {
	if c.d != nil {
		c.d.Close()
		c.d = nil
	}
}

// openForHash opens the file rel beneath root for reading and returns its
// fstat; anything but a regular file is refused with fsutil.ErrNotRegular
// (and its stat) before a byte is read, and a fifo never blocks the open.
// In a trusted tree (only hotsnap's user can change it) that is one open;
// else the name is proven a regular file before it is opened for reading.
// It returns the descriptor to read and done, which closes it; done is
// nil when nothing was opened.
func openForHash(root *fsutil.Dir, rel string, trusted bool) (int, func(), fsutil.Stat, error) {
	if trusted {
		// A bare descriptor: at a million small files an *os.File's setup
		// (its fcntl and poller registration, a finalizer) is a share of
		// the work.
		fd, st, err := root.OpenOwnRegularFd(rel)
		if err != nil {
			return -1, nil, st, err
		}
		return fd, func() { unix.Close(fd) }, st, nil
	}
	f, st, err := root.OpenRegular(rel)
	if err != nil {
		return -1, nil, st, err
	}
	return int(f.Fd()), func() { f.Close() }, st, nil
}

// LinkGroupSizes counts the names of each link group of the manifest r
// reads (VerifyOptions.LinkGroups).
func LinkGroupSizes(r *Reader) (map[int]uint64, error) {
	sizes := map[int]uint64{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return sizes, nil
		}
		if err != nil {
			return nil, err
		}
		if e.LinkGroup != 0 {
			sizes[e.LinkGroup]++
		}
	}
}
