//go:build !hotsnaptest

package snapshot

// crashPoint marks a step at which the crash tests kill the process. In
// normal builds it does nothing (see crashpoint_on.go).
func crashPoint(string) {}
