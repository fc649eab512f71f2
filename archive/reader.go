package archive

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/manifest"
)

// Reader is an archive opened for reading snapshots without downloading
// them (ls, diff, cat, download --target): its index loaded, under a
// shared lock while it is open, so gc waits.
type Reader struct {
	r    *Repo
	idx  *repo.Index
	lock *repo.ArchiveLock
}

// OpenReader loads r's index under a shared lock taken for op; Close it.
func OpenReader(ctx context.Context, r *Repo, op string) (*Reader, error) {
	lock, err := r.Lock(ctx, repo.LockShared, op)
	if err != nil {
		return nil, err
	}
	idx, _, err := r.LoadIndex(ctx, false)
	if err != nil {
		lock.Release()
		return nil, err
	}
	return &Reader{r: r, idx: idx, lock: lock}, nil
}

// Close releases the lock.
func (rd *Reader) Close() { rd.lock.Release() }

// OpenManifest starts reading the manifest of snapshot id's piece of node.
func (rd *Reader) OpenManifest(ctx context.Context, id, node string) (*ManifestStream, error) {
	return rd.r.openManifest(ctx, rd.idx, id, node)
}

// Cat writes the file at path of snapshot id's piece of node to w (cat).
func (rd *Reader) Cat(ctx context.Context, id, node, path string, w io.Writer) (*manifest.Entry, error) {
	return rd.r.cat(ctx, rd.idx, id, node, path, w)
}

// Extract writes snapshot id's piece of node (or the include entries) into
// the new directory target (extract).
func (rd *Reader) Extract(ctx context.Context, id, node, target string, include []string, allowSetID bool) (*ExtractResult, error) {
	return rd.r.extract(ctx, rd.idx, id, node, target, include, allowSetID)
}

// Entries is a snapshot's manifest read as a stream, local or archived.
type Entries interface {
	Header() *manifest.Manifest
	Next() (*manifest.Entry, error)
}

// OpenEntries opens the manifest of ref: "local:ID", "remote:ID", or an repo.ID
// looked up in l first, then in the archive. open opens the archive on
// first need (nil: there is none). It returns the stream, the function
// that closes it, and where it was found ("local" or "remote").
func OpenEntries(ctx context.Context, l Local, open func() (*Reader, error), ref, node string) (Entries, func(), string, error) {
	where, id := "", ref
	if w, rest, ok := strings.Cut(ref, ":"); ok && (w == "local" || w == "remote") {
		where, id = w, rest
	}
	if where != "remote" {
		mf, err := l.OpenManifest(id)
		if err == nil {
			r, err := mf.Reader()
			if err != nil {
				mf.Close()
				return nil, nil, "", err
			}
			return r, func() { mf.Close() }, "local", nil
		}
		if where == "local" || !errors.Is(err, errs.ErrNotFound) || open == nil {
			return nil, nil, "", err
		}
	}
	if open == nil {
		return nil, nil, "", errs.New(errs.Usage, "an archived snapshot needs --remote")
	}
	rd, err := open()
	if err != nil {
		return nil, nil, "", err
	}
	ms, err := rd.OpenManifest(ctx, id, node)
	if err != nil {
		return nil, nil, "", err
	}
	return ms, ms.Close, "remote", nil
}

// LazyReader opens a Reader (OpenReader) on its first use, once: a
// command that may or may not need the archive (ls of a local or of an
// archived snapshot) takes no lock and reads no index when it does not.
type LazyReader struct {
	ctx  context.Context
	op   string
	open func() (*Repo, error)
	rd   *Reader
}

// NewLazyReader is a LazyReader of the archive open opens, for op.
func NewLazyReader(ctx context.Context, op string, open func() (*Repo, error)) *LazyReader {
	return &LazyReader{ctx: ctx, op: op, open: open}
}

// Get opens the reader on its first call and returns it.
func (z *LazyReader) Get() (*Reader, error) {
	if z.rd != nil {
		return z.rd, nil
	}
	r, err := z.open()
	if err != nil {
		return nil, err
	}
	z.rd, err = OpenReader(z.ctx, r, z.op)
	return z.rd, err
}

// Close releases the reader, if it was opened.
func (z *LazyReader) Close() {
	if z.rd != nil {
		z.rd.Close()
	}
}
