// Package quiesce stops an application's writes for the moment a snapshot
// is taken, and lets them go on: the Quiescer interface and its kinds
// (Flock, the write-gate protocol; Freeze, a cgroup; Signal, SIGSTOP of a
// process tree; Exec and HTTP, the application's own commands; None),
// Acquire's retry loop with periods growing by 10 %, the thaw records
// that let a later run resume what a killed one stopped, and the
// application's stop and start hooks of a restore.
//
// It knows nothing of snapshots, manifests or the layout of a data dir: a
// quiescer that stops processes is given a StateDir, where it keeps its
// thaw record, and package snapshot gives it the data dir's private
// state dir. See docs/DESIGN.md, Quiescers, and docs/quiescers.md.
package quiesce

import (
	"errors"

	"github.com/hotsnap/hotsnap/fsutil"
)

var (
	// ErrFailed is returned when the quiescer failed outright (a lock
	// command exited with an error, an unlock failed): retrying will not
	// help.
	ErrFailed = errors.New("quiesce failed")
	// ErrHook is returned when a stop or start command fails.
	ErrHook = errors.New("hook command failed")
)

// StateDir opens the directory a quiescer keeps its thaw record in,
// creating it if need be: private to the invoking user. The caller
// closes it.
type StateDir func() (*fsutil.Dir, error)
