package archive

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// Batches: files are fetched a batch at a time, so a snapshot of any size
// needs the memory of one batch's plan.
const (
	batchBytes = 64 << 20
	batchFiles = 8192
)

// filler makes the files of a download, batch by batch.
type filler struct {
	d      *downloadSource
	root   *fsutil.Dir
	mk     *fsutil.Maker // makes the files of one chunk below root
	batch  jobBatch
	links  [][2]string      // link group members to link once their first is made
	groups map[int]string   // link group -> its first member (made)
	localR *manifest.Reader // the newest local snapshot's manifest, read beside
	localE *manifest.Entry
	wb     *fsutil.Writeback // started after each batch (Fill waits for it)
}

// jobBatch is files waiting to be fetched.
type jobBatch struct {
	jobs  []fileJob
	bytes int64
}

// add queues e (its chunk ids copied) and says whether the batch is full.
func (b *jobBatch) add(e *manifest.Entry, ids []repo.ID) bool {
	b.jobs = append(b.jobs, fileJob{e: *e, ids: append([]repo.ID(nil), ids...)})
	b.bytes += e.Size
	return b.bytes >= batchBytes || len(b.jobs) >= batchFiles
}

// fetch makes the batch's files below root (fetchContents) and empties the
// batch; a damaged pack's error names the files that use it. It returns
// the files made, bytes fetched and requests made.
func (b *jobBatch) fetch(ctx context.Context, r *Repo, idx *repo.Index, root *fsutil.Dir, mk *fsutil.Maker, o DownloadOptions) (files, n, reqs int64, err error) {
	if len(b.jobs) == 0 {
		return 0, 0, 0, nil
	}
	n, reqs, err = r.fetchContents(ctx, idx, root, mk, b.jobs, o)
	var pe *repo.PackError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%w; snapshot files affected: %s", err, listSome(filesAffected(b.jobs, idx, pe)))
	}
	if err != nil {
		return 0, n, reqs, err
	}
	files = int64(len(b.jobs))
	b.jobs, b.bytes = b.jobs[:0], 0
	return files, n, reqs, nil
}

type fileJob struct {
	e   manifest.Entry
	ids []repo.ID
}

func (f *filler) file(ctx context.Context, e *manifest.Entry, ids []repo.ID) error {
	if e.LinkGroup != 0 {
		if first, ok := f.groups[e.LinkGroup]; ok {
			f.links = append(f.links, [2]string{first, string(e.Path)})
			return nil
		}
		f.groups[e.LinkGroup] = string(e.Path)
	}
	if f.takeLocal(e) {
		f.d.localN.Add(1)
		f.d.o.Progress.Add(1, e.Size)
		return nil
	}
	if f.batch.add(e, ids) {
		return f.flush(ctx)
	}
	return nil
}

// takeLocal takes e from the newest local snapshot when it holds the same
// path with the same content (proven by a hash as it is linked or copied).
func (f *filler) takeLocal(e *manifest.Entry) bool {
	for f.localR != nil && (f.localE == nil || f.localE.Path < e.Path) {
		le, err := f.localR.Next()
		if err != nil {
			f.localR = nil
			return false
		}
		f.localE = le
	}
	if f.localR == nil || f.localE.Path != e.Path || f.localE.Type != manifest.TypeFile || f.localE.BLAKE3 != e.BLAKE3 || f.localE.Size != e.Size {
		return false
	}
	return takeLocal(f.d.localTree, f.localE, e, f.root) == nil
}

// flush fetches the batch, then makes the links waiting for its files.
func (f *filler) flush(ctx context.Context) error {
	files, n, reqs, err := f.batch.fetch(ctx, f.d.r, f.d.idx, f.root, f.mk, f.d.o)
	f.d.bytes.Add(n)
	f.d.reqs.Add(reqs)
	if err != nil {
		return err
	}
	f.d.fetched.Add(files)
	f.wb.Kick()
	for _, l := range f.links {
		if err := f.root.Link(l[0], f.root, l[1]); err != nil {
			return err
		}
		f.d.o.Progress.Add(1, 0)
	}
	f.links = f.links[:0]
	return nil
}

// takeLocal puts the local copy of a content at e's place below root,
// proven by its hash. A hard link is used when both sides were captured by
// link and the local file already has the entry's owner, mode and mtime
// (setting them would change the shared inode); otherwise a private copy,
// hashed as it is made.
func takeLocal(local *fsutil.Dir, le, e *manifest.Entry, root *fsutil.Dir) error {
	f, st, err := local.OpenRegular(string(le.Path))
	if err != nil {
		return err
	}
	defer f.Close()
	if le.Capture == manifest.CaptureLink && e.Capture == manifest.CaptureLink &&
		st.Perm() == e.Mode && st.MtimeNs == e.MtimeNs && st.UID == e.UID && st.GID == e.GID {
		sum, n, err := manifest.HashReader(f)
		if err != nil || sum != e.BLAKE3 || n != e.Size {
			return fmt.Errorf("local copy %s does not hold the content", f.Name())
		}
		if fsutil.LinkFile(f, root, string(e.Path)) == nil {
			return nil
		}
	}
	sum, err := fstree.Copy(f, root, e, true)
	if err != nil {
		return err
	}
	if sum != e.BLAKE3 {
		root.Remove(string(e.Path))
		return fmt.Errorf("local copy %s does not hold the content", f.Name())
	}
	return nil
}
