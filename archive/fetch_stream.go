package archive

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// A file's content is proven by its BLAKE3 against the manifest, as it
// lands: one hash of every byte. Each chunk's own id is checked only when a
// file fails, to name the damaged pack (blame). The manifest is sealed, so
// a file that matches it holds what was captured, whatever the chunks.

// fileStream is a file of several chunks being made. Its chunks land in any
// order; its hash runs in file order over them: from memory for the chunk
// that is next, read back from the file (the page cache) for chunks that
// landed ahead. When the last byte is hashed the file is checked and given
// its attributes.
type fileStream struct {
	mu    sync.Mutex
	f     *os.File
	h     *manifest.Hasher
	pos   int64           // bytes hashed so far
	ahead map[int64]int64 // chunks landed beyond pos: offset -> length
	left  int             // chunks still to land
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// open makes the file below root at its first chunk (never through a
// symlink; staging holds only what this download made).
func (s *fileStream) open(root *fsutil.Dir, rel string, chunks int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := root.OpenFile(rel, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		s.f, s.h, s.ahead, s.left = f, manifest.NewHasher(), map[int64]int64{}, chunks
	}
	return s.f, nil
}

// land writes chunk at off in the file of e (made of chunks chunks) and
// hashes what is now contiguous. It returns true when the last chunk has
// landed.
func (s *fileStream) land(root *fsutil.Dir, e *manifest.Entry, chunks int, chunk []byte, off int64) (bool, error) {
	f, err := s.open(root, string(e.Path), chunks)
	if err != nil {
		return false, err
	}
	if _, err := f.WriteAt(chunk, off); err != nil {
		return false, err
	}
	if len(chunk) >= 1<<20 {
		// Start the writeback of a large chunk as it lands, so the disk
		// works while later chunks are fetched and the publish's syncfs
		// finds little left; for small ones the call costs more than it
		// saves.
		_ = unix.SyncFileRange(int(f.Fd()), off, int64(len(chunk)), unix.SYNC_FILE_RANGE_WRITE)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.left--
	if off != s.pos {
		s.ahead[off] = int64(len(chunk))
		return s.left == 0, nil
	}
	s.h.Write(chunk)
	s.pos += int64(len(chunk))
	for {
		n, ok := s.ahead[s.pos]
		if !ok {
			break
		}
		delete(s.ahead, s.pos)
		bp := readBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(s.h, io.NewSectionReader(f, s.pos, n), *bp)
		readBufs.Put(bp)
		if err != nil {
			return false, err
		}
		s.pos += n
	}
	return s.left == 0, nil
}

// finish checks the file, all its chunks landed, against e and gives it
// e's attributes; on a mismatch blame names the damaged chunk's pack.
func (s *fileStream) finish(e *manifest.Entry, blame func(f *os.File) error) error {
	defer s.f.Close()
	if sum := s.h.Sum(); sum != e.BLAKE3 || s.pos != e.Size {
		if err := blame(s.f); err != nil {
			return err
		}
		return fmt.Errorf("%w: reassembled %s does not match its manifest (BLAKE3 %s, %d bytes)", repo.ErrCorrupt, e.Path, sum, s.pos)
	}
	return fstree.SetAttrs(s.f, e)
}

// blameChunks reads a reassembled file's chunks back and checks each
// against its id: the first that fails names its pack. nil when every
// chunk holds its id (the archive's records, not a pack, disagree with
// the manifest).
func (r *Repo) blameChunks(idx *repo.Index, f *os.File, ids []repo.ID) error {
	var off int64
	for _, id := range ids {
		loc, _ := idx.Lookup(id)
		b := make([]byte, loc.Raw)
		if _, err := f.ReadAt(b, off); err != nil {
			return err
		}
		if err := r.CheckChunk(b, id); err != nil {
			return &repo.PackError{Pack: loc.Pack, Blob: id, Err: err}
		}
		off += int64(loc.Raw)
	}
	return nil
}
