package snapshot

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/hardlink"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// hashAndSettle fills in every file's BLAKE3 and checks the linked files
// against in-place writes after the lock (docs/DESIGN.md, Create):
//
//   - with a previous snapshot, its hashes are reused (read as a stream
//     beside the sorted items) where the path holds the same inode with the
//     same size and mtime (prev's link pins the inode, so its number cannot
//     have been reused), while every linked file is re-stat-ed at the same
//     time (settle);
//   - the rest is read and hashed, once per link group, in parallel, and
//     the linked files among them are stat-ed again once read.
//
// settle: a file whose ctime is below floor (read just before writes
// resumed) has not changed since the lock, so its stat now is its stat at
// the lock, and the item takes it (a file written in place in the window
// before the lock, in a directory the locked pass did not list again, then
// loses its reused hash). A file changed since whose size or mtime moved
// was written in place after the lock: a hard link cannot hold its old
// bytes, and the create fails naming it.
func (r *record) hashAndSettle(ctx context.Context, tree *fsutil.Dir, prev *ManifestFile, floor int64, workers int, res *CreateResult) error {
	have := make([]bool, len(r.items))
	if prev != nil { // every linked file is stat-ed beside the reuse
		var pre *settled
		var perr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			perr = par.Safely(func() (err error) {
				pre, err = r.statLinks(ctx, tree, floor, workers, nil)
				return err
			})
		}()
		reused := r.reuse(prev, have)
		<-done
		if perr != nil {
			return perr
		}
		if err := pre.err(); err != nil {
			return err
		}
		for _, i := range r.apply(pre) {
			if have[i] {
				have[i] = false
				reused--
			}
		}
		res.ReusedHashes = int64(reused)
	}
	hashed, err := r.hashMissing(ctx, tree, have, workers, res)
	if err != nil {
		return err
	}
	var only []int // the linked files read by the hash (nil: all of them, none stat-ed yet)
	if prev != nil {
		for _, i := range hashed {
			if r.items[i].Capture == hardlink.CaptureLink {
				only = append(only, i)
			}
		}
		if len(only) == 0 {
			return nil
		}
	}
	post, err := r.statLinks(ctx, tree, floor, workers, only)
	if err != nil {
		return err
	}
	if err := post.err(); err != nil {
		return err
	}
	// Moved, yet unchanged since the lock: written in place before it,
	// where no earlier stat saw it; hashed again (rare).
	again := r.apply(post)
	for _, i := range again {
		have[i] = false
	}
	if len(again) == 0 {
		return nil
	}
	_, err = r.hashMissing(ctx, tree, have, workers, res)
	return err
}

// hashMissing reads and hashes, in parallel, every file not marked in
// have, once per link group, marks them, and returns the items hashed
// (every member of a group).
func (r *record) hashMissing(ctx context.Context, tree *fsutil.Dir, have []bool, workers int, res *CreateResult) ([]int, error) {
	var todo, hashed []int
	first := map[int]int{} // link group -> the member that is hashed
	for i := range r.items {
		it := &r.items[i]
		if it.Capture == "" || have[i] {
			continue
		}
		hashed = append(hashed, i)
		if g := r.group[i]; g != 0 {
			if _, ok := first[g]; ok {
				continue
			}
			first[g] = i
		}
		todo = append(todo, i)
	}
	var files, bytes atomic.Int64
	var total int64
	for _, i := range todo {
		total += r.items[i].Size
	}
	if workers <= 0 {
		workers = defaults.Readers() // reads in flight, not CPUs: the hash waits on the device
	}
	p := progressOr(r.progress)
	p.Start("hash", int64(len(todo)), total)
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
		p.Add(1, n)
		return nil
	})
	p.Done()
	if err != nil {
		return nil, err
	}
	for _, i := range hashed {
		if g := r.group[i]; g != 0 {
			r.hashes[i] = r.hashes[first[g]]
		}
		have[i] = true
	}
	res.HashedFiles += files.Load()
	res.HashedBytes += bytes.Load()
	return hashed, nil
}

