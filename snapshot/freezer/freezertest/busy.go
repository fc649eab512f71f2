package freezertest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Busy is a shell script (run as sh -c Busy FILE) that rewrites an
// ever-growing counter in FILE, with two children and a grandchild doing
// the same in FILE.a, FILE.b and FILE.c: a process tree that writes all
// the time. BusyFiles names the four files.
const Busy = `loop() { i=0; while :; do i=$((i+1)); echo $i > "$1"; done; }
loop "$0.a" & ( loop "$0.b" & loop "$0.c" ) & loop "$0"`

// BusyFiles are the files Busy FILE writes.
func BusyFiles(f string) []string { return []string{f, f + ".a", f + ".b", f + ".c"} }

func readTrim(f string) string {
	b, _ := os.ReadFile(f)
	return strings.TrimSpace(string(b))
}

// WaitAdvancing waits, with no upper bound, until every file changes: its
// writer runs.
func WaitAdvancing(t testing.TB, files ...string) {
	t.Helper()
	for _, f := range files {
		was := readTrim(f)
		for readTrim(f) == was {
			time.Sleep(time.Millisecond)
		}
	}
}

// StaysStill fails the test if any file changes over 150 ms: its writer
// was not stopped. (A stopped writer can only make it pass, never fail
// it spuriously.)
func StaysStill(t testing.TB, files ...string) {
	t.Helper()
	before := make([]string, len(files))
	for i, f := range files {
		before[i] = readTrim(f)
	}
	time.Sleep(150 * time.Millisecond)
	for i, f := range files {
		if now := readTrim(f); now != before[i] {
			t.Fatalf("%s changed (%s -> %s): its writer was not stopped", f, before[i], now)
		}
	}
}
