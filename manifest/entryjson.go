package manifest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// A manifest of a million entries is read several times by a restore or a
// download, and encoding/json's reflection was most of each pass (5.5 s per
// million entries here). Entries therefore have a hand-written encoder that
// writes exactly what json.Marshal writes (the seal covers those bytes; a
// test compares the two over random entries), and a decoder for that
// canonical form which hands anything else to encoding/json, so that every
// layout json accepts still reads the same.

// appendEntry appends e as json.Marshal(e) encodes it.
func appendEntry(b []byte, e *Entry) ([]byte, error) {
	var err error
	b = append(b, `{"path":`...)
	if b, err = appendName(b, e.Path); err != nil {
		return nil, err
	}
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"mode":`...)
	b = strconv.AppendUint(b, uint64(e.Mode), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(e.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(e.GID), 10)
	b = append(b, `,"mtimeNs":`...)
	b = strconv.AppendInt(b, e.MtimeNs, 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, `,"inode":{"dev":`...)
	b = strconv.AppendUint(b, e.Inode.Dev, 10)
	b = append(b, `,"ino":`...)
	b = strconv.AppendUint(b, e.Inode.Ino, 10)
	b = append(b, '}')
	if e.LinkGroup != 0 {
		b = append(b, `,"linkGroup":`...)
		b = strconv.AppendInt(b, int64(e.LinkGroup), 10)
	}
	if e.Capture != "" {
		b = append(b, `,"capture":`...)
		b = appendString(b, e.Capture)
	}
	if e.BLAKE3 != "" {
		b = append(b, `,"blake3":`...)
		b = appendString(b, e.BLAKE3)
	}
	if e.Target != "" {
		b = append(b, `,"target":`...)
		if b, err = appendName(b, e.Target); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendName appends n as Name.MarshalJSON does.
func appendName(b []byte, n Name) ([]byte, error) {
	if plainASCII(string(n)) {
		return appendQuoted(b, string(n)), nil
	}
	j, err := n.MarshalJSON()
	return append(b, j...), err
}

// appendString appends s as json.Marshal(s) does.
func appendString(b []byte, s string) []byte {
	if plainASCII(s) {
		return appendQuoted(b, s)
	}
	j, _ := json.Marshal(s) // a string always encodes
	return append(b, j...)
}

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainASCII reports a string json.Marshal writes between quotes as it
// is: printable ASCII without the characters it escapes (", \, and the
// HTML-sensitive <, >, &).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// decodeEntry decodes one entry's JSON object into e: the canonical form
// (as appendEntry writes it) directly, anything else (other key orders,
// whitespace, escapes, base64 names, bad values) through encoding/json
// with unknown fields refused, so the result and the errors are
// json.Unmarshal's.
func decodeEntry(b []byte, e *Entry) error {
	*e = Entry{}
	if p := (entryParser{b: b}); p.entry(e) {
		return nil
	}
	*e = Entry{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(e)
}

// entryParser reads the canonical form; any surprise makes it give up
// (false), never guess.
type entryParser struct {
	b []byte
	i int
}

func (p *entryParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str reads a string without escapes or control bytes (the stream was
// already proven UTF-8 and valid JSON).
func (p *entryParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := string(p.b[p.i+1 : j])
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// uint reads digits up to max; a leading zero, a sign, a fraction or an
// exponent gives up.
func (p *entryParser) uint(max uint64) (uint64, bool) {
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.i++
	}
	n := p.i - start
	if n == 0 || (n > 1 && p.b[start] == '0') {
		return 0, false
	}
	return v, true
}

func (p *entryParser) int() (int64, bool) {
	neg := p.lit("-")
	v, ok := p.uint(1<<63 - 1)
	if !ok || (neg && v == 0) {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

func (p *entryParser) entry(e *Entry) bool {
	var ok bool
	var s string
	var u uint64
	if !p.lit(`{"path":`) {
		return false
	}
	if s, ok = p.str(); !ok {
		return false
	}
	e.Path = Name(s)
	if !p.lit(`,"type":`) {
		return false
	}
	if e.Type, ok = p.str(); !ok || !p.lit(`,"mode":`) {
		return false
	}
	if u, ok = p.uint(1<<32 - 1); !ok || !p.lit(`,"uid":`) {
		return false
	}
	e.Mode = uint32(u)
	if u, ok = p.uint(1<<32 - 1); !ok || !p.lit(`,"gid":`) {
		return false
	}
	e.UID = uint32(u)
	if u, ok = p.uint(1<<32 - 1); !ok || !p.lit(`,"mtimeNs":`) {
		return false
	}
	e.GID = uint32(u)
	if e.MtimeNs, ok = p.int(); !ok || !p.lit(`,"size":`) {
		return false
	}
	if e.Size, ok = p.int(); !ok || !p.lit(`,"inode":{"dev":`) {
		return false
	}
	if e.Inode.Dev, ok = p.uint(1<<64 - 1); !ok || !p.lit(`,"ino":`) {
		return false
	}
	if e.Inode.Ino, ok = p.uint(1<<64 - 1); !ok || !p.lit(`}`) {
		return false
	}
	if p.lit(`,"linkGroup":`) {
		v, ok := p.int()
		if !ok || int64(int(v)) != v {
			return false
		}
		e.LinkGroup = int(v)
	}
	if p.lit(`,"capture":`) {
		if e.Capture, ok = p.str(); !ok {
			return false
		}
	}
	if p.lit(`,"blake3":`) {
		if e.BLAKE3, ok = p.str(); !ok {
			return false
		}
	}
	if p.lit(`,"target":`) {
		if s, ok = p.str(); !ok {
			return false
		}
		e.Target = Name(s)
	}
	return p.lit(`}`) && p.i == len(p.b)
}
