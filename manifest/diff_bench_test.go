package manifest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const h2 = "bf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

// writeBig writes a sealed manifest of dirs x perDir files to path; every
// 100th file differs when changed is set.
func writeBig(tb testing.TB, path string, dirs, perDir int, changed bool) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	hdr := &Manifest{Format: Format, ID: "2026-01-02T03.04.05Z_big", Label: "big",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Node: Node{ID: "local"}, Topology: Topology{Nodes: []string{"local"}}}
	hdr.Totals = Totals{Files: int64(dirs * perDir), Dirs: int64(dirs), Bytes: int64(dirs * perDir * 1024)}
	w, err := NewWriter(f, hdr)
	if err != nil {
		tb.Fatal(err)
	}
	ino := uint64(1)
	for d := range dirs {
		dir := Name(fmt.Sprintf("d%05d", d))
		w.Add(&Entry{Path: dir, Type: TypeDir, Mode: 0o755})
		for i := range perDir {
			h := h1
			if changed && (d*perDir+i)%100 == 0 {
				h = h2
			}
			ino++
			w.Add(&Entry{Path: dir + Name(fmt.Sprintf("/f%06d", i)), Type: TypeFile, Mode: 0o644, Size: 1024, Capture: CaptureLink, BLAKE3: h, Inode: Inode{1, ino}})
		}
	}
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

func openBig(tb testing.TB, path string) (*Reader, func()) {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		tb.Fatal(err)
	}
	return r, func() { f.Close() }
}

// BenchmarkDiff1M: the diff of two snapshots of a million files (1,000
// dirs of 1,000), 1 % of the files changed, from their manifests alone
// (page cache). Reported: seconds per diff and the changes found.
func BenchmarkDiff1M(b *testing.B) {
	dir := b.TempDir()
	a, c := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	writeBig(b, a, 1000, 1000, false)
	writeBig(b, c, 1000, 1000, true)
	b.ResetTimer()
	for range b.N {
		ra, ca := openBig(b, a)
		rc, cc := openBig(b, c)
		n, err := Diff(context.Background(), ra, rc, func(Change) error { return nil })
		ca()
		cc()
		if err != nil || n.Modified != 10000 || n.Added != 0 || n.Removed != 0 {
			b.Fatalf("%+v %v", n, err)
		}
		b.ReportMetric(float64(n.Modified), "changes")
	}
}

func TestDiff_Streams(t *testing.T) {
	dir := t.TempDir()
	a, c := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	writeBig(t, a, 20, 50, false)
	writeBig(t, c, 20, 50, true)
	ra, ca := openBig(t, a)
	defer ca()
	rc, cc := openBig(t, c)
	defer cc()
	var got []Change
	n, err := Diff(context.Background(), ra, rc, func(ch Change) error { got = append(got, ch); return nil })
	if err != nil || n.Modified != 10 || len(got) != 10 || got[0].Path != "d00000/f000000" || got[0].What[0] != ChangedContent {
		t.Fatalf("%+v %v %+v", n, err, got)
	}
	// A manifest whose seal breaks fails the diff, at its end.
	bad, _ := os.ReadFile(c)
	bad[len(bad)-10] ^= 1
	os.WriteFile(c, bad, 0o644)
	ra2, ca2 := openBig(t, a)
	defer ca2()
	rc2, cc2 := openBig(t, c)
	defer cc2()
	if _, err := Diff(context.Background(), ra2, rc2, func(Change) error { return nil }); err == nil || err == io.EOF {
		t.Fatalf("a broken seal was not noticed: %v", err)
	}
}

// countEntries reads r to its proven end and counts its entries.
func countEntries(tb testing.TB, r *Reader) int {
	tb.Helper()
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
}

// BenchmarkRead1M: one pass over a manifest of a million files (page
// cache), as every command that streams a manifest makes.
func BenchmarkRead1M(b *testing.B) {
	a := filepath.Join(b.TempDir(), "a.json")
	writeBig(b, a, 1000, 1000, false)
	b.ResetTimer()
	for range b.N {
		r, done := openBig(b, a)
		n := countEntries(b, r)
		done()
		if n != 1001000 {
			b.Fatalf("%d entries", n)
		}
	}
}
