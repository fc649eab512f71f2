//go:build hotsnaptest

// Package crash marks steps at which the crash tests kill the process.
package crash

import (
	"os"
	"os/signal"
	"syscall"
)

// Point kills the process with SIGKILL when HOTSNAP_CRASH_AT names this
// step, and panics when HOTSNAP_PANIC_AT does. It exists only in binaries
// built with -tags hotsnaptest, which the crash tests build; it lets them
// kill a real process, make it meet a bug, or hold it for a signal, at a
// known step.
func Point(step string) {
	if os.Getenv("HOTSNAP_CRASH_AT") == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	if os.Getenv("HOTSNAP_PANIC_AT") == step {
		panic("test panic at " + step)
	}
	if os.Getenv("HOTSNAP_HANG_AT") == step {
		// Wait at this step for SIGINT or SIGTERM (the command's context
		// is cancelled by the same signal), having created the file
		// HOTSNAP_HANG_READY to say it is here.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		if f, err := os.Create(os.Getenv("HOTSNAP_HANG_READY")); err == nil {
			f.Close()
		}
		<-ch
		signal.Stop(ch)
	}
}
