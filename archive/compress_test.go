package archive

import (
	"bytes"
	"context"
	"io"
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

// TestArchive_TextCompressesAsZstd: every chunk of a text file is stored no
// larger than zstd at the default level makes it, plus the one byte that
// says how it is encoded. (The incompressibility probe used zstd's fastest
// level, which leaves the first blocks of such text raw: 2 MiB of it were
// stored at 71 % instead of about 39 %.)
func TestArchive_TextCompressesAsZstd(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	text := proseText(2<<20, 7)
	must(t, os.WriteFile(filepath.Join(dir, "prose.txt"), text, 0o644))
	l, id := snap(t, dir)
	st, _ := fsstore.New(t.TempDir())
	r := openRepo(t, st)
	_, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)

	idx, _, err := r.LoadIndex(ctx, false)
	must(t, err)
	list, err := r.List(ctx)
	must(t, err)
	p, err := r.openPiece(ctx, idx, &list[0])
	must(t, err)
	defer p.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	found := false
	for {
		e, ids, err := p.next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if e.Path != "prose.txt" {
			continue
		}
		found = true
		var off, stored, bound int
		for _, cid := range ids {
			loc, _ := idx.Lookup(cid)
			chunk := text[off : off+loc.Raw]
			off += loc.Raw
			z := len(enc.EncodeAll(chunk, nil)) + 1
			if loc.Length > z {
				t.Errorf("a chunk of %d bytes of text is stored in %d bytes; zstd's default level makes %d", loc.Raw, loc.Length, z)
			}
			stored += loc.Length
			bound += z
		}
		if ratio := float64(stored) / float64(len(text)); ratio > 0.45 {
			t.Fatalf("2 MiB of text stored at %.0f %% of its size (zstd's default level: %.0f %%)", 100*ratio, 100*float64(bound)/float64(len(text)))
		}
		t.Logf("2 MiB of text stored in %d bytes (%.1f %%), zstd default level chunk by chunk %d", stored, 100*float64(stored)/float64(len(text)), bound)
	}
	if !found {
		t.Fatal("prose.txt not in the archive")
	}
}
