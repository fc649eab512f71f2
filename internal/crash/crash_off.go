//go:build !hotsnaptest

// Package crash marks steps at which the crash tests kill the process. In
// normal builds Point does nothing; see crash_on.go.
package crash

// Point does nothing in normal builds.
func Point(string) {}
