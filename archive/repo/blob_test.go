package repo

import (
	"math"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// TestLiteralsCanShrink: the order-0 bound says yes for text and for a
// chunk whose head is random and whose rest is text, no for random bytes
// of any size.
func TestLiteralsCanShrink(t *testing.T) {
	random := make([]byte, 4<<20)
	testtree.RandomFill(random, 3)
	mixed := append(append([]byte{}, random[:1<<20]...), testtree.ProseText(3<<20, 4)...)
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"random 1 KiB", random[:1024], false},
		{"random 64 KiB", random[:64<<10], false},
		{"random 4 MiB", random, false},
		{"text 1 KiB", testtree.ProseText(1024, 1), true},
		{"text 4 MiB", testtree.ProseText(4<<20, 2), true},
		{"random head, text rest", mixed, true},
		{"zeros", make([]byte, 8192), true},
		{"tiny", []byte("abc"), false},
	} {
		if got := literalsCanShrink(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// BenchmarkEncodeBlob: random chunks cost little without a probe, since
// zstd gives up on them by itself.
func BenchmarkEncodeBlob(b *testing.B) {
	random := make([]byte, 1<<20)
	testtree.RandomFill(random, 1)
	for _, c := range []struct {
		name  string
		chunk []byte
	}{{"random", random}, {"text", testtree.ProseText(1<<20, 3)}, {"random 1 KiB", random[:1024]}, {"text 1 KiB", testtree.ProseText(1024, 4)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.chunk)))
			dst := make([]byte, 0, 2<<20)
			for b.Loop() {
				dst = EncodeBlob(dst, c.chunk)
			}
		})
	}
}

func TestLog2(t *testing.T) {
	for c := uint32(1); c < 1<<22; c += 1 + c/1000 {
		if d := log2(c) - math.Log2(float64(c)); d > 0.006 || d < -0.006 {
			t.Fatalf("log2(%d) = %v, math.Log2 %v", c, log2(c), math.Log2(float64(c)))
		}
	}
}
