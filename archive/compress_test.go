package archive

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
)

// proseText is text as prose or varied logs are: random words from a
// vocabulary of 5,000, space- and newline-separated.
func proseText(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := make([][]byte, 5000)
	for i := range words {
		w := make([]byte, 3+r.IntN(8))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = w
	}
	var b bytes.Buffer
	for b.Len() < n {
		b.Write(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// TestArchive_TextCompressesAsZstd: an archive of text-like files is no
// larger than its chunks compressed one by one by zstd at the chosen
// settings plus the format's overhead (an encoding byte and a trailer entry
// per blob, a trailer tail per pack). The set holds the cases that defeated
// the old incompressibility probe: text whose first 32 KiB find no match
// (a large vocabulary), and a file whose head is random and whose rest is
// text (3 % of a text archive was stored raw).
func TestArchive_TextCompressesAsZstd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string][]byte{
		"prose.txt":   proseText(2<<20, 7),
		"small-1.txt": proseText(40<<10, 8),
		"small-2.txt": proseText(200<<10, 9),
		"big.txt":     proseText(6<<20, 10),
	}
	mixed := make([]byte, 64<<10, 3<<20)
	randomFill(mixed, 11)
	files["random-head.txt"] = append(mixed, proseText(3<<20-64<<10, 12)...)
	var total int
	for name, b := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		total += len(b)
	}
	l, id := snap(t, dir)
	root := t.TempDir()
	st, _ := fsstore.New(root)
	r := openRepo(t, st)
	_, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)

	// Every pack, blob by blob: each blob no larger than zstd makes its
	// chunk (or the chunk raw), plus its encoding byte; each pack no
	// larger than its blobs plus trailer entries and tail.
	enc, _ := zstd.NewWriter(nil, encoderOptions(true)...)
	small, _ := zstd.NewWriter(nil, encoderAt(zstd.SpeedFastest, true)...) // chunks under smallChunk
	var packBytes, bound, raw, blobs int
	must(t, filepath.Walk(filepath.Join(root, "packs"), func(path string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		pack, err := os.ReadFile(path)
		must(t, err)
		tl, err := trailerLen(nil, pack[len(pack)-trailerTailLen:], int64(len(pack)))
		must(t, err)
		end := len(pack) - trailerTailLen - tl
		refs, err := parseTrailer(nil, pack[end:len(pack)-trailerTailLen], int64(len(pack)))
		must(t, err)
		for _, b := range refs {
			chunk, err := decodeBlob(nil, pack[b.Offset:b.Offset+int64(b.Length)], b.ID, b.Raw)
			must(t, err)
			e := enc
			if len(chunk) < smallChunk {
				e = small
			}
			z := min(len(e.EncodeAll(chunk, nil)), len(chunk)) + 1
			if b.Length > z {
				t.Errorf("a chunk of %d bytes is stored in %d bytes; zstd makes %d", b.Raw, b.Length, z)
			}
			bound += z
			raw += b.Raw
		}
		blobs += len(refs)
		packBytes += len(pack)
		if limit := bound + blobs*trailerEntry + trailerTailLen; packBytes > limit {
			t.Errorf("pack %s is %d bytes, more than its blobs by zstd and the format's overhead (%d)", filepath.Base(path), len(pack), limit)
		}
		packBytes, bound, blobs = 0, 0, 0
		return nil
	}))
	var stored int
	must(t, filepath.Walk(filepath.Join(root, "packs"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			stored += int(fi.Size())
		}
		return err
	}))
	// 5,000-word text compresses to about 37 % with these settings.
	if ratio := float64(stored) / float64(total); ratio > 0.40 {
		t.Errorf("%d bytes of text stored in %d bytes of packs (%.1f %%)", total, stored, 100*ratio)
	}
	t.Logf("%d bytes of text (%d with the manifest and content streams) stored in %d bytes of packs (%.1f %%)", total, raw, stored, 100*float64(stored)/float64(total))
}

// TestLiteralsCanShrink: the order-0 bound says yes for text and for a
// chunk whose head is random and whose rest is text, no for random bytes
// of any size.
func TestLiteralsCanShrink(t *testing.T) {
	random := make([]byte, 4<<20)
	randomFill(random, 3)
	mixed := append(append([]byte{}, random[:1<<20]...), proseText(3<<20, 4)...)
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"random 1 KiB", random[:1024], false},
		{"random 64 KiB", random[:64<<10], false},
		{"random 4 MiB", random, false},
		{"text 1 KiB", proseText(1024, 1), true},
		{"text 4 MiB", proseText(4<<20, 2), true},
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
	randomFill(random, 1)
	for _, c := range []struct {
		name  string
		chunk []byte
	}{{"random", random}, {"text", proseText(1<<20, 3)}, {"random 1 KiB", random[:1024]}, {"text 1 KiB", proseText(1024, 4)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.chunk)))
			dst := make([]byte, 0, 2<<20)
			for b.Loop() {
				dst = encodeBlob(dst, c.chunk)
			}
		})
	}
}

func randomFill(b []byte, seed uint64) {
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
}

func TestLog2(t *testing.T) {
	for c := uint32(1); c < 1<<22; c += 1 + c/1000 {
		if d := log2(c) - math.Log2(float64(c)); d > 0.006 || d < -0.006 {
			t.Fatalf("log2(%d) = %v, math.Log2 %v", c, log2(c), math.Log2(float64(c)))
		}
	}
}
