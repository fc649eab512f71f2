//go:build !hotsnaptest

package remote

import "github.com/hotsnap/hotsnap/archive/store"

// withFaults is a no-op in normal builds (faults_on.go: test builds).
func withFaults(st store.Store) store.Store { return st }
