package manifest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// A manifest is written and read as a stream, so that one of a million
// entries never sits in memory whole. The seal is the BLAKE3 of the
// canonical encoding (see canonical), which is, byte for byte:
//
//	header (json.Marshal of the manifest without entries, cut before "entries")
//	,"entries":[ entry , entry , ... ],"digest":""}
//
// with every entry as json.Marshal writes it. Writer writes exactly that,
// one entry per line; Reader accepts any layout of the same JSON object,
// re-encodes each entry and hashes as it goes, and makes every check of
// Check on the way (see checker).

// headerPrefix returns the canonical encoding of m's header fields up to
// and including `,"entries":[`.
func headerPrefix(m *Manifest) ([]byte, error) {
	h := *m
	h.Entries, h.Digest = nil, ""
	if h.Topology.Nodes == nil {
		h.Topology.Nodes = []string{} // as canonical: nil and empty seal alike
	}
	head, err := json.Marshal(&h)
	if err != nil {
		return nil, err
	}
	// "entries" and "digest" are the last two fields, in struct order.
	i := bytes.LastIndex(head, []byte(`,"entries":`))
	if i < 0 {
		return nil, fmt.Errorf("encode manifest: unexpected header layout")
	}
	return append(head[:i:i], `,"entries":[`...), nil
}

const canonicalTail = `],"digest":""}`

// Writer writes a manifest file as a stream: the header (whose Totals must
// already be final), then entries in path order, then the seal. Every entry
// is checked as it is added, so a Writer never writes a manifest the
// Reader would refuse.
type Writer struct {
	w   *bufio.Writer
	h   *blake3.Hasher
	chk *checker
	hdr Manifest
	n   int
	buf []byte
	err error
}

// NewWriter starts a manifest on w with the header fields of hdr (its
// Entries and Digest are ignored).
func NewWriter(w io.Writer, hdr *Manifest) (*Writer, error) {
	prefix, err := headerPrefix(hdr)
	if err != nil {
		return nil, err
	}
	mw := &Writer{w: bufio.NewWriterSize(w, 256<<10), h: blake3.New(), chk: newChecker(), hdr: *hdr}
	mw.hdr.Entries = nil
	mw.chk.header(&mw.hdr)
	mw.h.Write(prefix)
	mw.w.Write(prefix)
	mw.w.WriteByte('\n')
	return mw, nil
}

// Add writes the next entry (entries must come sorted by path).
func (w *Writer) Add(e *Entry) error {
	if w.err != nil {
		return w.err
	}
	w.chk.entry(e)
	if w.chk.failed() {
		w.err = fmt.Errorf("write manifest: %w", w.chk.err(w.hdr.ID))
		return w.err
	}
	b, err := appendEntry(w.buf[:0], e)
	if err != nil {
		w.err = err
		return err
	}
	w.buf = b
	if w.n > 0 {
		w.h.Write([]byte{','})
		w.w.WriteString(",\n")
	}
	w.n++
	w.h.Write(b)
	if _, err := w.w.Write(b); err != nil {
		w.err = err
	}
	return w.err
}

// Close checks the totals, writes the seal and flushes. It returns the
// digest.
func (w *Writer) Close() (string, error) {
	if w.err != nil {
		return "", w.err
	}
	w.chk.finish(w.hdr.Totals)
	if err := w.chk.err(w.hdr.ID); err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	w.h.Write([]byte(canonicalTail))
	digest := hex.EncodeToString(w.h.Sum(nil))
	if w.n > 0 {
		w.w.WriteByte('\n')
	}
	d, _ := json.Marshal(digest)
	w.w.WriteString("],\n\"digest\":")
	w.w.Write(d)
	w.w.WriteString("}\n")
	return digest, w.w.Flush()
}

// Reader reads a manifest as a stream. NewReader reads and checks the
// header; Next returns the entries in order, each checked as it comes, and
// io.EOF only once the seal and the totals are proven. Any other error is
// final (ErrCorrupt for a manifest that cannot be true: after the first
// problem the rest is read to list up to 20 problems, and a broken seal is
// reported before them). A caller that acts on entries before Next said
// io.EOF must be ready to undo: the seal is known only at the end.
type Reader struct {
	src    *budgetReader
	dec    *json.Decoder
	hdr    Manifest
	h      *blake3.Hasher
	chk    *checker
	n      int
	done   bool
	err    error
	digest string
	br     *bufio.Reader // the stream after "entries": (scan.go)
	raw    []byte        // the entry being decoded
	buf    []byte        // its canonical encoding
}

// NewReader reads a manifest's header from r.
func NewReader(r io.Reader) (*Reader, error) {
	src := &budgetReader{r: r}
	src.allow(int64(MaxLine))
	dec := json.NewDecoder(src)
	dec.DisallowUnknownFields()
	mr := &Reader{src: src, dec: dec, h: blake3.New(), chk: newChecker()}
	if err := mr.readHeader(); err != nil {
		return nil, mr.fail(err)
	}
	return mr, nil
}

// Header is the manifest without its entries (and, until Next said io.EOF,
// with an unproven Digest).
func (r *Reader) Header() *Manifest { return &r.hdr }

// Entries counts the entries read so far.
func (r *Reader) Entries() int { return r.n }

// fail turns an error of the JSON layer into ErrCorrupt and makes it final.
func (r *Reader) fail(err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
	case errors.Is(err, errTooLong):
		err = fmt.Errorf("%w: a value at byte %d is longer than %d bytes (entries are one per line)", ErrCorrupt, r.src.n, MaxLine)
	case errors.Is(err, errNotUTF8):
		err = fmt.Errorf("%w: not valid UTF-8 (names that are not UTF-8 must be encoded as {\"base64\": ...})", ErrCorrupt)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		err = fmt.Errorf("%w: the manifest ends early (truncated)", ErrCorrupt)
	default:
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syn) || errors.As(err, &typ) || isJSONFieldError(err) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	r.err = err
	return err
}

