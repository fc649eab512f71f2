package archive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hotsnap/hotsnap/archive/repo"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

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
		"prose.txt":   testtree.ProseText(2<<20, 7),
		"small-1.txt": testtree.ProseText(40<<10, 8),
		"small-2.txt": testtree.ProseText(200<<10, 9),
		"big.txt":     testtree.ProseText(6<<20, 10),
	}
	mixed := make([]byte, 64<<10, 3<<20)
	testtree.RandomFill(mixed, 11)
	files["random-head.txt"] = append(mixed, testtree.ProseText(3<<20-64<<10, 12)...)
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
	enc, _ := zstd.NewWriter(nil, repo.EncoderOptions(true)...)
	small, _ := zstd.NewWriter(nil, repo.EncoderAt(zstd.SpeedFastest, true)...) // chunks under repo.SmallChunk
	var packBytes, bound, raw, blobs int
	must(t, filepath.Walk(filepath.Join(root, "packs"), func(path string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		pack, err := os.ReadFile(path)
		must(t, err)
		refs, err := r.ParsePack(pack)
		must(t, err)
		for _, b := range refs {
			chunk, err := r.DecodeBlob(pack[b.Offset:b.Offset+int64(b.Length)], b.ID, b.Raw)
			must(t, err)
			e := enc
			if len(chunk) < repo.SmallChunk {
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
		if limit := bound + blobs*repo.TrailerEntry + repo.TrailerTailLen; packBytes > limit {
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
