package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// TestFileStream_ChunksInAnyOrder lands a file's chunks out of order: the
// hash runs in file order (from memory, or read back for chunks that came
// early), only the last chunk finishes the file, and a file whose bytes
// differ from the manifest is refused, its blame called.
func TestFileStream_ChunksInAnyOrder(t *testing.T) {
	dir := t.TempDir()
	root, err := fsutil.OpenDir(dir)
	must(t, err)
	defer root.Close()
	content := make([]byte, 3<<20+12345)
	rand.Read(content)
	cuts := []int{0, 1 << 20, 1<<20 + 7, 3 << 20, len(content)} // chunks of 1 MiB, 7 bytes, ~2 MiB, 12,345 bytes
	e := manifest.Entry{Path: "f", Type: manifest.TypeFile, Size: int64(len(content)), BLAKE3: manifest.HashBytes(content), Mode: 0o640, MtimeNs: 1_500_000_000_123_456_789}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}} {
		os.Remove(filepath.Join(dir, "f"))
		var s fileStream
		for k, c := range order {
			last, err := s.land(root, &e, len(order), content[cuts[c]:cuts[c+1]], int64(cuts[c]))
			must(t, err)
			if last != (k == len(order)-1) {
				t.Fatalf("order %v: chunk %d of %d says last=%v", order, k+1, len(order), last)
			}
		}
		must(t, s.finish(&e, func(*os.File) error { t.Fatal("blame called for a good file"); return nil }))
		got, err := os.ReadFile(filepath.Join(dir, "f"))
		must(t, err)
		st, err := os.Stat(filepath.Join(dir, "f"))
		must(t, err)
		if !bytes.Equal(got, content) || st.Mode().Perm() != 0o640 || st.ModTime().UnixNano() != e.MtimeNs {
			t.Fatalf("order %v: content equal %v, mode %v, mtime %d", order, bytes.Equal(got, content), st.Mode(), st.ModTime().UnixNano())
		}
	}
	// One byte off in a chunk that landed early (read back for the hash).
	os.Remove(filepath.Join(dir, "f"))
	bad := bytes.Clone(content)
	bad[cuts[2]+5] ^= 1
	var s fileStream
	for _, c := range []int{2, 3, 1, 0} {
		_, err := s.land(root, &e, 4, bad[cuts[c]:cuts[c+1]], int64(cuts[c]))
		must(t, err)
	}
	blamed := false
	err = s.finish(&e, func(*os.File) error { blamed = true; return nil })
	if !errors.Is(err, repo.ErrCorrupt) || !blamed || !strings.Contains(err.Error(), "does not match its manifest") {
		t.Fatalf("a file off by a byte: blamed %v, %v", blamed, err)
	}
}

// TestDownload_FlippedChunkNamesItsPack flips a byte inside a stored raw
// (incompressible) chunk, once of a file of several chunks and once of a
// file of one chunk (shared by two files): a raw chunk decodes without
// complaint, so only the file's hash against the manifest catches it, and
// the download must still name the pack and the files that use the chunk
// (not every file of the pack), leave no snapshot, and check the chunk's
// id to say which.
func TestDownload_FlippedChunkNamesItsPack(t *testing.T) {
	for _, c := range []struct {
		name  string
		raw   func(r *Repo, dir string, ref repo.BlobRef) bool
		files []string
	}{
		{"several chunks", func(_ *Repo, _ string, ref repo.BlobRef) bool { return ref.Raw > 300_000 }, []string{"db/big.sst"}},
		{"one chunk", func(r *Repo, dir string, ref repo.BlobRef) bool {
			b, err := os.ReadFile(filepath.Join(dir, "twin-a"))
			return err == nil && ref.ID == r.ChunkID(b)
		}, []string{"twin-a", "twin-b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			stores(t, func(t *testing.T, st store.Store) {
				ctx := context.Background()
				dir, l, id, r := archivedOnly(t, st)
				damaged, chunk := flipRawChunk(t, st, r, func(ref repo.BlobRef) bool { return c.raw(r, dir, ref) })
				_, err := Download(ctx, r, l, id, DownloadOptions{})
				var pe *repo.PackError
				if !errors.Is(err, repo.ErrCorrupt) || !errors.As(err, &pe) || pe.Pack != damaged {
					t.Fatalf("want a PackError naming pack %s, got %v", damaged, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "blob "+chunk.String()+" does not hash to its id") || !strings.Contains(msg, "snapshot files affected") {
					t.Fatalf("the error must name the chunk and the files: %v", err)
				}
				// Only the files that use the damaged chunk: the pack's
				// other files were not found damaged, and a list cut at ten
				// names must not hide one that is.
				if _, affected, _ := strings.Cut(msg, "snapshot files affected: "); affected != strings.Join(c.files, ", ") {
					t.Fatalf("the error must name exactly %v: %v", c.files, err)
				}
				if infos, _ := snapshot.List(ctx, l, nil); len(infos) != 0 {
					t.Fatal("a failed download left a snapshot")
				}
			})
		})
	}
}

