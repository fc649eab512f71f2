// Command hotsnap takes consistent hot snapshots of a live data directory.
// See docs/cli.md, docs/json.md and docs/exit-codes.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/hotsnap/hotsnap/defaults"
)

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise:
// uploads and downloads hold a few packs and chunks at a time (under 100 MiB
// live), and the limit keeps the collector from letting garbage double that
// past the 512 MiB bar. It was 192 MiB: a create of a million files keeps
// about 180 MB live (its first pass's records), and at that limit the
// collector ran 1,004 times in one create (65.4 s) against 14 times at
// 384 MiB (53.1 s, peak RSS 377 MiB); docs/benchmarks.md.
const memoryLimit = 384 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// HOTSNAP_CPUPROFILE=FILE writes a CPU profile of the run (a developer
	// aid for `go tool pprof`).
	if f := os.Getenv("HOTSNAP_CPUPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			pprof.StartCPUProfile(out)
			defer out.Close()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	os.Exit(code)
}

// procsForDisk raises GOMAXPROCS to defaults.Procs for a command that
// waits on the disk in many short system calls (create, verify, restore),
// unless GOMAXPROCS is set in the environment: a first create of 200,000
// small files took 7.2 s instead of 9.1 s, a cold verify 5.5 s instead of
// 6.9 s. Not for upload, which it slowed by a fifth (docs/benchmarks.md,
// Processors for the waits).
func procsForDisk() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(defaults.Procs())
	}
}
