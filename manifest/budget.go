package manifest

import (
	"errors"
	"io"
	"unicode/utf8"
)

var (
	errTooLong = errors.New("value too long")
	errNotUTF8 = errors.New("not UTF-8")
)

// budgetReader bounds what the JSON decoder may read for one value (so a
// hostile 2 GB line is refused after MaxLine, not loaded), counts the bytes
// and checks, across reads, that they are valid UTF-8.
type budgetReader struct {
	r     io.Reader
	n     int64 // bytes read
	limit int64
	carry []byte // an incomplete UTF-8 sequence at the end of the last read
	err   error  // sticky
}

// allow lets the decoder read up to max more bytes from now on.
func (b *budgetReader) allow(max int64) { b.limit = b.n + max }

// Read fails (with no data: the JSON decoder reports a read error only
// once it has used up what it holds) past the budget or on bytes that are
// not UTF-8.
func (b *budgetReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.n >= b.limit {
		return 0, errTooLong
	}
	if rest := b.limit - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if (n > 0 && !b.validUTF8(p[:n])) || (err == io.EOF && len(b.carry) > 0) {
		b.err = errNotUTF8
		return 0, b.err
	}
	return n, err
}

// validUTF8 checks p, continuing a sequence the last read cut and keeping
// one this read cuts.
func (b *budgetReader) validUTF8(p []byte) bool {
	if len(b.carry) > 0 {
		buf := append(make([]byte, 0, utf8.UTFMax), b.carry...)
		k := 0
		for !utf8.FullRune(buf) && k < len(p) {
			buf = append(buf, p[k])
			k++
		}
		if !utf8.FullRune(buf) {
			b.carry = buf // still cut: p was shorter than the rest of the rune
			return true
		}
		r, size := utf8.DecodeRune(buf)
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		p = p[size-len(b.carry):]
		b.carry = nil
	}
	for i := 1; i <= utf8.UTFMax && i <= len(p); i++ {
		if c := p[len(p)-i]; utf8.RuneStart(c) {
			if !utf8.FullRune(p[len(p)-i:]) {
				b.carry = append([]byte(nil), p[len(p)-i:]...)
				p = p[:len(p)-i]
			}
			break
		}
	}
	return utf8.Valid(p)
}

// end reports an incomplete UTF-8 sequence left at the end.
func (b *budgetReader) end() error {
	if len(b.carry) > 0 {
		return errNotUTF8
	}
	return nil
}
