package repo

import (
	"io"
)

// Chunker cuts a stream into content-defined chunks with FastCDC and
// normalised chunking: a gear rolling hash over each byte after the minimum
// size, a stricter mask before the average size and a looser one after it,
// so chunk sizes cluster around the average; a cut is forced at the maximum.
// Inserting bytes into a file moves only the boundaries near the insertion.
type Chunker struct {
	r             io.Reader
	gear          *[256]uint64
	min, avg, max int
	maskS, maskL  uint64
	buf           []byte
	start, end    int
	eof           bool
}

func NewChunker(r io.Reader, gear *[256]uint64, p ChunkerParams, buf []byte) *Chunker {
	bits := 0
	for 1<<bits < p.Avg {
		bits++
	}
	// The gear hash shifts left, so its high bits depend on the most bytes:
	// masks select high bits. Two bits stricter / looser than the average
	// (normalisation level 2).
	c := &Chunker{r: r, gear: gear, min: p.Min, avg: p.Avg, max: p.Max,
		maskS: ^uint64(0) << (64 - (bits + 2)), maskL: ^uint64(0) << (64 - (bits - 2))}
	if cap(buf) < 2*p.Max {
		buf = make([]byte, 2*p.Max)
	}
	c.buf = buf[:2*p.Max]
	return c
}

// next returns the next chunk, valid until the following call, or io.EOF.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < c.max && !c.eof {
		copy(c.buf, c.buf[c.start:c.end])
		c.end -= c.start
		c.start = 0
		for c.end < len(c.buf) && !c.eof {
			n, err := c.r.Read(c.buf[c.end:])
			c.end += n
			if err == io.EOF {
				c.eof = true
			} else if err != nil {
				return nil, err
			}
		}
	}
	if c.start == c.end {
		return nil, io.EOF
	}
	n := c.cut(c.buf[c.start:c.end])
	chunk := c.buf[c.start : c.start+n]
	c.start += n
	return chunk, nil
}

func (c *Chunker) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	normal := c.avg
	if n < normal {
		normal = n
	}
	var h uint64
	i := c.min
	for ; i < normal; i++ {
		h = h<<1 + c.gear[data[i]]
		if h&c.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + c.gear[data[i]]
		if h&c.maskL == 0 {
			return i + 1
		}
	}
	return n
}

// Buf is the chunker's buffer, to be reused by the next one.
func (c *Chunker) Buf() []byte { return c.buf }
