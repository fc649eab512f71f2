// Command hotsnap takes consistent hot snapshots of a live data directory.
// See docs/cli.md, docs/json.md and docs/exit-codes.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise:
// uploads and downloads hold a few packs and chunks at a time (under 100 MiB
// live), and the limit keeps the collector from letting garbage double that.
const memoryLimit = 192 << 20

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
