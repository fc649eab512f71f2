package snapshot

import (
	"errors"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

var (
	// ErrLockTimeout is returned by Create when writes could not be stopped
	// within the maximum wait (and inconsistent snapshots were not allowed).
	ErrLockTimeout = errs.ErrLockTimeout
	// ErrLockFailed is returned when the quiesce provider failed outright
	// (a lock command exited with an error, an unlock failed).
	ErrLockFailed = quiesce.ErrFailed
	// ErrNotFound is returned for an unknown snapshot id or a missing data dir.
	ErrNotFound = errs.ErrNotFound
	// ErrExists is returned when a snapshot with the id already exists.
	ErrExists = errs.New(errs.Conflict, "already exists")
	// ErrInvalid is returned for bad arguments: a bad label or id, a bad
	// glob, a data dir inside a backups dir.
	ErrInvalid = errs.ErrInvalid
	// ErrModifiedInPlace is returned by Create when a hard-linked file was
	// written to in place after it was captured: the snapshot would not hold
	// the bytes it recorded. It wraps manifest.ErrVerifyFailed.
	ErrModifiedInPlace = errors.New("file modified in place")
	// ErrConflict is returned when the live data dir's state stands in the
	// way (a partial restore would have to replace a file above the
	// entries asked for).
	ErrConflict = errs.ErrConflict
	// ErrBusy is returned when another hotsnap command holds the data dir's
	// operation lock for longer than the caller waits.
	ErrBusy = errs.New(errs.Conflict, "another hotsnap command is running on this data dir")

	// ErrUntrusted is returned for state that another user could have
	// written and hotsnap will not act on: a backups dir, snapshot dir or
	// manifest writable by others, a private state dir that is not the
	// invoking user's, a symlink, fifo or hard link where hotsnap keeps a
	// file of its own, a restore journal naming paths outside its places.
	// It exits 4, as data that fails verification.
	ErrUntrusted = errs.ErrUntrusted

	// Re-exported so callers of this package need not import manifest.
	ErrCorrupt      = manifest.ErrCorrupt
	ErrIncompatible = manifest.ErrIncompatible
	ErrVerifyFailed = manifest.ErrVerifyFailed
)
