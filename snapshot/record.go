package snapshot

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/hardlink"
	"github.com/hotsnap/hotsnap/internal/par"
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
}

type inodeKey struct{ dev, ino uint64 }

// newRecord numbers the link groups in path order: files of the data dir
// that share an inode (only a source with several links can).
func newRecord(items []hardlink.Item) *record {
	r := &record{items: items, hashes: make([][32]byte, len(items)), group: map[int]int{}}
	count := map[inodeKey]int{}
	for i := range items {
		it := &items[i]
		if it.Capture != "" && it.SrcNlink > 1 {
			count[inodeKey{it.Dev, it.Ino}]++
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

// hash fills in every file's BLAKE3: reused from the previous snapshot's
// manifest (prev, read as a stream beside the sorted items) where the path
// holds the same inode with the same size and mtime (prev's link pins the
// inode, so its number cannot have been reused), read and hashed otherwise,
// once per link group, in parallel.
func (r *record) hash(ctx context.Context, tree *fsutil.Dir, prev *ManifestFile, workers int, res *CreateResult) error {
	have := make([]bool, len(r.items))
	reused := r.reuse(prev, have)
	res.ReusedHashes = int64(reused)
	var todo []int
	first := map[int]int{} // link group -> the member that is hashed
	for i := range r.items {
		it := &r.items[i]
		if it.Capture == "" || have[i] {
			continue
		}
		if g := r.group[i]; g != 0 {
			if _, ok := first[g]; ok {
				continue
			}
			first[g] = i
		}
		todo = append(todo, i)
	}
	var files, bytes atomic.Int64
	err := par.ForEach(ctx, len(todo), workers, func(ctx context.Context, k int) error {
		i := todo[k]
		sum, n, err := manifest.HashOwnFileAt(tree, r.items[i].Rel)
		if err != nil {
			return fmt.Errorf("hash %s: %w", r.items[i].Rel, err)
		}
		if _, err := hex.Decode(r.hashes[i][:], []byte(sum)); err != nil {
			return err
		}
		files.Add(1)
		bytes.Add(n)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range r.items {
		if g := r.group[i]; g != 0 && !have[i] {
			r.hashes[i] = r.hashes[first[g]]
		}
	}
	res.HashedFiles, res.HashedBytes = files.Load(), bytes.Load()
	return nil
}

// reuse takes hashes from prev for the linked files whose path, inode,
// size and mtime are unchanged, marking them in have. If prev turns out
// unreadable or its seal broken, nothing is reused.
func (r *record) reuse(prev *ManifestFile, have []bool) int {
	if prev == nil {
		return 0
	}
	mr, err := prev.Reader()
	if err != nil {
		return 0
	}
	n := 0
	cur, merr := mr.Next()
	for i := range r.items {
		it := &r.items[i]
		if it.Capture != hardlink.CaptureLink {
			continue
		}
		for merr == nil && string(cur.Path) < it.Rel {
			cur, merr = mr.Next()
		}
		if merr != nil {
			break
		}
		if string(cur.Path) == it.Rel && cur.Type == manifest.TypeFile && cur.Capture == manifest.CaptureLink &&
			cur.Inode == (manifest.Inode{Dev: it.Dev, Ino: it.Ino}) && cur.Size == it.Size && cur.MtimeNs == it.MtimeNs {
			if _, err := hex.Decode(r.hashes[i][:], []byte(cur.BLAKE3)); err == nil {
				have[i] = true
				n++
			}
		}
	}
	for merr == nil {
		_, merr = mr.Next()
	}
	if merr != io.EOF { // the previous manifest is damaged: trust none of it
		for i := range have {
			have[i] = false
		}
		return 0
	}
	return n
}

// checkUnmodified re-stats every linked file of the tree and fails naming
// those whose size or mtime differ from what was captured under the lock.
func (r *record) checkUnmodified(tree *fsutil.Dir) error {
	var bad []string
	for i := range r.items {
		it := &r.items[i]
		if it.Capture != hardlink.CaptureLink {
			continue
		}
		st, err := tree.Lstat(it.Rel)
		if err != nil {
			return err
		}
		if st.Size != it.Size || st.MtimeNs != it.MtimeNs {
			bad = append(bad, it.Rel)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	shown := bad
	if len(shown) > 10 {
		shown = shown[:10]
	}
	return fmt.Errorf("%w: %w: %d hard-linked file(s) changed after they were captured: %s; the application rewrites them in place, so a hard link cannot hold their old bytes: capture them as copies with --copy (e.g. --copy %q); the snapshot was discarded",
		ErrModifiedInPlace, manifest.ErrVerifyFailed, len(bad), strings.Join(shown, ", "), suggestGlob(bad[0]))
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
		w, err := manifest.NewWriter(f, hdr)
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
