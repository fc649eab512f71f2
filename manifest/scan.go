package manifest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// The entries are scanned by hand rather than through the JSON decoder,
// which scanned each entry twice (for its extent, then for its value) and
// was half of a pass: the header is decoded by encoding/json, then the rest
// of the stream (what the decoder had buffered, then the source) is read
// here. Each entry's object is cut out by its braces, bounded by MaxLine,
// and decoded by decodeEntry; the tail (,"digest":"..."}) is parsed
// strictly. The source still proves every byte UTF-8.

// startEntries switches from the JSON decoder to the scanner, once the
// decoder has read the entries' '[' (or null).
func (r *Reader) startEntries() {
	r.src.allow(1 << 62) // the scanner bounds each value itself
	r.br = bufio.NewReaderSize(io.MultiReader(r.dec.Buffered(), r.src), 256<<10)
	r.dec = nil
}

// more reports whether another entry follows, consuming the separator
// before it (or the closing ']').
func (r *Reader) more() (bool, error) {
	if r.done {
		return false, nil
	}
	c, err := r.skipSpace()
	if err != nil {
		return false, err
	}
	if c == ']' {
		r.done = true
		return false, nil
	}
	if r.n > 0 {
		if c != ',' {
			return false, fmt.Errorf("%w: want ',' or ']' after entry %d, found %q", ErrCorrupt, r.n, c)
		}
		if c, err = r.skipSpace(); err != nil {
			return false, err
		}
	}
	if c != '{' {
		return false, fmt.Errorf("%w: entry %d is not an object (found %q)", ErrCorrupt, r.n, c)
	}
	return true, nil
}

// decode reads the entry whose '{' more consumed.
func (r *Reader) decode(e *Entry) error {
	if err := r.scanObject(); err != nil {
		return err
	}
	return decodeEntry(r.raw, e)
}

// skipSpace returns the next byte that is not JSON white space.
func (r *Reader) skipSpace() (byte, error) {
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return c, nil
		}
	}
}

// scanObject reads into r.raw the object whose '{' was consumed, up to its
// matching brace, skipping braces inside strings. Whether it is valid JSON
// is decodeEntry's to say.
func (r *Reader) scanObject() error {
	r.raw = append(r.raw[:0], '{')
	depth, inStr, esc := 1, false, false
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				return err
			}
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		for i, c := range buf {
			switch {
			case inStr:
				if esc {
					esc = false
				} else if c == '\\' {
					esc = true
				} else if c == '"' {
					inStr = false
				}
			case c == '"':
				inStr = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				if depth--; depth == 0 {
					r.raw = append(r.raw, buf[:i+1]...)
					r.br.Discard(i + 1)
					return r.bound()
				}
			}
		}
		r.raw = append(r.raw, buf...)
		r.br.Discard(len(buf))
		if err := r.bound(); err != nil {
			return err
		}
	}
}

func (r *Reader) bound() error {
	if len(r.raw) > MaxLine {
		return errTooLong
	}
	return nil
}

// readString reads a JSON string whose '"' was consumed.
func (r *Reader) readString() (string, error) {
	raw := []byte{'"'}
	esc := false
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return "", err
		}
		raw = append(raw, c)
		if len(raw) > MaxLine {
			return "", errTooLong
		}
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return s, nil
		}
	}
}

// expect reads the next byte that is not white space and requires c.
func (r *Reader) expect(c byte, what string) error {
	got, err := r.skipSpace()
	if err != nil {
		return err
	}
	if got != c {
		return fmt.Errorf("%w: want %s, found %q", ErrCorrupt, what, got)
	}
	return nil
}

// tail reads what follows the entries: ,"digest":"<hex>"} and the end of
// the stream, with nothing after the object.
func (r *Reader) tail() error {
	if !r.done {
		return fmt.Errorf("%w: the entries do not end", ErrCorrupt)
	}
	if err := r.expect(',', `"digest" after the entries`); err != nil {
		return err
	}
	if err := r.expect('"', "a field name"); err != nil {
		return err
	}
	key, err := r.readString()
	if err != nil {
		return err
	}
	if key != "digest" {
		return fmt.Errorf("%w: field %q after the entries (only \"digest\" may follow them)", ErrCorrupt, key)
	}
	if err := r.expect(':', "':'"); err != nil {
		return err
	}
	if err := r.expect('"', "the digest string"); err != nil {
		return err
	}
	if r.digest, err = r.readString(); err != nil {
		return err
	}
	if err := r.expect('}', "'}' after the digest"); err != nil {
		return err
	}
	switch _, err := r.skipSpace(); err {
	case io.EOF:
		return nil
	case nil:
		return fmt.Errorf("%w: trailing data after the manifest object", ErrCorrupt)
	default:
		return err // the source failed (a stream that does not hash to its descriptor)
	}
}
