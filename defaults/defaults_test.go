package defaults

import "testing"

// TestReaders: a pass that only reads keeps at least 16 reads in flight,
// and never fewer than the workers the CPUs allow.
func TestReaders(t *testing.T) {
	if r := Readers(); r < 16 || r < Workers() {
		t.Fatalf("Readers() = %d with Workers() = %d: want at least 16 and at least Workers", r, Workers())
	}
}
