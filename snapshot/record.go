package snapshot

import (
	"encoding/hex"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/hardlink"
	"github.com/hotsnap/hotsnap/manifest"
)

// record turns a captured tree (the items of hardlink.Build, sorted by
// path) into its manifest: link groups, hashes (reused from the previous
// snapshot where the inode is unchanged), the in-place-write check, and the
// manifest written as a stream. Per file it holds the compact item and a
// 32-byte hash, nothing more, so a million files fit in a few hundred MiB
// at most and nothing holds the manifest whole.
type record struct {
	items  []hardlink.Item
	hashes [][32]byte
	group  map[int]int // item index -> link group number (members only)
	// progress follows the hashing (CreateOptions.Progress); nil is none.
	progress Progress
}

type inodeKey struct{ dev, ino uint64 }

// newRecord numbers the link groups in path order: files of the data dir
// that share an inode (only a source with several links can).
func newRecord(items []hardlink.Item) *record {
	r := &record{items: items, hashes: make([][32]byte, len(items)), group: map[int]int{}}
	// Inodes some name of which had several links; then every name of
	// them (one linked in the first pass before a second link was made in
	// the window, under the lock, still says one link).
	count := map[inodeKey]int{}
	for i := range items {
		if it := &items[i]; it.Capture != "" && it.SrcNlink > 1 {
			count[inodeKey{it.Dev, it.Ino}] = 0
		}
	}
	if len(count) > 0 {
		for i := range items {
			it := &items[i]
			if _, ok := count[inodeKey{it.Dev, it.Ino}]; ok && it.Capture != "" {
				count[inodeKey{it.Dev, it.Ino}]++
			}
		}
	}
	numbers := map[inodeKey]int{}
	for i := range items {
		it := &items[i]
		k := inodeKey{it.Dev, it.Ino}
		if it.Capture == "" || count[k] < 2 {
			continue
		}
		if numbers[k] == 0 {
			numbers[k] = len(numbers) + 1
		}
		r.group[i] = numbers[k]
	}
	return r
}

// entry is item i as a manifest entry.
func (r *record) entry(i int) manifest.Entry {
	it := &r.items[i]
	e := manifest.Entry{
		Path: manifest.Name(it.Rel), Mode: it.Perm(), UID: it.UID, GID: it.GID, MtimeNs: it.MtimeNs,
		Inode: manifest.Inode{Dev: it.Dev, Ino: it.Ino},
	}
	switch {
	case it.IsDir():
		e.Type = manifest.TypeDir
	case it.IsSymlink():
		e.Type, e.Target, e.Size = manifest.TypeSymlink, manifest.Name(it.Target), int64(len(it.Target))
	default:
		e.Type, e.Size, e.Capture = manifest.TypeFile, it.Size, it.Capture
		e.LinkGroup = r.group[i]
		e.BLAKE3 = hex.EncodeToString(r.hashes[i][:])
	}
	return e
}

// dirs are the directory entries, for FinishDirs.
func (r *record) dirs() []manifest.Entry {
	var out []manifest.Entry
	for i := range r.items {
		if r.items[i].IsDir() {
			out = append(out, r.entry(i))
		}
	}
	return out
}

// owned lists what the tree owns and a crash could lose: its directories
// and its private copies (linked files are the application's own data).
func (r *record) owned() []string {
	var out []string
	for i := range r.items {
		it := &r.items[i]
		if it.IsDir() || (it.Capture != "" && it.Capture != hardlink.CaptureLink) {
			out = append(out, it.Rel)
		}
	}
	return out
}

// totals counts the entries as the manifest will (a link group's bytes once).
func (r *record) totals() manifest.Totals {
	var t manifest.Totals
	seen := map[int]bool{}
	for i := range r.items {
		it := &r.items[i]
		switch {
		case it.IsDir():
			t.Dirs++
		case it.IsSymlink():
			t.Symlinks++
		default:
			t.Files++
			if g := r.group[i]; g != 0 {
				if seen[g] {
					continue
				}
				seen[g] = true
			}
			t.Bytes += it.Size
		}
	}
	return t
}

// write writes the sealed manifest to rel (a new file, 0600, fsynced) in
// dir, entry by entry.
func (r *record) write(dir *fsutil.Dir, rel string, hdr *manifest.Manifest) (manifest.Totals, error) {
	hdr.Totals = r.totals()
	f, err := dir.Create(rel, 0o600)
	if err != nil {
		return hdr.Totals, err
	}
	err = func() error {
		w, err := manifest.NewWriter(&writeBehind{f: f}, hdr)
		if err != nil {
			return err
		}
		for i := range r.items {
			e := r.entry(i)
			if err := w.Add(&e); err != nil {
				return err
			}
		}
		if _, err := w.Close(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		dir.Remove(rel)
	}
	return hdr.Totals, err
}

// writeBehind starts the writeback of every 8 MiB written
// (sync_file_range, not waiting for it), so that the final fsync of a
// manifest of tens of MiB has little left to wait for.
type writeBehind struct {
	f            *os.File
	off, started int64
}

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= 8<<20 {
		unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE) // a hint: the fsync still decides
		w.started = w.off
	}
	return n, err
}
