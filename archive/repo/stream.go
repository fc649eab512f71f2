package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"

	"github.com/hotsnap/hotsnap/archive/store"
)

// A stream is a byte sequence of any length (a node's manifest.json, its
// content records) stored as chunks through the same Chunker, packs and
// index as file data, as restic stores its trees: it dedups across
// snapshots like any file, and is read back one chunk at a time, never as
// one object bounded by a decoder limit.
type StreamDesc struct {
	Size   int64    `json:"size"`
	BLAKE3 string   `json:"blake3"`
	Chunks []string `json:"chunks"` // chunk ids, hex, in order
}

// check bounds a descriptor read from a remote: a size below max, a chunk
// count that such a size can have (at least one byte per chunk, at most
// Max), hex ids.
func (d *StreamDesc) check(maxChunk int, max int64) error {
	switch {
	case d.Size < 0 || d.Size > max:
		return fmt.Errorf("%w: stream of %d bytes (at most %d)", ErrCorrupt, d.Size, max)
	case int64(len(d.Chunks)) > d.Size, int64(len(d.Chunks))*int64(maxChunk) < d.Size:
		return fmt.Errorf("%w: %d chunks cannot hold a stream of %d bytes", ErrCorrupt, len(d.Chunks), d.Size)
	case len(d.BLAKE3) != 64:
		return fmt.Errorf("%w: stream hash %q", ErrCorrupt, d.BLAKE3)
	}
	for _, c := range d.Chunks {
		if _, err := ParseID(c); err != nil {
			return err
		}
	}
	return nil
}

// ids parses the chunk ids (check has proven them).
func (d *StreamDesc) IDs() []ID {
	out := make([]ID, len(d.Chunks))
	for i, c := range d.Chunks {
		out[i], _ = ParseID(c)
	}
	return out
}

// StreamReader reads a stored stream back in order, a few chunks fetched
// ahead, each checked against its id; at the end the length and BLAKE3 of
// the whole must be the descriptor's, or Read fails instead of io.EOF.
type StreamReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	name   string
	desc   StreamDesc
	ch     chan fetched
	cur    []byte
	n      int64
	h      *blake3.Hasher
	err    error
}

type fetched struct {
	data []byte
	err  error
}

// OpenStream starts reading stream d (named name in errors) through idx.
func (r *Repo) OpenStream(ctx context.Context, idx *Index, name string, d StreamDesc) *StreamReader {
	ctx, cancel := context.WithCancel(ctx)
	s := &StreamReader{ctx: ctx, cancel: cancel, name: name, desc: d, ch: make(chan fetched, 4), h: blake3.New()}
	ids := d.IDs()
	go func() {
		defer close(s.ch)
		for _, id := range ids {
			var f fetched
			f.data, f.err = r.FetchChunk(ctx, idx, id)
			select {
			case s.ch <- f:
			case <-ctx.Done():
				return
			}
			if f.err != nil {
				return
			}
		}
	}()
	return s
}

// FetchChunk reads one chunk: its blob's range of its pack, decoded and
// checked against its id.
func (r *Repo) FetchChunk(ctx context.Context, idx *Index, id ID) ([]byte, error) {
	loc, ok := idx.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%w: chunk %s is in no index", ErrCorrupt, id)
	}
	b, err := r.st.GetRange(ctx, PackKey(loc.Pack), loc.Offset, int64(loc.Length))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%w: missing from the archive", ErrCorrupt)
		}
		return nil, &PackError{Pack: loc.Pack, Err: err}
	}
	return decodeBlob(r.enc, b, id, loc.Raw)
}

func (s *StreamReader) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		f, ok := <-s.ch
		switch {
		case !ok && s.ctx.Err() != nil:
			s.err = s.ctx.Err()
		case !ok:
			s.err = s.finish()
		case f.err != nil:
			s.err = fmt.Errorf("%s: %w", s.name, f.err)
		default:
			s.n += int64(len(f.data))
			if s.n > s.desc.Size {
				s.err = fmt.Errorf("%w: %s is longer than its %d bytes", ErrCorrupt, s.name, s.desc.Size)
				continue
			}
			s.h.Write(f.data)
			s.cur = f.data
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func (s *StreamReader) finish() error {
	if s.n != s.desc.Size {
		return fmt.Errorf("%w: %s is %d bytes, its descriptor says %d", ErrCorrupt, s.name, s.n, s.desc.Size)
	}
	if sum := hex.EncodeToString(s.h.Sum(nil)); sum != s.desc.BLAKE3 {
		return fmt.Errorf("%w: %s does not hash to its descriptor's BLAKE3", ErrCorrupt, s.name)
	}
	return io.EOF
}

// Close stops the fetching.
func (s *StreamReader) Close() error {
	s.cancel()
	for range s.ch {
	}
	return nil
}

// PackError names a pack that could not be read or was damaged.
type PackError struct {
	Pack ID
	Blob ID // the damaged blob when one was found to be; zero when the pack (or a range of it) failed as a whole
	Err  error
}

func (e *PackError) Error() string { return fmt.Sprintf("pack %s: %v", e.Pack, e.Err) }
func (e *PackError) Unwrap() error { return e.Err }
