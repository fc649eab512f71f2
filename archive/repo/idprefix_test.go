package repo

import (
	"crypto/rand"
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
