package repo

import (
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

// IDSet is a set of chunk ids: a slice, sorted and deduplicated whenever
// it doubles, then searched by bisection; 32 bytes a chunk.
type IDSet struct {
	ids    []ID // sorted up to sorted
	sorted int
	table  PrefixTable // of ids[:sorted]
}

func (s *IDSet) Add(id ID) {
	s.ids = append(s.ids, id)
	if len(s.ids) >= 2*s.sorted+1<<16 {
		s.Compact()
	}
}

func (s *IDSet) Compact() {
	slices.SortFunc(s.ids, func(a, b ID) int { return a.Compare(&b) })
	s.ids = slices.Compact(s.ids)
	s.sorted = len(s.ids)
	s.table = BuildPrefixTable(s.sorted, func(i int) *ID { return &s.ids[i] })
}

// Index is id's position in a compacted set.
func (s *IDSet) Index(id ID) (int, bool) {
	lo, hi := s.table.span(&id, s.sorted)
	i, ok := slices.BinarySearchFunc(s.ids[lo:hi], id, func(a, b ID) int { return a.Compare(&b) })
	return lo + i, ok
}

// Len is the number of ids in a compacted set.
func (s *IDSet) Len() int { return len(s.ids) }

// At is the id at position i of a compacted set.
func (s *IDSet) At(i int) ID { return s.ids[i] }
