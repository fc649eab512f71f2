package archive

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
)

// recentContents bounds the contents an upload remembers to read identical
// files once (a few chunk ids each).
const recentContents = 1 << 14

// contentStream reads the snapshot's files in manifest order (in parallel,
// each handed to the pipeline as it is chunked), and stores their content
// records, in manifest order, as a stream.
func (u *uploader) contentStream(tree *fsutil.Dir, mf *manifest.File, prev *repo.RemoteSnapshot) (repo.StreamDesc, error) {
	pr, pw := io.Pipe()
	type out struct {
		d   repo.StreamDesc
		err error
	}
	done := make(chan out, 1)
	go func() {
		var o out
		o.err = par.Safely(func() (err error) { o.d, err = u.storeStream(pr); return err })
		pr.CloseWithError(o.err) // a failed store unblocks the writer
		done <- o
	}()
	err := u.records(tree, mf, prev, pw)
	pw.CloseWithError(err) // nil: the reader sees io.EOF
	o := <-done
	if err != nil {
		return o.d, err
	}
	return o.d, o.err
}

// slot is one file on its way to its content record.
type slot struct {
	e    manifest.Entry
	ids  []repo.ID
	err  error
	done chan struct{}
	same *slot // a file of the same content, read for both
}

// records writes the content record of every file entry to w, in order.
// Files are chunked by Workers in parallel; a bounded window of slots keeps
// the records in order while they work.
func (u *uploader) records(tree *fsutil.Dir, mf *manifest.File, prev *repo.RemoteSnapshot, w io.Writer) error {
	mr, err := mf.Reader()
	if err != nil {
		return err
	}
	reuse, endReuse := u.reuser(prev)

	slots := make(chan *slot, 1024)
	jobs := make(chan *slot, 2*u.o.Workers)
	var workers sync.WaitGroup
	for range u.o.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for s := range jobs {
				s.err = par.Safely(func() (err error) { s.ids, err = u.chunkFile(tree, &s.e, nil); return err })
				u.readN.Add(1)
				close(s.done)
			}
		}()
	}
	werr := make(chan error, 1)
	go func() {
		var first error
		var buf []byte
		for s := range slots {
			<-s.done
			if s.same != nil {
				<-s.same.done
				s.ids, s.err = s.same.ids, s.same.err
			}
			if first != nil {
				continue // drain, so the producer is never stuck
			}
			if s.err != nil {
				first = s.err
				continue
			}
			buf = repo.AppendRecord(buf[:0], s.ids)
			if _, err := w.Write(buf); err != nil {
				first = err
				continue
			}
			u.o.Progress.Add(1, s.e.Size)
		}
		werr <- first
	}()

	produce := func() error {
		recent := map[string]*slot{}
		for {
			e, err := mr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if e.Type != manifest.TypeFile {
				continue
			}
			s := &slot{e: *e, done: make(chan struct{})}
			if ids, ok := reuse(e); ok {
				s.ids = ids
				u.reused.Add(1)
				close(s.done)
			} else if first, ok := recent[e.BLAKE3]; ok {
				s.same = first
				close(s.done)
			} else {
				if len(recent) >= recentContents {
					clear(recent)
				}
				recent[e.BLAKE3] = s
				select {
				case jobs <- s:
				case <-u.ctx.Done():
					return u.ctx.Err()
				}
			}
			select {
			case slots <- s:
			case <-u.ctx.Done():
				return u.ctx.Err()
			}
		}
	}
	perr := produce()
	close(jobs)
	close(slots)
	workers.Wait()
	return errors.Join(perr, <-werr, endReuse(perr == nil))
}

// reuser returns a function that finds, in the node's previous archived
// piece read beside the manifest (both sorted by path), the chunk list of a
// file whose path, size and content are unchanged: that file is not read.
// Every list it returns has been checked to be indexed and to make exactly
// the file's size. The end function reads the piece to its end: if it
// turns out damaged there after lists were taken from it, the upload fails.
func (u *uploader) reuser(prev *repo.RemoteSnapshot) (func(e *manifest.Entry) ([]repo.ID, bool), func(drain bool) error) {
	none := func(*manifest.Entry) ([]repo.ID, bool) { return nil, false }
	if prev == nil {
		return none, func(bool) error { return nil }
	}
	pp, err := u.r.OpenPiece(u.ctx, u.idx, prev)
	if err != nil {
		if u.o.Logger != nil {
			u.o.Logger.Warn("previous archived snapshot unreadable: every file is read", "key", prev.Key(), "err", err)
		}
		return none, func(bool) error { return nil }
	}
	var cur *manifest.Entry
	var ids []repo.ID
	var perr error
	taken := false
	find := func(e *manifest.Entry) ([]repo.ID, bool) {
		for perr == nil && (cur == nil || cur.Path < e.Path) {
			cur, ids, perr = pp.Next()
		}
		if perr != nil {
			return nil, false
		}
		if cur.Path == e.Path && cur.Type == manifest.TypeFile && cur.BLAKE3 == e.BLAKE3 && cur.Size == e.Size {
			taken = true
			u.reusing(ids)
			return append([]repo.ID(nil), ids...), true
		}
		return nil, false
	}
	end := func(drain bool) error {
		defer pp.Close()
		for drain && perr == nil {
			_, _, perr = pp.Next()
		}
		if perr == nil || perr == io.EOF {
			return nil
		}
		if taken && drain {
			return fmt.Errorf("%w: the previous archived snapshot %s, whose chunk lists this upload reused, is damaged (%v): run `hotsnap archive check`", repo.ErrCorrupt, prev.Key(), perr)
		}
		if u.o.Logger != nil {
			u.o.Logger.Warn("previous archived snapshot: reuse stopped", "key", prev.Key(), "err", perr)
		}
		return nil
	}
	return find, end
}
