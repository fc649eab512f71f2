package repo

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"
	"testing"
)

func cuts(t *testing.T, r *Repo, data []byte) []ID {
	t.Helper()
	c := NewChunker(bytes.NewReader(data), &r.gear, r.cfg.Chunker, nil)
	var ids []ID
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) > r.cfg.Chunker.Max {
			t.Fatalf("chunk of %d bytes > max", len(ch))
		}
		ids = append(ids, HashOf(ch))
	}
}

func testRepo() *Repo {
	return newRepo(nil, Config{Chunker: ChunkerParams{Min: DefaultMinChunk, Avg: DefaultAvgChunk, Max: DefaultMaxChunk, Seed: "00"}}, nil)
}

// TestChunker_InsertShiftsFewBoundaries: inserting bytes near the start of
// 32 MiB changes only the chunks around the insertion.
func TestChunker_InsertShiftsFewBoundaries(t *testing.T) {
	r := testRepo()
	data := make([]byte, 32<<20)
	rand.Read(data)
	a := cuts(t, r, data)
	if want := len(data) / DefaultAvgChunk; len(a) < want/2 || len(a) > want*2 {
		t.Fatalf("%d chunks for 32 MiB with an average of %d KiB", len(a), DefaultAvgChunk>>10)
	}
	edited := append(append(append([]byte{}, data[:1000_000]...), []byte("INSERTED")...), data[1000_000:]...)
	b := cuts(t, r, edited)
	have := map[ID]bool{}
	for _, id := range a {
		have[id] = true
	}
	shared := 0
	for _, id := range b {
		if have[id] {
			shared++
		}
	}
	if shared < len(a)-3 {
		t.Fatalf("only %d of %d chunks survive a small insertion", shared, len(a))
	}
	if c := cuts(t, r, data); len(c) != len(a) || c[0] != a[0] {
		t.Fatal("chunking is not deterministic")
	}
}

func TestChunker_SmallFileIsOneChunk(t *testing.T) {
	if n := len(cuts(t, testRepo(), make([]byte, 100_000))); n != 1 {
		t.Fatalf("%d chunks", n)
	}
	if n := len(cuts(t, testRepo(), nil)); n != 0 {
		t.Fatalf("empty file: %d chunks", n)
	}
}

func TestBlob_RawWhenIncompressible(t *testing.T) {
	random := make([]byte, 1<<20)
	rand.Read(random)
	if b := EncodeBlob(nil, random); b[0] != blobRaw || len(b) != len(random)+1 {
		t.Fatalf("random data must be stored raw, got encoding %d, %d bytes", b[0], len(b))
	}
	text := bytes.Repeat([]byte("compressible text "), 50_000)
	b := EncodeBlob(nil, text)
	if b[0] != blobZstd || len(b) > len(text)/10 {
		t.Fatalf("text must be compressed: encoding %d, %d bytes", b[0], len(b))
	}
	if out, err := decodeBlob(nil, b, HashOf(text), len(text)); err != nil || !bytes.Equal(out, text) {
		t.Fatal(err)
	}
	if _, err := decodeBlob(nil, b, HashOf(random), len(text)); err == nil {
		t.Fatal("a blob must not decode under another id")
	}
}

func FuzzParsePack(f *testing.F) {
	p := &PackWriter{}
	p.Add(HashOf([]byte("x")), EncodeBlob(nil, []byte("x")), 1)
	data, _, _ := p.finish(nil)
	f.Add(data)
	f.Add([]byte("HSPACK01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, err := parsePack(nil, b)
		if err != nil {
			return
		}
		for _, r := range refs {
			_ = b[r.Offset : r.Offset+int64(r.Length)] // must be in bounds
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	b := EncodeIndex(nil, []PackEntry{{ID: HashOf([]byte("p")), Size: 100, Blobs: []BlobRef{{ID: HashOf([]byte("x")), Offset: 0, Length: 10, Raw: 5}}}})
	f.Add(b)
	f.Add(compress([]byte(indexMagic + "\xff\xff\xff\xff")))
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := DecodeIndex(nil, b, 1<<20, 1<<20)
		if err != nil {
			return
		}
		for _, p := range packs {
			var next int64
			for _, bl := range p.Blobs {
				if bl.Offset < next || bl.Offset+int64(bl.Length) > p.Size || bl.Length > 1<<20 || bl.Raw > 1<<20 {
					t.Fatal("accepted an entry outside its pack, out of order, or too large")
				}
				next = bl.Offset + int64(bl.Length)
			}
		}
	})
}

// FuzzDecodeSnapshotObject: whatever a remote serves as a snapshot object
// must be refused or describe streams whose sizes and chunk counts are
// bounded.
func FuzzDecodeSnapshotObject(f *testing.F) {
	r := testRepo()
	ok, _ := r.EncodeSnapshot(&SnapshotObject{ID: "2026-01-01T00.00.00Z_x", Node: "local",
		Manifest: StreamDesc{Size: 10, BLAKE3: strings.Repeat("0", 64), Chunks: []string{strings.Repeat("1", 64)}},
		Content:  StreamDesc{Size: 0, BLAKE3: strings.Repeat("0", 64), Chunks: []string{}}})
	f.Add(ok)
	f.Add([]byte{})
	f.Add([]byte(`{"format":2,"manifest":{"size":-1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := r.DecodeSnapshot(b)
		if err != nil {
			return
		}
		for _, d := range []StreamDesc{o.Manifest, o.Content} {
			if d.Size < 0 || int64(len(d.Chunks)) > d.Size || int64(len(d.Chunks))*int64(r.cfg.Chunker.Max) < d.Size {
				t.Fatalf("accepted an impossible stream: %+v", d)
			}
		}
	})
}
