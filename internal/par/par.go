// Package par runs bounded parallel loops the same way everywhere: one
// feeder that stops on ctx.Done(), N workers, first error cancels the rest.
package par

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/errs"
	"golang.org/x/sync/errgroup"
)

// ForEach calls fn(ctx, i) for i in [0, n) on at most workers goroutines.
// It returns the first error (a panic in fn is a *PanicError); the ctx
// handed to fn is cancelled on it.
func ForEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 0 {
		workers = defaults.Workers()
	}
	if workers > n {
		workers = n
	}
	if n == 0 {
		return ctx.Err()
	}
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			for i := range next {
				if err := Safely(func() error { return fn(ctx, i) }); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// Stripes is ForEach with each worker taking a contiguous share of [0, n)
// instead of one index at a time from a feeder: for many small items
// whose neighbours belong together (the files of one directory), and
// whose hand-off would cost more than the item.
func Stripes(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 0 {
		workers = defaults.Workers()
	}
	workers = min(workers, n)
	if n == 0 {
		return ctx.Err()
	}
	g, ctx := errgroup.WithContext(ctx)
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		g.Go(func() error {
			return Safely(func() error {
				for i := lo; i < hi; i++ {
					if err := ctx.Err(); err != nil {
						return err
					}
					if err := fn(ctx, i); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	return g.Wait()
}

// PanicError is a panic caught in a goroutine hotsnap started: a bug,
// reported as an error ("internal error") instead of crashing the process
// with a stack trace and exit code 2, the usage code.
type PanicError struct {
	Value any
	Stack []byte
}

// Kind is errs.Internal: a panic is a bug, exit 70.
func (p *PanicError) Kind() errs.Kind { return errs.Internal }

func (p *PanicError) Error() string {
	return fmt.Sprintf("internal error: %v (a bug in hotsnap; please report it with this message)", p.Value)
}

// Safely calls fn and turns a panic in it into a *PanicError.
func Safely(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
