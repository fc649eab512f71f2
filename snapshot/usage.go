package snapshot

import (
	"context"
	"io/fs"
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// UsageResult says what snapshots cost on disk. Bytes are allocated bytes
// (512-byte blocks, as du counts them), each inode counted once.
type UsageResult struct {
	// LiveBytes is the data dir without the backups dir and .hotsnap.
	LiveBytes int64 `json:"liveBytes"`
	// PinnedBytes is what snapshots hold beyond the live data: freed if
	// every snapshot were deleted (inodes that only snapshots link).
	PinnedBytes int64 `json:"pinnedBytes"`
	// StateBytes is what .hotsnap holds beyond live data and snapshots
	// (the failsafe of the last restore, staging).
	StateBytes int64 `json:"stateBytes"`
	// ExternalBytes counts inodes that also have links outside the data
	// dir and backups dir: deleting snapshots cannot free them.
	ExternalBytes int64           `json:"externalBytes"`
	Snapshots     []SnapshotUsage `json:"snapshots"`
	// Failsafes are the states restores replaced and keep (failsafe drop
	// or prune --failsafe-older-than frees them).
	Failsafes  []FailsafeInfo `json:"failsafes"`
	Filesystem struct {
		TotalBytes uint64 `json:"totalBytes"`
		FreeBytes  uint64 `json:"freeBytes"`
	} `json:"filesystem"`
}

// SnapshotUsage is one snapshot's cost.
type SnapshotUsage struct {
	ID string `json:"id"`
	// ExclusiveBytes is freed if this snapshot alone is deleted: inodes
	// linked by it and by nothing else.
	ExclusiveBytes int64 `json:"exclusiveBytes"`
	// TotalBytes is everything it links, shared or not.
	TotalBytes int64 `json:"totalBytes"`
}

type inodeUse struct {
	blocks  int64
	nlink   uint64
	seen    uint64 // links found in the walks
	dir     bool   // a directory's nlink counts its subdirectories, not hard links
	live    bool
	state   bool
	holders map[int]bool // snapshot indexes
}

// Usage walks the live data, every snapshot and the state dir once, and
// attributes each inode's blocks: live data, one snapshot only, several
// snapshots, the state dir, or links outside (never freed here). It writes
// nothing.
func Usage(ctx context.Context, l *Layout, log *slog.Logger) (*UsageResult, error) {
	s, err := l.openSession(ctx, log, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	inodes := map[[2]uint64]*inodeUse{}
	// Every walk goes through directory descriptors and never follows a
	// symlink; entries that vanish under it (live data) are passed over.
	walk := func(root *fsutil.Dir, skip map[string]bool, mark func(u *inodeUse)) error {
		count := func(rel string, st fsutil.Stat) error {
			if skip[rel] {
				return fs.SkipDir
			}
			k := [2]uint64{st.Dev, st.Ino}
			u := inodes[k]
			if u == nil {
				u = &inodeUse{blocks: st.Blocks * 512, nlink: st.Nlink, dir: st.IsDir(), holders: map[int]bool{}}
				inodes[k] = u
			}
			u.seen++
			mark(u)
			return nil
		}
		st, err := root.Stat() // the root's own inode counts too
		if err != nil {
			return err
		}
		count("", st)
		return root.Walk(ctx, count, fsutil.IgnoreVanished)
	}
	skip := map[string]bool{}
	for n := range l.reservedNames() {
		skip[n] = true
	}
	if err := walk(s.data, skip, func(u *inodeUse) { u.live = true }); err != nil {
		return nil, err
	}
	if state, err := openState(s.data, false); err == nil {
		err = walk(state, nil, func(u *inodeUse) { u.state = true })
		state.Close()
		if err != nil {
			return nil, err
		}
	} else if !isNotExist(err) {
		return nil, err
	}
	res := &UsageResult{Snapshots: make([]SnapshotUsage, len(ids))}
	for i, id := range ids {
		res.Snapshots[i].ID = id
		snap, err := s.openSnapshot(id)
		if err != nil {
			return nil, err
		}
		err = walk(snap, nil, func(u *inodeUse) { u.holders[i] = true })
		snap.Close()
		if err != nil {
			return nil, err
		}
	}
	// Anything else in the backups dir (not a snapshot) counts as outside.
	for _, u := range inodes {
		for i := range u.holders {
			res.Snapshots[i].TotalBytes += u.blocks
		}
		switch {
		case u.live:
			res.LiveBytes += u.blocks
		case !u.dir && u.seen < u.nlink:
			res.ExternalBytes += u.blocks
		case u.state:
			res.StateBytes += u.blocks
		case len(u.holders) > 0:
			res.PinnedBytes += u.blocks
			if len(u.holders) == 1 {
				for i := range u.holders {
					res.Snapshots[i].ExclusiveBytes += u.blocks
				}
			}
		}
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(s.data.Fd(), &sfs); err != nil {
		return nil, err
	}
	res.Filesystem.TotalBytes, res.Filesystem.FreeBytes = sfs.Blocks*uint64(sfs.Bsize), sfs.Bavail*uint64(sfs.Bsize)
	res.Failsafes = []FailsafeInfo{}
	if priv, err := l.openPrivate(s.data, false); err == nil {
		res.Failsafes, err = failsafes(ctx, priv)
		priv.Close()
		if err != nil {
			return nil, err
		}
	} else if !isNotExist(err) {
		return nil, err
	}
	return res, nil
}
