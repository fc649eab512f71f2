package main

import (
	"errors"

	"github.com/hotsnap/hotsnap/cluster"
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
	exitInternal     = 70 // EX_SOFTWARE: a bug (a panic caught), reported as "internal error"
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

// exitCode maps an error to the process exit code: the one place that does
// (the classification itself is cluster.Kind, shared with the agents).
func exitCode(err error) (int, string) {
	var u usageError
	if err == nil {
		return exitOK, ""
	}
	if errors.As(err, &u) {
		return exitUsage, cluster.KindUsage
	}
	switch k := cluster.Kind(err); k {
	case cluster.KindUsage:
		return exitUsage, k
	case cluster.KindLockTimeout:
		return exitLockTimeout, k
	case cluster.KindVerifyFailed:
		return exitVerifyFailed, k
	case cluster.KindIncompatible:
		return exitIncompatible, k
	case cluster.KindNotFound:
		return exitNotFound, k
	case cluster.KindInterrupted:
		return exitInterrupted, k
	case cluster.KindInternal:
		return exitInternal, k
	}
	return exitError, cluster.KindError
}
