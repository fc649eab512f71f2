package manifest

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/hotsnap/hotsnap/fsutil"
)

// maxProblems bounds how many problems one Check error lists.
const maxProblems = 20

var (
	// IDPattern matches a snapshot id: <UTC time>_<label>.
	IDPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}Z_[A-Za-z0-9._-]+$`)
)

// checker makes the checks of a manifest as its entries go by, so a
// manifest of any size is checked in one pass: memory is one entry plus the
// directories and symlinks seen (an entry's parent must be one of them) and
// the first member of each link group.
type checker struct {
	problems []string
	n        int
	prev     Name
	dirs     map[Name]struct{}
	symlinks map[Name]struct{}
	groups   map[int]groupFirst
	totals   Totals
}

type groupFirst struct {
	path    Name
	inode   Inode
	size    int64
	blake3  string
	capture string
}

func newChecker() *checker {
	return &checker{dirs: map[Name]struct{}{}, symlinks: map[Name]struct{}{}, groups: map[int]groupFirst{}}
}

func (c *checker) add(format string, args ...any) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	} else if len(c.problems) == maxProblems {
		c.problems = append(c.problems, "(more problems not listed)")
	}
}

func (c *checker) failed() bool { return len(c.problems) > 0 }

func (c *checker) header(m *Manifest) {
	if !IDPattern.MatchString(m.ID) {
		c.add("id %q is not <YYYY-MM-DDTHH.MM.SSZ>_<label>", m.ID)
	}
}

// entry checks one entry: its path (relative, clean, sorted after the
// previous one, its parent a directory entry, so nothing lies under a
// symlink), its type and the fields that go with it, its link group.
func (c *checker) entry(e *Entry) {
	i := c.n
	c.n++
	if err := fsutil.ValidRelPath(string(e.Path)); err != nil {
		c.add("entry %d: %v", i, err)
		return
	}
	if i > 0 && e.Path <= c.prev {
		if e.Path == c.prev {
			c.add("entry %s: duplicate path", e.Path)
		} else {
			c.add("entry %s: entries are not sorted by path", e.Path)
		}
		return
	}
	c.prev = e.Path
	// The path is clean (checked above): its parent is what precedes its
	// last slash.
	if j := strings.LastIndexByte(string(e.Path), '/'); j >= 0 {
		dir := string(e.Path)[:j]
		if _, ok := c.dirs[Name(dir)]; !ok {
			if _, sym := c.symlinks[Name(dir)]; sym {
				c.add("entry %s: parent %q is a symlink, not a dir (an entry under a symlink is refused)", e.Path, dir)
			} else {
				c.add("entry %s: parent %q is not in the manifest as a dir", e.Path, dir)
			}
		}
	}
	if e.Mode > 0o7777 {
		c.add("entry %s: mode %o has bits beyond permissions", e.Path, e.Mode)
	}
	switch e.Type {
	case TypeFile:
		c.totals.Files++
		if e.Size < 0 {
			c.add("entry %s: negative size %d", e.Path, e.Size)
		}
		if !isHexHash(e.BLAKE3) {
			c.add("entry %s: blake3 %q is not 64 hex digits", e.Path, e.BLAKE3)
		}
		switch e.Capture {
		case CaptureLink, CaptureCopy, CaptureReflink:
		default:
			c.add("entry %s: unknown capture %q", e.Path, e.Capture)
		}
		if e.Target != "" {
			c.add("entry %s: a file has a symlink target", e.Path)
		}
		switch {
		case e.LinkGroup < 0:
			c.add("entry %s: negative linkGroup", e.Path)
		case e.LinkGroup == 0:
			c.totals.Bytes += e.Size
		default:
			if g, ok := c.groups[e.LinkGroup]; ok {
				if g.inode != e.Inode || g.size != e.Size || g.blake3 != e.BLAKE3 || g.capture != e.Capture {
					c.add("entry %s: linkGroup %d disagrees with %s on inode, size, hash or capture", e.Path, e.LinkGroup, g.path)
				}
			} else {
				c.groups[e.LinkGroup] = groupFirst{e.Path, e.Inode, e.Size, e.BLAKE3, e.Capture}
				c.totals.Bytes += e.Size
			}
		}
	case TypeDir, TypeSymlink:
		if e.Size < 0 {
			c.add("entry %s: negative size %d", e.Path, e.Size)
		}
		if e.BLAKE3 != "" || e.Capture != "" || e.LinkGroup != 0 {
			c.add("entry %s: a %s has file fields (blake3, capture or linkGroup)", e.Path, e.Type)
		}
		if e.Type == TypeSymlink {
			c.totals.Symlinks++
			c.symlinks[e.Path] = struct{}{}
			if e.Target == "" {
				c.add("entry %s: symlink without a target", e.Path)
			}
			if bytes.IndexByte([]byte(e.Target), 0) >= 0 {
				c.add("entry %s: symlink target contains a NUL byte", e.Path)
			}
		} else {
			c.totals.Dirs++
			c.dirs[e.Path] = struct{}{}
			if e.Target != "" {
				c.add("entry %s: a dir has a symlink target", e.Path)
			}
		}
	default:
		c.add("entry %s: unknown type %q", e.Path, e.Type)
	}
}

// finish compares the totals counted with the ones the header declares.
func (c *checker) finish(declared Totals) {
	if !c.failed() && declared != c.totals {
		c.add("totals %+v do not match the entries %+v", declared, c.totals)
	}
}

func (c *checker) err(id string) error {
	if !c.failed() {
		return nil
	}
	return &CheckError{ID: id, Problems: c.problems}
}

// Check refuses a manifest that is not sealed, or whose content cannot be
// true: unknown format, bad seal, a bad id, absolute or unclean paths, "..",
// duplicates, an entry whose parent is missing or not a directory (so no
// entry can lie under a symlink), bad types, hashes, sizes, link groups or
// totals. The error wraps ErrCorrupt and names every offending entry (up to 20).
func (m *Manifest) Check() error {
	if m.Format != Format {
		return fmt.Errorf("%w %d (this hotsnap reads format %d): %w", ErrUnsupportedFormat, m.Format, Format, ErrCorrupt)
	}
	want, err := m.ComputeDigest()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if m.Digest != want {
		return fmt.Errorf("%w: broken seal: digest %q does not match the content (%s)", ErrCorrupt, m.Digest, want)
	}
	c := newChecker()
	c.header(m)
	for i := range m.Entries {
		c.entry(&m.Entries[i])
	}
	c.finish(m.Totals)
	return c.err(m.ID)
}

// CheckError lists what Check found wrong. It wraps ErrCorrupt.
type CheckError struct {
	ID       string
	Problems []string
}

func (e *CheckError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "manifest is corrupt: %s", e.Problems[0])
	for _, p := range e.Problems[1:] {
		fmt.Fprintf(&b, "; %s", p)
	}
	return b.String()
}

func (e *CheckError) Unwrap() error { return ErrCorrupt }

// isHexHash says whether s is 64 lower-case hex digits (a loop: the
// regexp it replaces cost 3 % of an upload's CPU on many small files).
func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()
