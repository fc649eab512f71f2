// Package par runs bounded parallel loops the same way everywhere: one
// feeder that stops on ctx.Done(), N workers, first error cancels the rest.
package par

import (
	"context"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// DefaultWorkers is the bound used when a caller passes 0: twice the CPUs,
// because most loops here mix syscalls (blocking) with hashing (CPU).
func DefaultWorkers() int { return 2 * runtime.GOMAXPROCS(0) }

// ForEach calls fn(ctx, i) for i in [0, n) on at most workers goroutines.
// It returns the first error; the ctx handed to fn is cancelled on it.
func ForEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 0 {
		workers = DefaultWorkers()
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
				if err := fn(ctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}
