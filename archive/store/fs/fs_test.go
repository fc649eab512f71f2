package fs

import (
	"testing"

	"github.com/hotsnap/hotsnap/archive/store/storetest"
)

func TestConformance(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s)
}
