package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// ls and diff print an item per entry or change, then a result.

// LsEntry is one line of `ls --json`.
type LsEntry struct {
	Path    string `json:"path"`
	Type    string `json:"type"`
	Mode    string `json:"mode"` // octal permission bits, setuid, setgid and sticky included
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtimeNs"`
	BLAKE3  string `json:"blake3,omitempty"`
	Target  string `json:"target,omitempty"`
}

// Entry prints one entry of ls: an item, or a line as ls -l writes it
// (nothing when Quiet). w is Stdout, buffered.
func (o *Output) Entry(w io.Writer, m *manifest.Entry) {
	switch {
	case o.JSON:
		WriteEvent(w, Item, LsEntry{Path: string(m.Path), Type: m.Type, Mode: fmt.Sprintf("%04o", m.Mode), UID: m.UID, GID: m.GID,
			Size: m.Size, MtimeNs: m.MtimeNs, BLAKE3: m.BLAKE3, Target: string(m.Target)})
	case !o.Quiet:
		name := fsutil.Quote(string(m.Path))
		if m.Type == manifest.TypeSymlink {
			name += " -> " + fsutil.Quote(string(m.Target))
		}
		fmt.Fprintf(w, "%s %5d:%-5d %12d %s %s\n", ModeString(m), m.UID, m.GID, m.Size,
			time.Unix(0, m.MtimeNs).UTC().Format("2006-01-02 15:04:05"), name)
	}
}

// Change prints one change of diff: an item, or a line marked +, - or M.
func (o *Output) Change(w io.Writer, ch manifest.Change) {
	switch {
	case o.JSON:
		WriteEvent(w, Item, ch)
	case !o.Quiet:
		mark := map[string]string{manifest.Added: "+", manifest.Removed: "-", manifest.Modified: "M"}[ch.Kind]
		what := ""
		if len(ch.What) > 0 {
			what = " (" + strings.Join(ch.What, ", ") + ")"
		}
		fmt.Fprintf(w, "%s %-7s %s%s\n", mark, ch.Type, fsutil.Quote(ch.Path), what)
	}
}

// DiffResult is diff's result: the counts of changes from one snapshot
// (or the live data) to the other.
type DiffResult struct {
	From string `json:"from"`
	To   string `json:"to"`
	manifest.DiffCounts
}

// Diff is diff's text.
func Diff(r DiffResult) Text {
	return Line("%s -> %s: %d added, %d removed, %d modified", r.From, r.To, r.Added, r.Removed, r.Modified)
}

// ModeString is ls -l's mode column: type, then rwx with s, S, t, T.
func ModeString(e *manifest.Entry) string {
	b := []byte("----------")
	switch e.Type {
	case manifest.TypeDir:
		b[0] = 'd'
	case manifest.TypeSymlink:
		b[0] = 'l'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if e.Mode&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(bit uint32, at int, set, unset byte) {
		if e.Mode&bit != 0 {
			if b[at] == '-' {
				b[at] = unset
			} else {
				b[at] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}