// isJSONFieldError reports the json package's unknown-field and other
// decoding complaints, which have no exported type.
func isJSONFieldError(err error) bool {
	s := err.Error()
	return bytes.HasPrefix([]byte(s), []byte("json: "))
}

// headerFields are the header's keys, each decoded into its field.
func (r *Reader) headerFields() map[string]any {
	m := &r.hdr
	return map[string]any{
		"format": &m.Format, "id": &m.ID, "label": &m.Label, "createdAt": &m.CreatedAt,
		"toolVersion": &m.ToolVersion, "appVersion": &m.AppVersion, "appEngine": &m.AppEngine, "node": &m.Node,
		"topology": &m.Topology, "encryptionKeyId": &m.EncryptionKeyID,
		"potentiallyInconsistent": &m.PotentiallyInconsistent, "lockHeldMs": &m.LockHeldMs,
		"totals": &m.Totals,
	}
}

func (r *Reader) readHeader() error {
	if err := r.delim('{'); err != nil {
		return err
	}
	fields := r.headerFields()
	seen := map[string]bool{}
	for {
		key, err := r.key()
		if err != nil {
			return err
		}
		if key == "entries" {
			break
		}
		p, ok := fields[key]
		switch {
		case key == "digest":
			return fmt.Errorf("%w: \"digest\" before \"entries\" (the digest comes last)", ErrCorrupt)
		case !ok:
			return fmt.Errorf("%w: unknown field %q", ErrCorrupt, key)
		case seen[key]:
			return fmt.Errorf("%w: field %q twice", ErrCorrupt, key)
		}
		seen[key] = true
		if err := r.dec.Decode(p); err != nil {
			return err
		}
		if key == "format" && r.hdr.Format != Format {
			return fmt.Errorf("%w %d (this hotsnap reads format %d): %w", ErrUnsupportedFormat, r.hdr.Format, Format, ErrCorrupt)
		}
	}
	if !seen["format"] {
		return fmt.Errorf("%w 0 (no format field; this hotsnap reads format %d): %w", ErrUnsupportedFormat, Format, ErrCorrupt)
	}
	prefix, err := headerPrefix(&r.hdr)
	if err != nil {
		return err
	}
	r.h.Write(prefix)
	r.chk.header(&r.hdr)
	// An entries value of null is an empty list, as canonical has it.
	t, err := r.dec.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('['):
	case nil:
		r.done = true // "entries":null
	default:
		return fmt.Errorf("%w: \"entries\" is not a list", ErrCorrupt)
	}
	r.startEntries()
	return nil
}

func (r *Reader) delim(d json.Delim) error {
	t, err := r.dec.Token()
	if err != nil {
		return err
	}
	if t != d {
		return fmt.Errorf("%w: want %q, found %v", ErrCorrupt, d, t)
	}
	return nil
}

func (r *Reader) key() (string, error) {
	t, err := r.dec.Token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("%w: want a field name, found %v", ErrCorrupt, t)
	}
	return k, nil
}

// Next returns the next entry, or io.EOF once the whole manifest is read
// and proven.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	more, err := r.more()
	if err != nil {
		return nil, r.fail(err)
	}
	if more {
		var e Entry
		if err := r.decode(&e); err != nil {
			return nil, r.fail(err)
		}
		if err := r.hash(&e); err != nil {
			return nil, r.fail(err)
		}
		r.chk.entry(&e)
		if r.chk.failed() {
			return nil, r.fail(r.drain())
		}
		return &e, nil
	}
	if err := r.finish(); err != nil {
		return nil, r.fail(err)
	}
	r.err = io.EOF
	return nil, io.EOF
}

func (r *Reader) hash(e *Entry) error {
	b, err := appendEntry(r.buf[:0], e)
	if err != nil {
		return fmt.Errorf("%w: entry %d: %v", ErrCorrupt, r.n, err)
	}
	r.buf = b
	if r.n > 0 {
		r.h.Write([]byte{','})
	}
	r.n++
	r.h.Write(b)
	return nil
}

// drain reads the rest after a problem was found, to list more of them
// and to put a broken seal first.
func (r *Reader) drain() error {
	for {
		more, err := r.more()
		if err != nil || !more {
			break
		}
		var e Entry
		if err := r.decode(&e); err != nil {
			return r.chk.err(r.hdr.ID)
		}
		if r.hash(&e) != nil {
			return r.chk.err(r.hdr.ID)
		}
		r.chk.entry(&e)
	}
	if err := r.finish(); err != nil && !errors.As(err, new(*CheckError)) {
		return err // a broken seal or a damaged tail says more than the entries
	}
	return r.chk.err(r.hdr.ID)
}

// finish reads the end of the entries and the digest, proves the seal and
// the totals, and requires nothing after the object.
func (r *Reader) finish() error {
	if err := r.tail(); err != nil {
		return err
	}
	if err := r.src.end(); err != nil {
		return err
	}
	r.h.Write([]byte(canonicalTail))
	if want := hex.EncodeToString(r.h.Sum(nil)); r.digest != want {
		return fmt.Errorf("%w: broken seal: digest %q does not match the content (%s)", ErrCorrupt, r.digest, want)
	}
	r.hdr.Digest = r.digest
	r.chk.finish(r.hdr.Totals)
	return r.chk.err(r.hdr.ID)
}
