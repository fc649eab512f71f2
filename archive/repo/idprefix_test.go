package repo

import (
	"crypto/rand"
	"fmt"
	"os"
	"slices"
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

// TestSortByID: the radix sort orders as a comparison sort does, on
// uniform ids and on ids crowded into one bucket (the same first two
// bytes, the same first eight), at sizes around its cut-offs, with the
// comparator deciding ties.
func TestSortByID(t *testing.T) {
	type ent struct {
		id  ID
		seq int
	}
	cmpEnt := func(a, b ent) int {
		if c := a.id.Compare(&b.id); c != 0 {
			return c
		}
		return a.seq - b.seq
	}
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 70000} {
		for _, crowd := range []int{0, 2, 8} {
			s := make([]ent, n)
			for i := range s {
				rand.Read(s[i].id[:])
				copy(s[i].id[:crowd], "\x17\x17\x17\x17\x17\x17\x17\x17")
				if i%7 == 3 && i > 0 { // repeated ids: seq decides
					s[i].id = s[i-1].id
				}
				s[i].seq = n - i
			}
			want := slices.Clone(s)
			slices.SortFunc(want, cmpEnt)
			SortByID(s, func(e *ent) *ID { return &e.id }, cmpEnt)
			if !slices.Equal(s, want) {
				t.Fatalf("n=%d crowd=%d: order differs from a comparison sort", n, crowd)
			}
		}
	}
}

// TestLookup_SameLeadingBytes: ids alike in their first eight bytes (the
// key the lookups bisect) are told apart by the rest, found where stored,
// and a missing one gets the position a plain search gives.
func TestLookup_SameLeadingBytes(t *testing.T) {
	for _, n := range []int{100, PrefixTableMin + 100} {
		s := &IDSet{}
		x := NewIndex()
		var all []ID
		var refs []BlobRef
		for i := range n {
			var id ID
			rand.Read(id[:])
			if i%4 != 0 { // runs of four sharing eight leading bytes
				copy(id[:8], all[i-1][:8])
			}
			all = append(all, id)
			s.Add(id)
			refs = append(refs, BlobRef{ID: id, Offset: int64(i), Length: 1, Raw: 1})
		}
		s.Compact()
		x.AddPack(HashOf([]byte("p")), int64(n), refs)
		x.Seal()
		sorted := slices.Clone(all)
		slices.SortFunc(sorted, func(a, b ID) int { return a.Compare(&b) })
		for i, id := range all {
			if j, ok := s.Index(id); !ok || s.At(j) != id {
				t.Fatalf("n=%d: id %d not found in the set", n, i)
			}
			if loc, ok := x.Lookup(id); !ok || loc.Offset != int64(i) {
				t.Fatalf("n=%d: id %d not found in the index (%+v %v)", n, i, loc, ok)
			}
			miss := id
			miss[31] ^= 0x80
			wantPos, wantOK := slices.BinarySearchFunc(sorted, miss, func(a, b ID) int { return a.Compare(&b) })
			if j, ok := s.Index(miss); ok != wantOK || j != wantPos {
				t.Fatalf("n=%d: near id: set says %d %v, a plain search %d %v", n, j, ok, wantPos, wantOK)
			}
			if _, ok := x.Lookup(miss); ok != wantOK {
				t.Fatalf("n=%d: near id: index says %v", n, ok)
			}
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
