package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"unicode/utf8"

	"github.com/hotsnap/hotsnap/fsutil"
)

// MaxSize bounds the manifest files Read accepts: a manifest of ten million
// entries is about 3 GiB, so 4 GiB leaves room while refusing absurd input
// before it is loaded into memory.
var MaxSize int64 = 4 << 30

// MaxLine bounds each line of a manifest file. Entries are one per line and
// a path or target is at most a few KiB even escaped; the first line holds
// the header with the cluster plan. A longer line is refused as soon as it
// is seen, so a hostile file cannot make the reader load it.
var MaxLine = 16 << 20

// maxProblems bounds how many problems one Check error lists.
const maxProblems = 20

var (
	hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// IDPattern matches a snapshot id: <UTC time>_<label>.
	IDPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}Z_[A-Za-z0-9._-]+$`)
)

// Read reads, decodes and checks the manifest file at p (see Check).
func Read(p string) (*Manifest, error) {
	m, _, err := ReadBytes(p)
	return m, err
}

// ReadBytes is Read that also returns the file's bytes, for callers that
// keep the manifest verbatim (an archive stores it byte for byte).
func ReadBytes(p string) (*Manifest, []byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	return ReadFrom(f, fi.Size(), p)
}

// ReadFrom reads, decodes and checks a manifest of size bytes from r
// (name is for messages). It returns the bytes read as well.
func ReadFrom(r io.Reader, size int64, name string) (*Manifest, []byte, error) {
	if size > MaxSize {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a manifest may have", ErrCorrupt, name, size, MaxSize)
	}
	data, err := readLines(io.LimitReader(r, MaxSize+1), size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	m, err := Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, data, nil
}

// readLines reads the whole file, refusing any line longer than MaxLine.
func readLines(r io.Reader, size int64) ([]byte, error) {
	out := make([]byte, 0, size)
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		start := len(out)
		for {
			chunk, err := br.ReadSlice('\n')
			out = append(out, chunk...)
			if len(out)-start > MaxLine {
				return nil, fmt.Errorf("%w: line %d is longer than %d bytes (entries are one per line)", ErrCorrupt, line, MaxLine)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			break
		}
	}
}

// Decode decodes a manifest and checks it (see Check).
func Decode(data []byte) (*Manifest, error) {
	if int64(len(data)) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d a manifest may have", ErrCorrupt, len(data), MaxSize)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not valid UTF-8 (names that are not UTF-8 must be encoded as {\"base64\": ...})", ErrCorrupt)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		// Say "unknown format" rather than a field error when the format number is the cause.
		var f struct {
			Format int `json:"format"`
		}
		if json.Unmarshal(data, &f) == nil && f.Format != Format {
			return nil, fmt.Errorf("%w %d (this hotsnap reads format %d): %w", ErrUnsupportedFormat, f.Format, Format, ErrCorrupt)
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the manifest object", ErrCorrupt)
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return &m, nil
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
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == maxProblems {
			problems = append(problems, "(more problems not listed)")
		}
	}
	if !IDPattern.MatchString(m.ID) {
		add("id %q is not <YYYY-MM-DDTHH.MM.SSZ>_<label>", m.ID)
	}
	types := make(map[Name]string, len(m.Entries))
	type group struct {
		first int
	}
	groups := map[int]group{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := fsutil.ValidRelPath(string(e.Path)); err != nil {
			add("entry %d: %v", i, err)
			continue
		}
		if i > 0 && e.Path <= m.Entries[i-1].Path {
			if e.Path == m.Entries[i-1].Path {
				add("entry %s: duplicate path", e.Path)
			} else {
				add("entry %s: entries are not sorted by path", e.Path)
			}
			continue
		}
		if dir := path.Dir(string(e.Path)); dir != "." {
			switch t, ok := types[Name(dir)]; {
			case !ok:
				add("entry %s: parent %q is not in the manifest", e.Path, dir)
			case t != TypeDir:
				add("entry %s: parent %q is a %s, not a dir (an entry under a symlink is refused)", e.Path, dir, t)
			}
		}
		types[e.Path] = e.Type
		if e.Mode > 0o7777 {
			add("entry %s: mode %o has bits beyond permissions", e.Path, e.Mode)
		}
		switch e.Type {
		case TypeFile:
			if e.Size < 0 {
				add("entry %s: negative size %d", e.Path, e.Size)
			}
			if !hexHash.MatchString(e.BLAKE3) {
				add("entry %s: blake3 %q is not 64 hex digits", e.Path, e.BLAKE3)
			}
			switch e.Capture {
			case CaptureLink, CaptureCopy, CaptureReflink:
			default:
				add("entry %s: unknown capture %q", e.Path, e.Capture)
			}
			if e.Target != "" {
				add("entry %s: a file has a symlink target", e.Path)
			}
			if e.LinkGroup < 0 {
				add("entry %s: negative linkGroup", e.Path)
			} else if e.LinkGroup > 0 {
				if g, ok := groups[e.LinkGroup]; ok {
					f := &m.Entries[g.first]
					if f.Inode != e.Inode || f.Size != e.Size || f.BLAKE3 != e.BLAKE3 || f.Capture != e.Capture {
						add("entry %s: linkGroup %d disagrees with %s on inode, size, hash or capture", e.Path, e.LinkGroup, f.Path)
					}
				} else {
					groups[e.LinkGroup] = group{first: i}
				}
			}
		case TypeDir, TypeSymlink:
			if e.Size < 0 {
				add("entry %s: negative size %d", e.Path, e.Size)
			}
			if e.BLAKE3 != "" || e.Capture != "" || e.LinkGroup != 0 {
				add("entry %s: a %s has file fields (blake3, capture or linkGroup)", e.Path, e.Type)
			}
			if e.Type == TypeSymlink && e.Target == "" {
				add("entry %s: symlink without a target", e.Path)
			}
			if e.Type == TypeDir && e.Target != "" {
				add("entry %s: a dir has a symlink target", e.Path)
			}
			if e.Type == TypeSymlink && bytes.IndexByte([]byte(e.Target), 0) >= 0 {
				add("entry %s: symlink target contains a NUL byte", e.Path)
			}
		default:
			add("entry %s: unknown type %q", e.Path, e.Type)
		}
	}
	if len(problems) == 0 {
		if got := m.ComputeTotals(); got != m.Totals {
			add("totals %+v do not match the entries %+v", m.Totals, got)
		}
	}
	if len(problems) > 0 {
		return &CheckError{ID: m.ID, Problems: problems}
	}
	return nil
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
