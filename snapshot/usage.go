package snapshot

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

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
	Filesystem    struct {
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
	ids, err := l.ids()
	if err != nil {
		return nil, err
	}
	inodes := map[[2]uint64]*inodeUse{}
	walk := func(root string, skip map[string]bool, mark func(u *inodeUse)) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if skip[p] {
				return filepath.SkipDir
			}
			st, err := fsutil.Lstat(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
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
		})
	}
	skip := map[string]bool{l.BackupsDir: true, l.StateDir: true}
	if err := walk(l.DataDir, skip, func(u *inodeUse) { u.live = true }); err != nil {
		return nil, err
	}
	if err := walk(l.StateDir, nil, func(u *inodeUse) { u.state = true }); err != nil {
		return nil, err
	}
	res := &UsageResult{Snapshots: make([]SnapshotUsage, len(ids))}
	for i, id := range ids {
		res.Snapshots[i].ID = id
		if err := walk(l.SnapshotDir(id), nil, func(u *inodeUse) { u.holders[i] = true }); err != nil {
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
	total, free, err := fsutil.DiskSpace(l.DataDir)
	if err != nil {
		return nil, err
	}
	res.Filesystem.TotalBytes, res.Filesystem.FreeBytes = total, free
	if _, err := os.Stat(l.BackupsDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return res, nil
}
