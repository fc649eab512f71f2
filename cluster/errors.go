package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Kinds of error. Agents send the kind with every error (the "kind" field of
// the API's error object); the CLI maps kinds to exit codes.
const (
	KindUsage        = "usage"         // bad request or flags (exit 2)
	KindLockTimeout  = "lock_timeout"  // writes could not be stopped, or a lock is held (exit 3)
	KindVerifyFailed = "verify_failed" // verification failed or corrupt data (exit 4)
	KindIncompatible = "incompatible"  // version, topology or key (exit 5)
	KindNotFound     = "not_found"     // no such snapshot, job or piece (exit 6)
	KindInterrupted  = "interrupted"   // cancelled (exit 130)
	KindUnauthorized = "unauthorized"  // missing or wrong token (exit 1)
	KindInternal     = "internal"      // a bug: a panic caught (exit 70)
	KindError        = "error"         // anything else (exit 1)
)

// ErrUnauthorized is an agent's answer to a missing or wrong token.
var ErrUnauthorized = errors.New("unauthorized: missing or wrong bearer token")

// Kind classifies an error: the one place that does, for the agent's answers
// and the CLI's exit codes alike.
func Kind(err error) string {
	var re *RemoteError
	var pe *par.PanicError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return re.Kind
	case errors.As(err, &pe):
		return KindInternal
	case errors.Is(err, context.Canceled):
		return KindInterrupted
	case errors.Is(err, snapshot.ErrInvalid), errors.Is(err, archive.ErrBadRemote), errors.Is(err, fsutil.ErrInsecureFile):
		return KindUsage
	case errors.Is(err, snapshot.ErrLockTimeout), errors.Is(err, archive.ErrLocked):
		return KindLockTimeout
	case errors.Is(err, manifest.ErrVerifyFailed), errors.Is(err, manifest.ErrCorrupt), errors.Is(err, snapshot.ErrUntrusted), errors.Is(err, fsutil.ErrSymlink), errors.Is(err, store.ErrTooLarge),
		errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrChanged):
		return KindVerifyFailed
	case errors.Is(err, manifest.ErrIncompatible), errors.Is(err, archive.ErrWrongKey), errors.Is(err, archive.ErrKeyRequired), errors.Is(err, archive.ErrFormat):
		return KindIncompatible
	case errors.Is(err, snapshot.ErrNotFound), errors.Is(err, archive.ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrUnauthorized):
		return KindUnauthorized
	}
	return KindError
}

// RemoteError is an error an agent reported, kept with its node and kind.
// It unwraps to the sentinel of its kind, so errors.Is works across the wire.
type RemoteError struct {
	Node    string `json:"node"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *RemoteError) Error() string { return fmt.Sprintf("node %s: %s", e.Node, e.Message) }

func (e *RemoteError) Unwrap() error {
	switch e.Kind {
	case KindUsage:
		return snapshot.ErrInvalid
	case KindLockTimeout:
		return snapshot.ErrLockTimeout
	case KindVerifyFailed:
		return manifest.ErrVerifyFailed
	case KindIncompatible:
		return manifest.ErrIncompatible
	case KindNotFound:
		return snapshot.ErrNotFound
	case KindInterrupted:
		return context.Canceled
	case KindUnauthorized:
		return ErrUnauthorized
	}
	return nil
}
