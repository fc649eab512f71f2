package repo

import (
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestPrefixTable: lookups through the prefix table find exactly what a
// plain search finds, in sets above and below the size that builds one,
// including ids that share a prefix with stored ones but are not stored.
func TestPrefixTable(t *testing.T) {
	for _, n := range []int{0, 1, 1000, PrefixTableMin + 1000} {
		s := &IDSet{}
		want := map[ID]bool{}
		for range n {
			var id ID
			rand.Read(id[:])
			s.Add(id)
			want[id] = true
		}
		s.Compact()
		if (s.table.start != nil) != (n >= PrefixTableMin) {
			t.Fatalf("n=%d: table built %v", n, s.table.start != nil)
		}
		for id := range want {
			if i, ok := s.Index(id); !ok || s.ids[i] != id {
				t.Fatalf("n=%d: stored id not found", n)
			}
			miss := id
			miss[31] ^= 1 // same prefix, not stored
			if _, ok := s.Index(miss); ok != want[miss] {
				t.Fatalf("n=%d: lookup of a near id said %v", n, ok)
			}
		}
		var far ID
		rand.Read(far[:])
		if _, ok := s.Index(far); ok != want[far] {
			t.Fatalf("n=%d: random id", n)
		}
	}
}

// BenchmarkIndexSealLookup seals an index of a million chunks in 1,000
// packs and looks every chunk up: what a download or gc of a million-file
// snapshot does with it.
func BenchmarkIndexSealLookup(b *testing.B) {
	n, per := benchN(), 1_000
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = HashOf([]byte(fmt.Sprint(i)))
	}
	for b.Loop() {
		x := NewIndex()
		for p := 0; p < n/per; p++ {
			refs := make([]BlobRef, per)
			for k := range refs {
				refs[k] = BlobRef{ID: ids[p*per+k], Offset: int64(k) * 100, Length: 100, Raw: 1024}
			}
			x.AddPack(HashOf([]byte(fmt.Sprint("pack", p))), int64(per)*100, refs)
		}
		x.Seal()
		for i := range ids {
			if _, ok := x.Lookup(ids[i]); !ok {
				b.Fatal("lost a chunk")
			}
		}
	}
}

// BenchmarkIDSet adds a million ids (a third of them twice) and finds each.
func BenchmarkIDSet(b *testing.B) {
	n := benchN()
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = HashOf([]byte(fmt.Sprint(i)))
	}
	for b.Loop() {
		var s IDSet
		for i := range ids {
			s.Add(ids[i])
			if i%3 == 0 {
				s.Add(ids[i/2])
			}
		}
		s.Compact()
		for i := range ids {
			if _, ok := s.Index(ids[i]); !ok {
				b.Fatal("lost an id")
			}
		}
	}
}

// TestIndex_FirstAddedWins: of a chunk stored twice (two packs, or twice
// in one pack), the index keeps the copy added first, above and below the
// size that builds a prefix table.
func TestIndex_FirstAddedWins(t *testing.T) {
	for _, n := range []int{10, PrefixTableMin + 10} {
		x := NewIndex()
		ids := make([]ID, n)
		for i := range ids {
			rand.Read(ids[i][:])
		}
		dup := ids[n/2]
		// Pack b, added first, holds dup twice; pack a, added after it (and
		// sorting before it by id), once more: b's first copy wins.
		b, a := HashOf([]byte("b")), HashOf([]byte("a"))
		refs := make([]BlobRef, 0, n)
		for i, id := range ids {
			refs = append(refs, BlobRef{ID: id, Offset: int64(i) * 10, Length: 10, Raw: 10})
		}
		refs = append(refs, BlobRef{ID: dup, Offset: int64(n) * 10, Length: 5, Raw: 5})
		x.AddPack(b, int64(n+1)*10, refs)
		x.AddPack(a, 10, []BlobRef{{ID: dup, Offset: 0, Length: 7, Raw: 7}})
		x.Seal()
		loc, ok := x.Lookup(dup)
		if !ok || loc.Pack != b || loc.Offset != int64(n/2)*10 || loc.Length != 10 {
			t.Fatalf("n=%d: want the first copy (pack b, offset %d), got %+v %v", n, n/2*10, loc, ok)
		}
		for _, id := range ids {
			if _, ok := x.Lookup(id); !ok {
				t.Fatalf("n=%d: lost a chunk", n)
			}
		}
	}
}

// benchN is the number of ids of the benchmarks above: a million, or
// HOTSNAP_BENCH_IDS (to compare sizes).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("HOTSNAP_BENCH_IDS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}
