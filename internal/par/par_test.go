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
