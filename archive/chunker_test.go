package archive

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

func cuts(t *testing.T, r *Repo, data []byte) []ID {
	t.Helper()
	c := newChunker(bytes.NewReader(data), &r.gear, r.cfg.Chunker, nil)
	var ids []ID
	for {
		ch, err := c.next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) > r.cfg.Chunker.Max {
			t.Fatalf("chunk of %d bytes > max", len(ch))
		}
		ids = append(ids, hashOf(ch))
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
	if len(a) < 16 || len(a) > 64 {
		t.Fatalf("%d chunks for 32 MiB with an average of 1 MiB", len(a))
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
	if b := encodeBlob(nil, random); b[0] != blobRaw || len(b) != len(random)+1 {
		t.Fatalf("random data must be stored raw, got encoding %d, %d bytes", b[0], len(b))
	}
	text := bytes.Repeat([]byte("compressible text "), 50_000)
	b := encodeBlob(nil, text)
	if b[0] != blobZstd || len(b) > len(text)/10 {
		t.Fatalf("text must be compressed: encoding %d, %d bytes", b[0], len(b))
	}
	if out, err := decodeBlob(nil, b, hashOf(text), len(text)); err != nil || !bytes.Equal(out, text) {
		t.Fatal(err)
	}
	if _, err := decodeBlob(nil, b, hashOf(random), len(text)); err == nil {
		t.Fatal("a blob must not decode under another id")
	}
}

func FuzzParsePack(f *testing.F) {
	p := &packWriter{}
	p.add(hashOf([]byte("x")), encodeBlob(nil, []byte("x")), 1)
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
	b, _ := encodeIndex(nil, []packEntry{{ID: hashOf([]byte("p")), Size: 100, Blobs: []BlobRef{{ID: hashOf([]byte("x")), Offset: 0, Length: 10, Raw: 5}}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := decodeIndex(nil, b)
		if err != nil {
			return
		}
		for _, p := range packs {
			for _, bl := range p.Blobs {
				if bl.Offset+int64(bl.Length) > p.Size {
					t.Fatal("accepted an entry outside its pack")
				}
			}
		}
	})
}

// FuzzDecodeArchivedManifest: whatever a remote serves as a manifest must be
// refused or yield a sealed node manifest whose every file has a chunk list.
func FuzzDecodeArchivedManifest(f *testing.F) {
	f.Add([]byte{})
	f.Add(compress([]byte(`{"format":1,"manifest":"{}","content":{}}`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeArchivedManifest(nil, b)
		if err != nil {
			return
		}
		for _, e := range s.m.Entries {
			if e.Type == "file" {
				if _, ok := s.content[e.BLAKE3]; !ok {
					t.Fatal("accepted a manifest with a file that has no chunk list")
				}
			}
		}
	})
}
