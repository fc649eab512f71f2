// Package errs is hotsnap's error taxonomy, the one place that says what a
// failure means to a caller: its kind, and for each kind the process exit
// code, the agent's HTTP status and the name in JSON output.
//
// Every layer's sentinel errors are made with New and so carry their kind;
// Of finds the kind of any error that wraps one. A kind travels over the
// agent API by name (ParseKind) and comes back as the kind's own sentinel
// (Sentinel), so errors.Is(err, errs.ErrNotFound) holds on both sides of
// the wire for every not-found error. It imports only the standard library.
package errs

import (
	"context"
	"fmt"
)

// Kind classifies an error for callers.
type Kind uint8

// The kinds. Error is the zero value: anything not classified.
const (
	Error        Kind = iota // anything else (exit 1)
	Usage                    // bad request, flags or input files (exit 2)
	LockTimeout              // writes could not be stopped, or a lock is held (exit 3)
	VerifyFailed             // verification failed, corrupt or untrusted data (exit 4)
	Incompatible             // version, topology, key or format (exit 5)
	NotFound                 // no such snapshot, job, piece or object (exit 6)
	Conflict                 // exists already, or another command is running (exit 1)
	Unauthorized             // missing or wrong credentials (exit 1)
	Forbidden                // credentials that may not do this: a reader asking to change (exit 1)
	Throttled                // too many requests or jobs of one client at once (exit 1)
	Internal                 // a bug: a panic caught (exit 70)
	Interrupted              // cancelled (exit 130)
	numKinds
)

// kinds is the table: one row per kind.
// (The HTTP status an agent answers each kind with is the agent's own:
// cluster/errors.go; errs stays free of net/http, so the packages an
// application imports, snapshot/writegate, pull in little.)
var kinds = [numKinds]struct {
	name string
	exit int
}{
	Error:        {"error", 1},
	Usage:        {"usage", 2},
	LockTimeout:  {"lock_timeout", 3},
	VerifyFailed: {"verify_failed", 4},
	Incompatible: {"incompatible", 5},
	NotFound:     {"not_found", 6},
	Conflict:     {"conflict", 1},
	Unauthorized: {"unauthorized", 1},
	Forbidden:    {"forbidden", 1},
	Throttled:    {"throttled", 1},
	Internal:     {"internal", 70},
	Interrupted:  {"interrupted", 130},
}

// String is the kind's name in JSON output and the agent API.
func (k Kind) String() string {
	if k >= numKinds {
		return kinds[Error].name
	}
	return kinds[k].name
}

// ExitCode is the process exit code of a command that failed with k.
func (k Kind) ExitCode() int {
	if k >= numKinds {
		return kinds[Error].exit
	}
	return kinds[k].exit
}

// ParseKind returns the kind of a name; an unknown name is Error.
func ParseKind(name string) Kind {
	for k := range numKinds {
		if kinds[k].name == name {
			return k
		}
	}
	return Error
}

// Kinds lists every kind, in table order.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for k := range numKinds {
		out[k] = k
	}
	return out
}

// kindError is a sentinel error with a kind.
type kindError struct {
	kind Kind
	msg  string
	base error // the kind's own sentinel, for errors.Is; nil for those
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Kind() Kind    { return e.kind }

// Is makes every sentinel of a kind match the kind's own sentinel, and an
// interrupted one match context.Canceled.
func (e *kindError) Is(t error) bool {
	return t != nil && (e.base != nil && t == error(e.base) || e.kind == Interrupted && t == context.Canceled)
}

// New returns a sentinel error of kind k with the message msg. It matches
// errors.Is(err, Sentinel(k)) as well as itself.
func New(k Kind, msg string) error {
	return &kindError{kind: k, msg: msg, base: sentinels[k]}
}

// Kinded is an error that knows its kind: the sentinels made by New, a
// remote error, a caught panic.
type Kinded interface {
	error
	Kind() Kind
}

// Of returns the kind of the first error in err's chain, depth first,
// that has one other than Error; Error otherwise, and for nil. A cancelled
// context is not Interrupted by itself: a timeout or a failed part cancels
// contexts too. Only the caller knows whether a person (a signal, an API
// abort) asked to stop, and says so with ErrInterrupted.
func Of(err error) Kind {
	if err == nil {
		return Error
	}
	return first(err)
}

func first(err error) Kind {
	for err != nil {
		if k, ok := err.(Kinded); ok && k.Kind() != Error {
			return k.Kind()
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if k := first(e); k != Error {
					return k
				}
			}
			return Error
		default:
			return Error
		}
	}
	return Error
}

// Each kind's own sentinel: what errors of that kind from another process
// unwrap to.
var (
	ErrError        = &kindError{kind: Error, msg: "error"}
	ErrInvalid      = &kindError{kind: Usage, msg: "invalid argument"}
	ErrLockTimeout  = &kindError{kind: LockTimeout, msg: "writes could not be stopped in time"}
	ErrVerifyFailed = &kindError{kind: VerifyFailed, msg: "verification failed"}
	ErrIncompatible = &kindError{kind: Incompatible, msg: "incompatible"}
	ErrNotFound     = &kindError{kind: NotFound, msg: "not found"}
	ErrConflict     = &kindError{kind: Conflict, msg: "conflict"}
	ErrUnauthorized = &kindError{kind: Unauthorized, msg: "unauthorized"}
	ErrForbidden    = &kindError{kind: Forbidden, msg: "forbidden"}
	ErrThrottled    = &kindError{kind: Throttled, msg: "throttled"}
	ErrInternal     = &kindError{kind: Internal, msg: "internal error"}
	ErrInterrupted  = &kindError{kind: Interrupted, msg: "interrupted"}

	sentinels = [numKinds]*kindError{Error: ErrError, Usage: ErrInvalid, LockTimeout: ErrLockTimeout, VerifyFailed: ErrVerifyFailed,
		Incompatible: ErrIncompatible, NotFound: ErrNotFound, Conflict: ErrConflict, Unauthorized: ErrUnauthorized,
		Forbidden: ErrForbidden, Throttled: ErrThrottled,
		Internal: ErrInternal, Interrupted: ErrInterrupted}
)

// ErrUntrusted is returned for state that another user could have
// written and hotsnap will not act on (docs/DESIGN.md, Trust). It exits
// 4, as data that fails verification.
var ErrUntrusted = New(VerifyFailed, "refusing untrusted state")

// Sentinel returns kind k's own sentinel error.
func Sentinel(k Kind) error {
	if k >= numKinds {
		k = Error
	}
	return sentinels[k]
}

// Wrap returns err with kind k when it has none of its own (Of(err) is
// Error): an error from a library marked, say, as bad usage.
func Wrap(k Kind, err error) error {
	if err == nil || Of(err) != Error {
		return err
	}
	return fmt.Errorf("%w: %w", Sentinel(k), err)
}
