package par

import (
	"context"
	"errors"
	"testing"
)

// TestForEach_PanicIsAnError: a panic in a worker becomes a *PanicError
// for the caller instead of crashing the process.
func TestForEach_PanicIsAnError(t *testing.T) {
	err := ForEach(context.Background(), 10, 3, func(ctx context.Context, i int) error {
		if i == 7 {
			var m map[string]int
			m["boom"] = 1 // a real runtime panic
		}
		return nil
	})
	var pe *PanicError
	if !errors.As(err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("want a PanicError with a stack, got %v", err)
	}
	if err := Safely(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := errors.New("plain")
	if err := Safely(func() error { return want }); err != want {
		t.Fatalf("Safely changed an error: %v", err)
	}
}

// TestStripes: every index once, in contiguous shares; a panic is a
// *PanicError; an error is returned.
func TestStripes(t *testing.T) {
	for _, n := range []int{0, 1, 5, 1000} {
		seen := make([]int32, n)
		if err := Stripes(context.Background(), n, 3, func(ctx context.Context, i int) error {
			seen[i]++ // each index belongs to one worker
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: index %d called %d times", n, i, c)
			}
		}
	}
	err := Stripes(context.Background(), 10, 2, func(ctx context.Context, i int) error {
		if i == 7 {
			var m map[string]int
			m["boom"] = 1
		}
		return nil
	})
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PanicError, got %v", err)
	}
	want := errors.New("stop")
	if err := Stripes(context.Background(), 10, 2, func(ctx context.Context, i int) error {
		if i == 3 {
			return want
		}
		return nil
	}); err != want {
		t.Fatalf("want the fn's error, got %v", err)
	}
}
