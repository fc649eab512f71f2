package errs

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestTable pins the contract users and scripts depend on: the README's
// exit codes and JSON kind names, and the agent's statuses.
func TestTable(t *testing.T) {
	want := []struct {
		k    Kind
		name string
		exit int
	}{
		{Error, "error", 1},
		{Usage, "usage", 2},
		{LockTimeout, "lock_timeout", 3},
		{VerifyFailed, "verify_failed", 4},
		{Incompatible, "incompatible", 5},
		{NotFound, "not_found", 6},
		{Conflict, "conflict", 1},
		{Unauthorized, "unauthorized", 1},
		{Forbidden, "forbidden", 1},
		{Throttled, "throttled", 1},
		{Internal, "internal", 70},
		{Interrupted, "interrupted", 130},
	}
	if len(want) != len(Kinds()) {
		t.Fatalf("%d kinds, the test knows %d", len(Kinds()), len(want))
	}
	for _, w := range want {
		if w.k.String() != w.name || w.k.ExitCode() != w.exit {
			t.Errorf("%d: %s/%d, want %s/%d", w.k, w.k, w.k.ExitCode(), w.name, w.exit)
		}
		if ParseKind(w.name) != w.k {
			t.Errorf("ParseKind(%q) = %s", w.name, ParseKind(w.name))
		}
		if Of(Sentinel(w.k)) != w.k {
			t.Errorf("the sentinel of %s has kind %s", w.k, Of(Sentinel(w.k)))
		}
	}
	if ParseKind("no such kind") != Error || Kind(200).String() != "error" || Kind(200).ExitCode() != 1 {
		t.Error("unknown kinds must read as Error")
	}
}

func TestOf(t *testing.T) {
	errCorrupt := New(VerifyFailed, "manifest is corrupt")
	errPlain := errors.New("plain")
	errUnkinded := New(Error, "quiesce failed")
	cases := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Error},
		{"plain", errPlain, Error},
		{"sentinel", errCorrupt, VerifyFailed},
		{"wrapped", fmt.Errorf("entry a/b: %w", errCorrupt), VerifyFailed},
		{"an Error-kind sentinel does not hide a later kind", fmt.Errorf("%w: %w", errUnkinded, errCorrupt), VerifyFailed},
		{"first kind wins", fmt.Errorf("%w: %w", ErrInvalid, errCorrupt), Usage},
		{"joined", errors.Join(errPlain, fmt.Errorf("x: %w", New(NotFound, "no such snapshot"))), NotFound},
		{"a cancelled context is not an interruption", fmt.Errorf("put x: %w", context.Canceled), Error},
		{"nor does it hide a kind", fmt.Errorf("%w: %w", errCorrupt, context.Canceled), VerifyFailed},
		{"an interruption is said", fmt.Errorf("%w: %w", ErrInterrupted, errCorrupt), Interrupted},
		{"Wrap marks the unkinded", Wrap(Usage, errPlain), Usage},
		{"Wrap keeps a kind", Wrap(Usage, errCorrupt), VerifyFailed},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: Of = %s, want %s", c.name, got, c.want)
		}
	}
	// A package's sentinel matches its kind's own sentinel (what an error
	// that crossed the agent API unwraps to), not another kind's.
	if !errors.Is(fmt.Errorf("x: %w", errCorrupt), ErrVerifyFailed) || errors.Is(errCorrupt, ErrNotFound) {
		t.Error("sentinels must match their kind's sentinel only")
	}
	if !errors.Is(ErrInterrupted, context.Canceled) {
		t.Error("an interrupted error must match context.Canceled")
	}
}
