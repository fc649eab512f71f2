package manifest

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// MaxSize bounds the manifest files Read accepts: a manifest of ten million
// entries is about 3 GiB, so 4 GiB leaves room while refusing absurd input
// before it is loaded into memory.
var MaxSize int64 = 4 << 30

// MaxLine bounds each value of a manifest file: the header (which holds
// the cluster plan), and each entry (a path or target is at most a few KiB
// even escaped). A longer one is refused as soon as it is seen, so a
// hostile file cannot make the reader load it.
var MaxLine = 16 << 20

// Read reads, decodes and checks the manifest file at p (see Check).
func Read(p string) (*Manifest, error) {
	m, _, err := ReadBytes(p)
	return m, err
}

// ReadBytes is Read that also returns the file's bytes, for callers that
// keep the manifest verbatim. Large manifests are better read as a stream
// (NewReader): this holds every entry in memory.
func ReadBytes(p string) (*Manifest, []byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	return ReadFrom(f, fi.Size(), p)
}

// ReadFrom reads, decodes and checks a manifest of size bytes from r
// (name is for messages). It returns the bytes read as well.
func ReadFrom(r io.Reader, size int64, name string) (*Manifest, []byte, error) {
	if size > MaxSize {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a manifest may have", ErrCorrupt, name, size, MaxSize)
	}
	var buf bytes.Buffer
	m, err := decode(io.TeeReader(io.LimitReader(r, MaxSize+1), &buf))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, buf.Bytes(), nil
}

// Decode decodes a manifest held in memory and checks it (see Check).
func Decode(data []byte) (*Manifest, error) {
	if int64(len(data)) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d a manifest may have", ErrCorrupt, len(data), MaxSize)
	}
	return decode(bytes.NewReader(data))
}

func decode(r io.Reader) (*Manifest, error) {
	mr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	m := *mr.Header()
	m.Entries = []Entry{}
	for {
		e, err := mr.Next()
		if err == io.EOF {
			m.Digest = mr.Header().Digest
			return &m, nil
		}
		if err != nil {
			return nil, err
		}
		m.Entries = append(m.Entries, *e)
	}
}

// ReadHeader reads only a manifest's header fields (id, times, versions,
// topology, totals...), for listings: it neither reads the entries nor
// proves the seal (Reader and Read do).
func ReadHeader(r io.Reader) (*Manifest, error) {
	mr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	return mr.Header(), nil
}
