package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Node is whose piece to download; empty means snapshot.DefaultNodeID.
	Node     string
	Workers  int // files fetched at once; 0 means 4
	Progress Progress
	Logger   *slog.Logger
}

// DownloadResult reports a download. The JSON form is the CLI's contract.
type DownloadResult struct {
	ID              string  `json:"id"`
	Node            string  `json:"node"`
	Path            string  `json:"path"`
	Files           int64   `json:"files"`
	Bytes           int64   `json:"bytes"`
	FilesFetched    int64   `json:"filesFetched"`
	FilesLocal      int64   `json:"filesLocal"` // taken from local snapshots after a re-hash
	BytesFetched    int64   `json:"bytesFetched"`
	RequestsFetched int64   `json:"requests"`
	DurationMs      float64 `json:"durationMs"`
}

// packError names a pack that could not be read or was damaged.
type packError struct {
	pack ID
	err  error
}

func (e *packError) Error() string { return fmt.Sprintf("pack %s: %v", e.pack, e.err) }
func (e *packError) Unwrap() error { return e.err }

// Download materialises snapshot id (one node's piece) into the backups
// dir: staging, then one atomic publish, as a local create. Every chunk is
// checked against its id and every file against its BLAKE3. A file whose
// content a local snapshot holds is taken from there after a re-hash proves
// it. Any failure names the snapshot files affected and leaves nothing.
func Download(ctx context.Context, r *Repo, l *snapshot.Layout, id string, o DownloadOptions) (*DownloadResult, error) {
	start := time.Now()
	if o.Node == "" {
		o.Node = snapshot.DefaultNodeID
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	rs, err := r.readSnapshot(ctx, id, o.Node)
	if err != nil {
		return nil, err
	}
	m := rs.m
	idx, _, err := r.LoadIndex(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	// Every chunk must be indexed before anything is written.
	var missing []string
	for _, e := range m.Entries {
		if e.Type != manifest.TypeFile {
			continue
		}
		for _, cid := range rs.content[e.BLAKE3] {
			if !idx.Has(cid) {
				missing = append(missing, string(e.Path))
				break
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %d file(s) of %s need chunks the archive's index does not hold: %s (run `hotsnap archive check`)",
			ErrCorrupt, len(missing), id, listSome(missing))
	}
	res := &DownloadResult{ID: id, Node: o.Node, Path: l.SnapshotDir(id), Files: m.Totals.Files, Bytes: m.Totals.Bytes}
	local := snapshot.LocalContents(l)
	o.Progress.Start("download", m.Totals.Files, m.Totals.Bytes)
	defer o.Progress.Done()
	origin, _ := json.Marshal(map[string]string{"remote": r.st.String(), "downloadedAt": time.Now().UTC().Format(time.RFC3339)})

	var fetched, localN, bytesFetched, requests atomic.Int64
	fill := func(ctx context.Context, tree string) error {
		// Dirs and symlinks first (entries are sorted: parents come first).
		groups := map[string][]*manifest.Entry{} // content hash -> entries
		var order []string
		for i := range m.Entries {
			e := &m.Entries[i]
			p := filepath.Join(tree, filepath.FromSlash(string(e.Path)))
			switch e.Type {
			case manifest.TypeDir:
				if err := os.Mkdir(p, 0o700); err != nil {
					return err
				}
			case manifest.TypeSymlink:
				if err := os.Symlink(string(e.Target), p); err != nil {
					return err
				}
				_ = os.Lchown(p, int(e.UID), int(e.GID))
			case manifest.TypeFile:
				if _, ok := groups[e.BLAKE3]; !ok {
					order = append(order, e.BLAKE3)
				}
				groups[e.BLAKE3] = append(groups[e.BLAKE3], e)
			}
		}
		return par.ForEach(ctx, len(order), o.Workers, func(ctx context.Context, k int) error {
			es := groups[order[k]]
			first := es[0]
			dst := filepath.Join(tree, filepath.FromSlash(string(first.Path)))
			if lc, ok := local[first.BLAKE3]; ok && takeLocal(lc, first, dst) == nil {
				localN.Add(1)
			} else {
				n, reqs, err := r.fetchFile(ctx, idx, rs.content[first.BLAKE3], first, dst)
				bytesFetched.Add(n)
				requests.Add(reqs)
				if err != nil {
					var pe *packError
					if errors.As(err, &pe) {
						return fmt.Errorf("%w; snapshot files affected: %s", err, listSome(filesUsingPack(m, rs, idx, pe.pack)))
					}
					return fmt.Errorf("%s: %w", first.Path, err)
				}
				fetched.Add(1)
			}
			o.Progress.Add(1, first.Size)
			// Other entries with the same content: hard links where they
			// were one link group, private copies otherwise.
			for _, e := range es[1:] {
				p := filepath.Join(tree, filepath.FromSlash(string(e.Path)))
				if e.LinkGroup != 0 && e.LinkGroup == first.LinkGroup {
					if err := os.Link(dst, p); err != nil {
						return err
					}
				} else if err := copyWithAttrs(dst, p, e); err != nil {
					return err
				}
				o.Progress.Add(1, e.Size)
			}
			return nil
		})
	}
	if err := snapshot.Import(ctx, l, rs.manifest, origin, fill, o.Logger); err != nil {
		return nil, err
	}
	res.FilesFetched, res.FilesLocal = fetched.Load(), localN.Load()
	res.BytesFetched, res.RequestsFetched = bytesFetched.Load(), requests.Load()
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// takeLocal puts the local copy of a content at dst after re-hashing it. A
// hard link is used when both sides were captured by link and the local file
// already has the entry's mode and mtime (setting them would change the
// shared inode); otherwise a private copy.
func takeLocal(lc snapshot.LocalContent, e *manifest.Entry, dst string) error {
	sum, n, err := manifest.HashFile(lc.Path)
	if err != nil || sum != e.BLAKE3 || n != e.Size {
		return fmt.Errorf("local copy %s does not hold the content", lc.Path)
	}
	st, err := fsutil.Lstat(lc.Path)
	if err == nil && lc.Capture == manifest.CaptureLink && e.Capture == manifest.CaptureLink &&
		st.Perm() == e.Mode && st.MtimeNs == e.MtimeNs && os.Link(lc.Path, dst) == nil {
		return nil
	}
	return copyWithAttrs(lc.Path, dst, e)
}

func copyWithAttrs(src, dst string, e *manifest.Entry) error {
	if err := fsutil.Reflink(src, dst, 0o600); err != nil {
		if !errors.Is(err, fsutil.ErrReflinkUnsupported) {
			return err
		}
		if _, err := fsutil.CopyFile(src, dst, 0o600); err != nil {
			return err
		}
	}
	return setAttrs(dst, e)
}

func setAttrs(p string, e *manifest.Entry) error {
	_ = os.Lchown(p, int(e.UID), int(e.GID))
	if err := unix.Chmod(p, e.Mode); err != nil {
		return err
	}
	return fsutil.SetMtime(p, e.MtimeNs)
}

// maxRun bounds one range read of consecutive blobs.
const maxRun = 16 << 20

// fetchFile writes one file from its chunks, reading runs of consecutive
// blobs of one pack in one request, checking every chunk id and the file's
// BLAKE3. It returns bytes fetched and requests made.
func (r *Repo) fetchFile(ctx context.Context, idx *Index, ids []ID, e *manifest.Entry, dst string) (int64, int64, error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := blake3.New()
	w := io.MultiWriter(f, h)
	var fetched, reqs, size int64
	for i := 0; i < len(ids); {
		loc, _ := idx.Lookup(ids[i])
		j := i + 1
		end := loc.Offset + int64(loc.Length)
		for j < len(ids) {
			nl, _ := idx.Lookup(ids[j])
			if nl.Pack != loc.Pack || nl.Offset != end || end+int64(nl.Length)-loc.Offset > maxRun {
				break
			}
			end += int64(nl.Length)
			j++
		}
		data, err := r.st.GetRange(ctx, packKey(loc.Pack), loc.Offset, end-loc.Offset)
		reqs++
		if err != nil {
			if ctx.Err() != nil {
				return fetched, reqs, ctx.Err()
			}
			if errors.Is(err, store.ErrNotFound) {
				err = fmt.Errorf("%w: missing from the archive", ErrCorrupt)
			}
			return fetched, reqs, &packError{loc.Pack, err}
		}
		fetched += int64(len(data))
		for ; i < j; i++ {
			l, _ := idx.Lookup(ids[i])
			blob := data[l.Offset-loc.Offset : l.Offset-loc.Offset+int64(l.Length)]
			chunk, err := decodeBlob(blob, ids[i], l.Raw)
			if err != nil {
				return fetched, reqs, &packError{loc.Pack, err}
			}
			if _, err := w.Write(chunk); err != nil {
				return fetched, reqs, err
			}
			size += int64(len(chunk))
		}
	}
	if sum := fmt.Sprintf("%x", h.Sum(nil)); sum != e.BLAKE3 || size != e.Size {
		return fetched, reqs, fmt.Errorf("%w: reassembled %s does not match its manifest (BLAKE3 %s, %d bytes)", ErrCorrupt, e.Path, sum, size)
	}
	if err := f.Close(); err != nil {
		return fetched, reqs, err
	}
	return fetched, reqs, setAttrs(dst, e)
}

// filesUsingPack lists the snapshot's files with a chunk in pack.
func filesUsingPack(m *manifest.Manifest, rs *RemoteSnapshot, idx *Index, pack ID) []string {
	var out []string
	for _, e := range m.Entries {
		if e.Type != manifest.TypeFile {
			continue
		}
		for _, cid := range rs.content[e.BLAKE3] {
			if l, ok := idx.Lookup(cid); ok && l.Pack == pack {
				out = append(out, string(e.Path))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func listSome(paths []string) string {
	if len(paths) > 10 {
		return strings.Join(paths[:10], ", ") + fmt.Sprintf(" and %d more", len(paths)-10)
	}
	return strings.Join(paths, ", ")
}
