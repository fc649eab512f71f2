package repo

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hotsnap/hotsnap/manifest"
)

// A snapshot's content stream says which chunks make each file: one record
// per file entry of its manifest, in the manifest's order,
//
//	u32 n | n chunk ids of 32 bytes
//
// little-endian, the chunks in file order. Records of unchanged files are
// the same bytes from one snapshot to the next, so the stream dedups like
// any file.

func AppendRecord(b []byte, ids []ID) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// RecordReader reads content records back, each bounded by the file it
// Describes.
type RecordReader struct {
	r   *bufio.Reader
	min int // the Chunker's minimum: a file of n bytes has at most n/min+1 chunks
	n   int
}

func NewRecordReader(r io.Reader, minChunk int) *RecordReader {
	return &RecordReader{r: bufio.NewReaderSize(r, 256<<10), min: max(minChunk, 1)}
}

// next reads the record of file entry e: its count must fit the file's
// size before anything is allocated for it.
func (rr *RecordReader) Next(e *manifest.Entry, buf []ID) ([]ID, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rr.r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the content stream ends before the record of %s (record %d)", ErrCorrupt, e.Path, rr.n)
		}
		return nil, err
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:]))
	limit := e.Size/int64(rr.min) + 1
	if e.Size == 0 {
		limit = 0
	}
	if n > limit || n > maxRecordChunks || (e.Size > 0 && n == 0) {
		return nil, fmt.Errorf("%w: the content record of %s names %d chunks for %d bytes", ErrCorrupt, e.Path, n, e.Size)
	}
	ids := buf[:0]
	for range n {
		var id ID
		if _, err := io.ReadFull(rr.r, id[:]); err != nil {
			return nil, fmt.Errorf("%w: the content record of %s is cut short", ErrCorrupt, e.Path)
		}
		ids = append(ids, id)
	}
	rr.n++
	return ids, nil
}

// end requires nothing after the last record.
func (rr *RecordReader) End() error {
	if _, err := rr.r.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: the content stream holds more records than the manifest has files", ErrCorrupt)
	}
	return nil
}

// CheckExtents proves that a file's chunks, laid end to end, make exactly
// its size: every chunk is indexed with a length, so no chunk can overlap
// another or lie past the end of the file.
//
// A chunk no index holds is ErrNotIndexed (and ErrCorrupt): a download
// lists such files rather than stopping at the first.
func CheckExtents(idx *Index, e *manifest.Entry, ids []ID) error {
	var off int64
	for i, id := range ids {
		loc, ok := idx.Lookup(id)
		if !ok {
			return fmt.Errorf("%w: %s needs chunk %s, which %w (run `hotsnap archive check`)", ErrCorrupt, e.Path, id, ErrNotIndexed)
		}
		if loc.Raw < 1 {
			return fmt.Errorf("%w: %s: chunk %d is empty", ErrCorrupt, e.Path, i)
		}
		off += int64(loc.Raw)
		if off > e.Size {
			return fmt.Errorf("%w: the chunks of %s run past its %d bytes", ErrCorrupt, e.Path, e.Size)
		}
	}
	if off != e.Size {
		return fmt.Errorf("%w: the chunks of %s make %d bytes, the manifest says %d", ErrCorrupt, e.Path, off, e.Size)
	}
	return nil
}
