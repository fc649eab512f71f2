package manifest

import (
	"context"
	"fmt"
	"io"
)

// Kinds of Change.
const (
	Added    = "added"
	Removed  = "removed"
	Modified = "modified"
)

// What changed in a modified entry.
const (
	ChangedType    = "type"
	ChangedContent = "content" // size or BLAKE3
	ChangedMode    = "mode"
	ChangedOwner   = "owner"
	ChangedTarget  = "target"
)

// Change is one difference between two snapshots' trees.
type Change struct {
	Path string   `json:"path"`
	Kind string   `json:"kind"`           // added, removed, modified
	Type string   `json:"type"`           // the entry's type (the newer side's, for a change of type)
	What []string `json:"what,omitempty"` // modified: type, content, mode, owner, target
	Size int64    `json:"size"`           // the newer side's size (the removed entry's)
}

// DiffCounts counts the changes.
type DiffCounts struct {
	Added    int64 `json:"added"`
	Removed  int64 `json:"removed"`
	Modified int64 `json:"modified"`
}

func (c *DiffCounts) add(kind string) {
	switch kind {
	case Added:
		c.Added++
	case Removed:
		c.Removed++
	case Modified:
		c.Modified++
	}
}

// EntryReader gives entries sorted by path, then io.EOF (a Reader, or an
// archived manifest stream).
type EntryReader interface {
	Next() (*Entry, error)
}

// Compare says what changed from a to b (nil when nothing did). Contents
// are compared by size and BLAKE3, never by mtime or inode: two captures
// of an unchanged file are equal.
func Compare(a, b *Entry) []string {
	if a.Type != b.Type {
		return []string{ChangedType}
	}
	var what []string
	if a.Type == TypeFile && (a.Size != b.Size || a.BLAKE3 != b.BLAKE3) {
		what = append(what, ChangedContent)
	}
	if a.Type == TypeSymlink && a.Target != b.Target {
		what = append(what, ChangedTarget)
	}
	if a.Mode != b.Mode && a.Type != TypeSymlink {
		what = append(what, ChangedMode)
	}
	if a.UID != b.UID || a.GID != b.GID {
		what = append(what, ChangedOwner)
	}
	return what
}

// Diff merges the two sorted streams from (the older) and to (the newer)
// and calls fn with each change, in path order. Memory does not grow with
// the number of entries: a diff of two million-file snapshots reads the
// two manifests once, and no file data. Each reader's own checks (a
// Reader proves its seal at its end) are errors here.
func Diff(ctx context.Context, from, to EntryReader, fn func(Change) error) (DiffCounts, error) {
	var n DiffCounts
	// Each side is decoded in a goroutine of its own (decoding is most of
	// the work): two cores halve a diff of two large manifests.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from, to = prefetch(ctx, from), prefetch(ctx, to)
	emit := func(c Change) error {
		n.add(c.Kind)
		return fn(c)
	}
	next := func(r EntryReader, side string) (*Entry, error) {
		e, err := r.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", side, err)
		}
		return e, nil
	}
	a, err := next(from, "from")
	if err != nil {
		return n, err
	}
	b, err := next(to, "to")
	if err != nil {
		return n, err
	}
	for i := 0; a != nil || b != nil; i++ {
		if i&1023 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		switch {
		case b == nil || (a != nil && a.Path < b.Path):
			if err := emit(Change{Path: string(a.Path), Kind: Removed, Type: a.Type, Size: a.Size}); err != nil {
				return n, err
			}
			if a, err = next(from, "from"); err != nil {
				return n, err
			}
		case a == nil || b.Path < a.Path:
			if err := emit(Change{Path: string(b.Path), Kind: Added, Type: b.Type, Size: b.Size}); err != nil {
				return n, err
			}
			if b, err = next(to, "to"); err != nil {
				return n, err
			}
		default:
			if what := Compare(a, b); what != nil {
				if err := emit(Change{Path: string(b.Path), Kind: Modified, Type: b.Type, What: what, Size: b.Size}); err != nil {
					return n, err
				}
			}
			if a, err = next(from, "from"); err != nil {
				return n, err
			}
			if b, err = next(to, "to"); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// prefetched reads an EntryReader ahead in a goroutine, in batches.
type prefetched struct {
	ch    chan prefetchBatch
	batch prefetchBatch
	i     int
}

type prefetchBatch struct {
	entries []*Entry
	err     error // after the entries: io.EOF at the end
}

func prefetch(ctx context.Context, r EntryReader) *prefetched {
	p := &prefetched{ch: make(chan prefetchBatch, 4)}
	go func() {
		defer close(p.ch)
		for {
			var b prefetchBatch
			for len(b.entries) < 512 {
				e, err := r.Next()
				if err != nil {
					b.err = err
					break
				}
				b.entries = append(b.entries, e)
			}
			select {
			case p.ch <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return p
}

func (p *prefetched) Next() (*Entry, error) {
	for p.i >= len(p.batch.entries) {
		if p.batch.err != nil {
			return nil, p.batch.err
		}
		b, ok := <-p.ch
		if !ok {
			return nil, io.ErrUnexpectedEOF
		}
		p.batch, p.i = b, 0
	}
	e := p.batch.entries[p.i]
	p.i++
	return e, nil
}