// flipRawChunk flips a byte in the middle of the first chunk stored raw
// (incompressible) that match selects, and returns its pack and id.
func flipRawChunk(t *testing.T, st store.Store, r *Repo, match func(repo.BlobRef) bool) (pack, chunk repo.ID) {
	t.Helper()
	ctx := context.Background()
	must(t, st.List(ctx, "packs/", func(i store.Info) error {
		if chunk != (repo.ID{}) {
			return nil
		}
		b, err := st.Get(ctx, i.Key, 1<<30)
		must(t, err)
		refs, err := r.ParsePack(b)
		must(t, err)
		for _, ref := range refs {
			if match(ref) && ref.Length == ref.Raw+1 { // stored raw
				b[ref.Offset+int64(ref.Length)/2] ^= 0x01
				must(t, st.Put(ctx, i.Key, b))
				pack, chunk = packOfKey(t, i.Key), ref.ID
				return nil
			}
		}
		return nil
	}))
	if chunk == (repo.ID{}) {
		t.Fatal("no raw chunk to damage")
	}
	return pack, chunk
}

func packOfKey(t *testing.T, key string) repo.ID {
	t.Helper()
	id, err := repo.ParseID(key[strings.LastIndexByte(key, '/')+1:])
	must(t, err)
	return id
}

// TestExtract_FetchesLikeADownload: download --target of a whole snapshot
// (files of several chunks, a file shared twice, an empty file, a hard
// link) makes the captured tree; with a raw chunk flipped it fails naming
// the pack and the files, and leaves no target.
func TestExtract_FetchesLikeADownload(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		dir := dataDir(t)
		l, id := snap(t, dir)
		want := testtree.Snapshot(t, l.TreeDir(id))
		r := openRepo(t, st)
		_, err := Upload(ctx, r, l, id, UploadOptions{})
		must(t, err)
		rd, err := OpenReader(ctx, r, "test")
		must(t, err)
		target := filepath.Join(t.TempDir(), "out")
		res, err := rd.Extract(ctx, id, defaults.NodeID, target, nil, false)
		rd.Close()
		must(t, err)
		got := testtree.Snapshot(t, target)
		for p, e := range want { // a hard link is extracted as a copy: compare content, mode, mtime
			g, ok := got[p]
			if !ok || g.Mode != e.Mode || !bytes.Equal(g.Data, e.Data) || g.Target != e.Target || g.MtimeNs != e.MtimeNs {
				t.Fatalf("extracted %s differs: mode %v, %d bytes, mtime %d; want mode %v, %d bytes, mtime %d", p, g.Mode, len(g.Data), g.MtimeNs, e.Mode, len(e.Data), e.MtimeNs)
			}
		}
		if res.Files == 0 || res.ChunksFetched == 0 {
			t.Fatalf("extract: %+v", res)
		}
		// A flipped raw chunk of the big file.
		damaged, _ := flipRawChunk(t, st, r, func(ref repo.BlobRef) bool { return ref.Raw > 300_000 })
		rd, err = OpenReader(ctx, r, "test")
		must(t, err)
		defer rd.Close()
		target2 := filepath.Join(t.TempDir(), "out2")
		_, err = rd.Extract(ctx, id, defaults.NodeID, target2, nil, false)
		var pe *repo.PackError
		if !errors.As(err, &pe) || pe.Pack != damaged || !strings.Contains(err.Error(), "db/big.sst") {
			t.Fatalf("want a PackError naming pack %s and db/big.sst, got %v", damaged, err)
		}
		if _, err := os.Lstat(target2); !os.IsNotExist(err) {
			t.Fatal("a failed extract left its target")
		}
	})
}
