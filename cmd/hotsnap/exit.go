package main

import (
	"github.com/hotsnap/hotsnap/errs"
)

// usageError marks bad command-line usage (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string   { return u.err.Error() }
func (u usageError) Unwrap() error   { return u.err }
func (u usageError) Kind() errs.Kind { return errs.Usage }

// silentError carries an exit code for an outcome already printed (a
// verify result with differences in --json mode): no second error object.
type silentError struct{ err error }

func (s silentError) Error() string { return s.err.Error() }
func (s silentError) Unwrap() error { return s.err }

// exitCode maps an error to the process exit code and its kind's name.
func exitCode(err error) (int, string) {
	if err == nil {
		return 0, ""
	}
	k := errs.Of(err)
	return k.ExitCode(), k.String()
}
