//go:build hotsnaptest

package remote

import (
	"os"
	"strconv"
	"strings"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/archive/store/faulty"
)

// withFaults wraps st in faults when HOTSNAP_FAULTS is "SEED:P" (test
// builds only): each call fails with probability P. Each fault injected
// adds a line to the file HOTSNAP_FAULTS_LOG names, when set.
func withFaults(st store.Store) store.Store {
	seed, p, ok := strings.Cut(os.Getenv("HOTSNAP_FAULTS"), ":")
	if !ok {
		return st
	}
	s, err1 := strconv.ParseUint(seed, 10, 64)
	prob, err2 := strconv.ParseFloat(p, 64)
	if err1 != nil || err2 != nil {
		return st
	}
	f := faulty.New(st, s, prob)
	if log := os.Getenv("HOTSNAP_FAULTS_LOG"); log != "" {
		f.OnFault = func() {
			if lf, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
				lf.WriteString("fault\n")
				lf.Close()
			}
		}
	}
	return f
}
