//go:build hotsnaptest

// Package crash marks steps at which the crash tests kill the process.
package crash

import (
	"os"
	"syscall"
)

// Point kills the process with SIGKILL when HOTSNAP_CRASH_AT names this
// step, and panics when HOTSNAP_PANIC_AT does. It exists only in binaries
// built with -tags hotsnaptest, which the crash tests build; it lets them
// kill a real process, or make it meet a bug, at a known step.
func Point(step string) {
	if os.Getenv("HOTSNAP_CRASH_AT") == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	if os.Getenv("HOTSNAP_PANIC_AT") == step {
		panic("test panic at " + step)
	}
}
