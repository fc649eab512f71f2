package testserver

import (
	"os/exec"
	"syscall"
	"testing"
)

// Hog starts n busy loops (sh -c 'while :; do :; done'), each a process
// of its own, killed by pid when the test ends: a machine whose CPUs are
// all taken, for tests that must hold on a busy machine.
func Hog(t testing.TB, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a CPU hog: %v", err)
		}
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		})
	}
}
