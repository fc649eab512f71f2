package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/zeebo/blake3"
)

// Format is the manifest format this package writes and reads.
const Format = 1

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Capture modes of a file entry: how the snapshot holds it.
const (
	CaptureLink    = "link"    // a hard link to the live inode
	CaptureCopy    = "copy"    // a private copy, taken under the write lock
	CaptureReflink = "reflink" // a copy-on-write clone, taken under the write lock
)

// Manifest is the sealed record of one node's snapshot.
type Manifest struct {
	Format      int       `json:"format"`
	ID          string    `json:"id"`
	Label       string    `json:"label"`
	CreatedAt   time.Time `json:"createdAt"`
	ToolVersion string    `json:"toolVersion"`
	AppVersion  string    `json:"appVersion"`
	// AppEngine names the storage engine that wrote the data (absent in
	// manifests of hotsnap before it, and when not given): a snapshot of
	// one engine is never restored under another.
	AppEngine               string   `json:"appEngine,omitempty"`
	Node                    Node     `json:"node"`
	Topology                Topology `json:"topology"`
	EncryptionKeyID         string   `json:"encryptionKeyId"`
	PotentiallyInconsistent bool     `json:"potentiallyInconsistent"`
	LockHeldMs              float64  `json:"lockHeldMs"`
	Totals                  Totals   `json:"totals"`
	Entries                 []Entry  `json:"entries"`
	// Digest is the hex BLAKE3 of the canonical encoding of every other field.
	Digest string `json:"digest"`
}

// Node identifies the node whose data dir the snapshot holds.
type Node struct {
	ID string `json:"id"`
}

// Topology is the deployment the snapshot was taken in: node ids, and in a
// cluster the plan (user JSON) with the etcd revision it was read at.
type Topology struct {
	Nodes        []string        `json:"nodes"`
	Plan         json.RawMessage `json:"plan,omitempty"`
	PlanRevision int64           `json:"planRevision,omitempty"`
}

// Totals counts the entries. Bytes counts each inode once: hard links inside
// the data dir (one link group) add their size once.
type Totals struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
}

// Inode is a (device, inode number) pair.
type Inode struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// Entry is one directory entry of the snapshot's data tree.
type Entry struct {
	Path    Name   `json:"path"` // relative, slash-separated, clean
	Type    string `json:"type"` // file, dir, symlink
	Mode    uint32 `json:"mode"` // permission bits (incl. setuid/setgid/sticky)
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	MtimeNs int64  `json:"mtimeNs"`
	Size    int64  `json:"size"`
	Inode   Inode  `json:"inode"`
	// LinkGroup is non-zero for files that are hard links of each other inside
	// the data dir; all members share it.
	LinkGroup int    `json:"linkGroup,omitempty"`
	Capture   string `json:"capture,omitempty"` // files only
	BLAKE3    string `json:"blake3,omitempty"`  // files only, hex
	Target    Name   `json:"target,omitempty"`  // symlinks only
}

// canonical is the encoding the digest covers: the manifest with an empty digest.
func (m *Manifest) canonical() ([]byte, error) {
	c := *m
	c.Digest = ""
	// nil and empty encode differently ("null" vs "[]"); the file layout
	// cannot tell them apart, so the seal must not either.
	if c.Entries == nil {
		c.Entries = []Entry{}
	}
	if c.Topology.Nodes == nil {
		c.Topology.Nodes = []string{}
	}
	return json.Marshal(&c)
}

// ComputeDigest returns the hex BLAKE3 of the canonical encoding.
func (m *Manifest) ComputeDigest() (string, error) {
	b, err := m.canonical()
	if err != nil {
		return "", err
	}
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Seal sets Digest. Call it after every other field is final.
func (m *Manifest) Seal() error {
	d, err := m.ComputeDigest()
	if err != nil {
		return err
	}
	m.Digest = d
	return nil
}

// Encode seals the manifest (setting Digest) and returns its file content:
// one JSON object written with one entry per line (the header fields on the
// first line, the digest on the last), so that people can read and diff it
// and a reader can bound what it holds. The seal covers the canonical
// compact encoding, not this layout. Entries are checked as for Check.
func (m *Manifest) Encode() ([]byte, error) {
	var b bytes.Buffer
	w, err := NewWriter(&b, m)
	if err != nil {
		return nil, err
	}
	for i := range m.Entries {
		if err := w.Add(&m.Entries[i]); err != nil {
			return nil, err
		}
	}
	d, err := w.Close()
	if err != nil {
		return nil, err
	}
	m.Digest = d
	return b.Bytes(), nil
}

// ComputeTotals recomputes Totals from Entries.
func (m *Manifest) ComputeTotals() Totals {
	var t Totals
	seen := map[int]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		switch e.Type {
		case TypeFile:
			t.Files++
			if e.LinkGroup != 0 {
				if seen[e.LinkGroup] {
					continue
				}
				seen[e.LinkGroup] = true
			}
			t.Bytes += e.Size
		case TypeDir:
			t.Dirs++
		case TypeSymlink:
			t.Symlinks++
		}
	}
	return t
}