// reuse takes hashes from prev for the linked files whose path, inode,
// size and mtime are unchanged, marking them in have. If prev turns out
// unreadable or its seal broken, nothing is reused.
func (r *record) reuse(prev *ManifestFile, have []bool) int {
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

// settled is what a stat of the linked files found: the items unchanged
// since the lock whose stat differs from what they hold, and the files
// written in place after it.
type settled struct {
	adopt map[int]fsutil.Stat
	bad   []string
}

// statLinks stats the linked files among the items (only those in only,
// when it is not nil), without changing the items: it may run beside
// reuse, which reads them.
func (r *record) statLinks(ctx context.Context, tree *fsutil.Dir, floor int64, workers int, only []int) (*settled, error) {
	idx := func(k int) int { return k }
	n := len(r.items)
	if only != nil {
		idx, n = func(k int) int { return only[k] }, len(only)
	}
	out := &settled{adopt: map[int]fsutil.Stat{}}
	var mu sync.Mutex
	// Contiguous shares of the sorted items: neighbours share a directory,
	// opened once per run of them, and each file costs one fstatat.
	shares := max(1, min(n/4096, 64*max(workers, 1)))
	err := par.ForEach(ctx, shares, workers, func(ctx context.Context, k int) error {
		var dir *fsutil.Dir
		dirRel := ""
		defer func() {
			if dir != nil {
				dir.Close()
			}
		}()
		for j := k * n / shares; j < (k+1)*n/shares; j++ {
			i := idx(j)
			it := &r.items[i]
			if it.Capture != hardlink.CaptureLink {
				continue
			}
			parent, base := ".", it.Rel
			if c := strings.LastIndexByte(it.Rel, '/'); c >= 0 {
				parent, base = it.Rel[:c], it.Rel[c+1:]
			}
			if dir == nil || dirRel != parent {
				if dir != nil {
					dir.Close()
				}
				var err error
				if dir, err = tree.OpenDir(parent); err != nil {
					return err
				}
				dirRel = parent
			}
			st, err := dir.Lstat(base)
			if err != nil {
				return err
			}
			moved := st.Size != it.Size || st.MtimeNs != it.MtimeNs
			switch {
			case st.CtimeNs < floor:
				if moved || st.UID != it.UID || st.GID != it.GID || st.Perm() != it.Perm() {
					mu.Lock()
					out.adopt[i] = st
					mu.Unlock()
				}
			case moved:
				mu.Lock()
				out.bad = append(out.bad, it.Rel)
				mu.Unlock()
			}
		}
		return nil
	})
	return out, err
}

// apply gives the items their stat at the lock and returns those whose
// size or mtime moved (their bytes are not what an earlier stat said).
func (r *record) apply(s *settled) (moved []int) {
	for i, st := range s.adopt {
		it := &r.items[i]
		if st.Size != it.Size || st.MtimeNs != it.MtimeNs {
			moved = append(moved, i)
		}
		it.Size, it.MtimeNs, it.UID, it.GID = st.Size, st.MtimeNs, st.UID, st.GID
		it.Mode = it.Mode&^0o7777 | st.Perm()
	}
	return moved
}

func (s *settled) err() error {
	if len(s.bad) == 0 {
		return nil
	}
	bad := s.bad
	sort.Strings(bad)
	shown := bad
	if len(shown) > 10 {
		shown = shown[:10]
	}
	return fmt.Errorf("%w: %w: %d hard-linked file(s) changed after they were captured: %s; the application rewrites them in place, so a hard link cannot hold their old bytes: capture them as copies with --copy (e.g. --copy %q); the snapshot was discarded",
		ErrModifiedInPlace, manifest.ErrVerifyFailed, len(bad), strings.Join(shown, ", "), suggestGlob(bad[0]))
}
