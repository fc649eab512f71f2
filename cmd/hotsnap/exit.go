package main

import (
	"context"
	"errors"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Exit codes, documented in the README.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitLockTimeout  = 3
	exitVerifyFailed = 4
	exitIncompatible = 5
	exitNotFound     = 6
	exitInterrupted  = 130
)

// usageError marks bad command-line usage (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// silentError carries an exit code for an outcome already printed (a
// verify result with differences in --json mode): no second error object.
type silentError struct{ err error }

func (s silentError) Error() string { return s.err.Error() }
func (s silentError) Unwrap() error { return s.err }

// exitCode maps an error to the process exit code: the one place that does.
func exitCode(err error) (int, string) {
	var u usageError
	switch {
	case err == nil:
		return exitOK, ""
	case errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted"
	case errors.As(err, &u), errors.Is(err, snapshot.ErrInvalid):
		return exitUsage, "usage"
	case errors.Is(err, snapshot.ErrLockTimeout), errors.Is(err, archive.ErrLocked):
		return exitLockTimeout, "lock_timeout"
	case errors.Is(err, manifest.ErrVerifyFailed), errors.Is(err, manifest.ErrCorrupt),
		errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrChanged):
		return exitVerifyFailed, "verify_failed"
	case errors.Is(err, manifest.ErrIncompatible), errors.Is(err, archive.ErrWrongKey), errors.Is(err, archive.ErrKeyRequired):
		return exitIncompatible, "incompatible"
	case errors.Is(err, snapshot.ErrNotFound), errors.Is(err, archive.ErrNotFound):
		return exitNotFound, "not_found"
	}
	return exitError, "error"
}
