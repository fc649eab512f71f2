package repo

import (
	"encoding/binary"
	"slices"
)

// PrefixTable narrows a search in a sorted slice of chunk ids to the ids
// that share the key's first two bytes. Chunk ids are uniform hashes, so a
// million of them leave about 15 per prefix (a cache line or two), where
// a bisection of the whole slice touches 20 places far apart: at a million
// chunks those cache misses made gc's lookups grow faster than the archive
// (a profile: 27 % of gc in bisections). Built only for large slices.
type PrefixTable struct {
	start []uint32 // len 1<<16+1: ids with prefix p are [start[p], start[p+1])
}

const PrefixTableMin = 1 << 16

func prefixOf(id *ID) int { return int(id[0])<<8 | int(id[1]) }

// BuildPrefixTable indexes the n sorted ids idAt gives.
func BuildPrefixTable(n int, idAt func(i int) *ID) PrefixTable {
	if n < PrefixTableMin {
		return PrefixTable{}
	}
	start := make([]uint32, 1<<16+1)
	for i := 0; i < n; i++ {
		start[prefixOf(idAt(i))+1]++
	}
	for p := 1; p < len(start); p++ {
		start[p] += start[p-1]
	}
	return PrefixTable{start: start}
}

// span is where id can be among the n ids the table was built for.
func (t PrefixTable) span(id *ID, n int) (lo, hi int) {
	if t.start == nil {
		return 0, n
	}
	p := prefixOf(id)
	return int(t.start[p]), int(t.start[p+1])
}

// SortByID sorts s by the chunk id each element holds (id gives it), with
// cmp deciding within the same two leading bytes: an in-place radix sort
// (American flag) on the first two bytes, then a comparison sort of each
// bucket. Chunk ids are uniform hashes, so the buckets are small (about 15
// at a million) and the work grows linearly where a comparison sort of the
// whole grows as n log n, with most of it on a slice far bigger than the
// CPU's caches (at a million chunks gc's sorts had grown 2.4 x from half a
// million). No scratch slice: the index of a million chunks is 48 MB.
func SortByID[T any](s []T, id func(*T) *ID, cmp func(a, b T) int) {
	flagSort(s, id, 0, cmp)
}

func flagSort[T any](s []T, id func(*T) *ID, depth int, cmp func(a, b T) int) {
	if len(s) < 64 || depth == 2 {
		slices.SortFunc(s, cmp)
		return
	}
	var next, end [256]int
	for i := range s {
		end[id(&s[i])[depth]]++
	}
	sum := 0
	for b := range 256 {
		next[b] = sum
		sum += end[b]
		end[b] = sum
	}
	// Each element is swapped straight into the next free place of its
	// bucket, until every bucket's place holds one of its own.
	for b := range 256 {
		for next[b] < end[b] {
			v := id(&s[next[b]])[depth]
			if int(v) == b {
				next[b]++
				continue
			}
			s[next[b]], s[next[v]] = s[next[v]], s[next[b]]
			next[v]++
		}
	}
	start := 0
	for b := range 256 {
		flagSort(s[start:end[b]], id, depth+1, cmp)
		start = end[b]
	}
}

// keyOf is an id's first eight bytes as a number. A bisection over these
// (8 bytes a chunk, a quarter of the ids themselves) stays in the CPU's
// last-level cache at a million chunks, where one over the ids or the
// index entries did not: a lookup then misses the cache once, for the id
// it finds, and gc's lookups grow with the archive instead of faster.
func keyOf(id *ID) uint64 { return binary.BigEndian.Uint64(id[:8]) }

// keysOf returns the keys of the n ids idAt gives.
func keysOf(n int, idAt func(i int) *ID) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = keyOf(idAt(i))
	}
	return keys
}

// searchKeys returns the first position in [lo, hi) whose key is at
// least k (hi if none).
func searchKeys(keys []uint64, lo, hi int, k uint64) int {
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if keys[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// IDSet is a set of chunk ids: a slice, sorted and deduplicated whenever
// it doubles, then searched by bisection; 32 bytes a chunk.
type IDSet struct {
	ids    []ID // sorted up to sorted
	sorted int
	table  PrefixTable // of ids[:sorted]
	keys   []uint64    // of ids[:sorted]
}

func (s *IDSet) Add(id ID) {
	s.ids = append(s.ids, id)
	if len(s.ids) >= 2*s.sorted+1<<16 {
		s.Compact()
	}
}

func (s *IDSet) Compact() {
	SortByID(s.ids, func(id *ID) *ID { return id }, func(a, b ID) int { return a.Compare(&b) })
	s.ids = slices.Compact(s.ids)
	s.sorted = len(s.ids)
	s.table = BuildPrefixTable(s.sorted, func(i int) *ID { return &s.ids[i] })
	s.keys = keysOf(s.sorted, func(i int) *ID { return &s.ids[i] })
}

// Index is id's position in a compacted set.
func (s *IDSet) Index(id ID) (int, bool) {
	lo, hi := s.table.span(&id, s.sorted)
	k := keyOf(&id)
	i := searchKeys(s.keys, lo, hi, k)
	for ; i < hi && s.keys[i] == k; i++ {
		if c := s.ids[i].Compare(&id); c >= 0 {
			return i, c == 0
		}
	}
	return i, false
}

// Len is the number of ids in a compacted set.
func (s *IDSet) Len() int { return len(s.ids) }

// At is the id at position i of a compacted set.
func (s *IDSet) At(i int) ID { return s.ids[i] }
