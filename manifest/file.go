package manifest

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/hotsnap/hotsnap/fsutil"
)

// File is a snapshot's manifest.json, opened once (and checked by whoever
// opened it: snapshot checks who may have written it) and read as a stream
// as many times as a command needs: a million entries never sit in memory.
type File struct {
	id   string
	f    *os.File
	size int64
}

// NewFile reads f, of size bytes, as the manifest of snapshot id: every
// pass checks the manifest's id is id. File owns f.
func NewFile(f *os.File, size int64, id string) *File { return &File{id: id, f: f, size: size} }

// Stat is the file's stat, through its descriptor.
func (mf *File) Stat() (fsutil.Stat, error) { return fsutil.Fstat(mf.f) }

// Size is the file's size in bytes.
func (mf *File) Size() int64 { return mf.size }

// Raw returns a reader of the file's bytes from the start (an upload
// stores them verbatim). It reads at its own offset (pread), so passes
// may run at the same time (a restore's re-hash beside its build).
func (mf *File) Raw() (io.Reader, error) {
	return io.NewSectionReader(mf.f, 0, mf.size), nil
}

// Reader starts a pass over the manifest: its header at once, then its
// entries with Next (io.EOF once the seal is proven). Passes are
// independent and may run concurrently.
func (mf *File) Reader() (*Reader, error) {
	raw, err := mf.Raw()
	if err != nil {
		return nil, err
	}
	r, err := NewReader(bufio.NewReaderSize(raw, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mf.f.Name(), err)
	}
	if id := r.Header().ID; id != mf.id {
		return nil, fmt.Errorf("%w: snapshot folder %s holds the manifest of %s", ErrCorrupt, mf.id, id)
	}
	return r, nil
}

// Header reads the manifest's header (and nothing more).
func (mf *File) Header() (*Manifest, error) {
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	return r.Header(), nil
}

// Each reads the whole manifest, calling fn for every entry in order, and
// returns the header with its seal proven. An fn error stops the pass.
func (mf *File) Each(fn func(e *Entry) error) (*Manifest, error) {
	r, err := mf.Reader()
	if err != nil {
		return nil, err
	}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return r.Header(), nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mf.f.Name(), err)
		}
		if fn != nil {
			if err := fn(e); err != nil {
				return nil, err
			}
		}
	}
}

// Close closes the file.
func (mf *File) Close() error { return mf.f.Close() }
