package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	s3store "github.com/hotsnap/hotsnap/archive/store/s3"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/snapshot"
)

// stores runs fn against a file:// store and against a real MinIO.
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("fs", func(t *testing.T) {
		st, err := fsstore.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, st)
	})
	t.Run("s3", func(t *testing.T) {
		fn(t, minioStore(t, testserver.StartMinIO(t), "repo"))
	})
}

func minioStore(t *testing.T, m *testserver.MinIO, bucket string) store.Store {
	t.Helper()
	s, err := s3store.New(s3store.Config{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "hotsnap", Insecure: true,
		AccessKey: testserver.MinIOUser, SecretKey: testserver.MinIOPassword})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &store.Retry{Store: s, Attempts: 2}
}

// dataDir makes the fixture plus files that need several chunks and packs:
// random (incompressible) and text-like (compressible) content, and two
// identical files that are not hard links.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := testtree.New(t)
	big := make([]byte, 6<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(dir, "db", "big.sst"), big, 0o644))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 100_000)
	must(t, os.WriteFile(filepath.Join(dir, "db", "text.log"), text, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "twin-a"), big[:300_000], 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "twin-b"), big[:300_000], 0o644))
	return dir
}

// archivedOnly makes dataDir's snapshot, uploads it to st and deletes
// the local copy, so a download must fetch everything.
func archivedOnly(t *testing.T, st store.Store) (dir string, l *snapshot.Layout, id string, r *Repo) {
	t.Helper()
	dir = dataDir(t)
	l, id = snap(t, dir)
	r = openRepo(t, st)
	_, err := Upload(context.Background(), r, l, id, UploadOptions{})
	must(t, err)
	must(t, snapshot.Delete(context.Background(), l, id, nil))
	return dir, l, id, r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func snap(t *testing.T, dir string, copyGlobs ...string) (*snapshot.Layout, string) {
	t.Helper()
	l, err := snapshot.NewLayout(dir, "")
	must(t, err)
	res, err := snapshot.Create(context.Background(), l, snapshot.CreateOptions{Copy: copyGlobs})
	must(t, err)
	return l, res.ID
}

func openRepo(t *testing.T, st store.Store) *Repo {
	t.Helper()
	r, err := Init(context.Background(), st, repo.InitOptions{PackSize: 1 << 20})
	must(t, err)
	return r
}

// checkAll runs a full check and fails the test on any problem.
func checkAll(t *testing.T, r *Repo) *CheckResult {
	t.Helper()
	c, err := r.Check(context.Background(), CheckOptions{ReadData: true})
	must(t, err)
	if !c.OK() {
		t.Fatalf("archive check: %v", c.Problems)
	}
	return c
}

func TestArchive_RoundTripAndDedup(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		dir := dataDir(t)
		l, id := snap(t, dir, "CURRENT")
		want := testtree.Snapshot(t, l.TreeDir(id))
		r := openRepo(t, st)
		up, err := Upload(ctx, r, l, id, UploadOptions{})
		must(t, err)
		if up.FilesRead != up.Files-2 || up.PacksWritten < 2 || up.BytesSent == 0 { // 1 MiB packs: the 6 MiB of random data fill several
			// twin-b and the hard link are not read: same content as twin-a / 000002.sst.
			t.Fatalf("first upload: %+v", up)
		}
		c := checkAll(t, r)
		if c.Snapshots != 1 || c.OrphanPacks != 0 {
			t.Fatalf("check: %+v", c)
		}
		// The same snapshot again: nothing new is read or sent.
		again, err := Upload(ctx, r, l, id, UploadOptions{})
		must(t, err)
		if again.BytesSent != 0 || again.FilesRead != 0 || again.FilesReused != again.Files {
			t.Fatalf("second upload of the same snapshot: %+v", again)
		}
		// A later snapshot with one file replaced: only it is read and sent.
		p := filepath.Join(dir, "db", "000001.sst")
		must(t, os.WriteFile(p+".new", []byte("a new version of this table"), 0o644))
		must(t, os.Rename(p+".new", p))
		_, id2 := snap(t, dir, "CURRENT")
		next, err := Upload(ctx, r, l, id2, UploadOptions{})
		must(t, err)
		// New chunks: the file's, and one each of the two small streams
		// (manifest and content records) that changed with it.
		if next.FilesRead != 1 || next.BytesRead != int64(len("a new version of this table")) || next.ChunksNew != 3 {
			t.Fatalf("incremental upload: %+v", next)
		}
		// Download into an empty place, then compare with the snapshot.
		must(t, snapshot.Delete(ctx, l, id, nil))
		down, err := Download(ctx, r, l, id, DownloadOptions{})
		must(t, err)
		if d := testtree.Diff(want, testtree.Snapshot(t, l.TreeDir(id))); d != "" {
			t.Fatalf("downloaded snapshot differs:\n%s", d)
		}
		vr, err := snapshot.Verify(ctx, l, id, snapshot.VerifyOptions{})
		if err != nil || !vr.OK() {
			t.Fatalf("verify downloaded: %v %v", err, vr.Problems)
		}
		// Most files came from the local snapshot id2 (same content), after a re-hash.
		if down.FilesLocal == 0 || down.FilesFetched == 0 {
			t.Fatalf("download should take unchanged files locally and fetch the rest: %+v", down)
		}
		// The downloaded snapshot restores like a local one.
		if _, err := snapshot.Restore(ctx, l, id, snapshot.RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		list, err := r.List(ctx)
		must(t, err)
		if len(list) != 2 || list[0].Error != "" {
			t.Fatalf("archive list: %+v", list)
		}
		checkAll(t, r)
	})
}

func TestArchive_DownloadFetchesEverythingWithoutLocalCopies(t *testing.T) {
	ctx := context.Background()
	st, _ := fsstore.New(t.TempDir())
	dir := dataDir(t)
	l, id := snap(t, dir)
	r := openRepo(t, st)
	_, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	other := filepath.Join(t.TempDir(), "elsewhere")
	must(t, os.Mkdir(other, 0o755))
	l2, err := snapshot.NewLayout(other, "")
	must(t, err)
	down, err := Download(ctx, r, l2, id, DownloadOptions{})
	must(t, err)
	if down.FilesLocal != 0 || down.FilesFetched == 0 {
		t.Fatalf("%+v", down)
	}
	if _, err := Download(ctx, r, l2, id, DownloadOptions{}); !errors.Is(err, snapshot.ErrExists) {
		t.Fatalf("second download must refuse: %v", err)
	}
	if _, err := Download(ctx, r, l2, "2020-01-01T00.00.00Z_nope", DownloadOptions{}); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := Download(ctx, r, l2, id, DownloadOptions{Node: "n9"}); !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), "local") {
		t.Fatalf("unknown node must name the nodes present: %v", err)
	}
}

func TestArchive_ChangedFileFailsUpload(t *testing.T) {
	ctx := context.Background()
	st, _ := fsstore.New(t.TempDir())
	dir := dataDir(t)
	l, id := snap(t, dir, "CURRENT")
	// Damage the snapshot's private copy (a linked file would be live data).
	must(t, os.WriteFile(filepath.Join(l.TreeDir(id), "db", "CURRENT"), []byte("MANIFEST-000666\n"), 0o644))
	r := openRepo(t, st)
	_, err := Upload(ctx, r, l, id, UploadOptions{})
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "db/CURRENT") {
		t.Fatalf("want ErrChanged naming db/CURRENT, got %v", err)
	}
	if list, _ := r.List(ctx); len(list) != 0 {
		t.Fatal("a failed upload wrote a manifest")
	}
}

// TestArchive_ResumeReusesPacks: packs sent before an interruption are found
// from their trailers and not sent again.
func TestArchive_ResumeReusesPacks(t *testing.T) {
	ctx := context.Background()
	st, _ := fsstore.New(t.TempDir())
	dir := dataDir(t)
	l, id := snap(t, dir)
	r := openRepo(t, st)
	full, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	// Pretend the upload died after its packs: drop the index and manifest.
	st.List(ctx, "index/", func(i store.Info) error { return st.Delete(ctx, i.Key) })
	st.List(ctx, "snapshots/", func(i store.Info) error { return st.Delete(ctx, i.Key) })
	again, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	if again.BytesSent != 0 || again.OrphanPacksReused != int(full.PacksWritten) {
		t.Fatalf("resume sent %d bytes and reused %d of %d packs", again.BytesSent, again.OrphanPacksReused, full.PacksWritten)
	}
	checkAll(t, r)
}

func TestArchive_CorruptOrMissingPack(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		_, l, id, r := archivedOnly(t, st)
		var packs []string
		st.List(ctx, "packs/", func(i store.Info) error { packs = append(packs, i.Key); return nil })
		// Flip one byte in the middle of a big blob of file data (a flip in
		// a trailer does not affect download, which checks every chunk, but
		// check --read-data finds it: see TestArchive_TrailerFlipFoundByCheck).
		damaged := ""
		for _, k := range packs {
			b, err := st.Get(ctx, k, 1<<30)
			must(t, err)
			refs, err := r.ParsePack(b)
			must(t, err)
			for _, ref := range refs {
				if ref.Raw >= 256<<10 {
					b[ref.Offset+int64(ref.Length)/2] ^= 0xff
					must(t, st.Put(ctx, k, b))
					damaged = k
					break
				}
			}
			if damaged != "" {
				break
			}
		}
		_, err := Download(ctx, r, l, id, DownloadOptions{})
		if !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "snapshot files affected") {
			t.Fatalf("corrupt pack: want repo.ErrCorrupt naming files, got %v", err)
		}
		if infos, _ := snapshot.List(ctx, l, nil); len(infos) != 0 {
			t.Fatal("a failed download left a snapshot")
		}
		c, err := r.Check(ctx, CheckOptions{ReadData: true})
		must(t, err)
		if c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), "does not hash to its name") {
			t.Fatalf("check must find the damaged pack: %+v", c)
		}
		// A missing pack: structure check alone finds it; download names files.
		must(t, st.Delete(ctx, packs[len(packs)-1]))
		c, err = r.Check(ctx, CheckOptions{})
		must(t, err)
		if !strings.Contains(strings.Join(c.Problems, "\n"), "missing") {
			t.Fatalf("structure check must find the missing pack: %v", c.Problems)
		}
		if _, err = Download(ctx, r, l, id, DownloadOptions{}); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("missing pack: %v", err)
		}
	})
}

// stopAfterPuts stops the real MinIO server once n packs have been stored.
type stopAfterPuts struct {
	store.Store
	n    int
	stop func()
}

func (s *stopAfterPuts) Put(ctx context.Context, key string, data []byte) error {
	err := s.Store.Put(ctx, key, data)
	if strings.HasPrefix(key, "packs/") {
		if s.n--; s.n == 0 {
			s.stop()
		}
	}
	return err
}

func TestArchive_TrailerFlipFoundByCheck(t *testing.T) {
	ctx := context.Background()
	st, _ := fsstore.New(t.TempDir())
	l, id := snap(t, dataDir(t))
	r := openRepo(t, st)
	_, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	var first string
	st.List(ctx, "packs/", func(i store.Info) error { first = i.Key; return nil })
	b, _ := st.Get(ctx, first, 1<<30)
	b[len(b)-repo.TrailerTailLen-5] ^= 0x01 // inside the last trailer entry
	must(t, st.Put(ctx, first, b))
	c, err := r.Check(ctx, CheckOptions{ReadData: true})
	must(t, err)
	if c.OK() {
		t.Fatal("check --read-data missed a flipped trailer byte")
	}
}

func TestArchive_MinIOStoppedMidUpload(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMinIO(t)
	st := minioStore(t, m, "stopped")
	r := openRepo(t, st)
	dir := dataDir(t)
	l, id := snap(t, dir)
	r.Repo = r.WithStore(&stopAfterPuts{Store: st, n: 2, stop: m.Stop})
	res, err := Upload(ctx, r, l, id, UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "failed after") {
		t.Fatalf("want a clear failure after bounded retries, got %v", err)
	}
	if strings.Contains(err.Error(), testserver.MinIOPassword) {
		t.Fatal("the error shows the secret key")
	}
	if res.PacksWritten != 2 {
		t.Fatalf("MinIO was stopped after 2 packs, upload says %d", res.PacksWritten)
	}
	m.Start()
	r.Repo = r.WithStore(st)
	// Nothing references missing data: no manifest was written, check is clean.
	if list, _ := r.List(ctx); len(list) != 0 {
		t.Fatalf("an interrupted upload left a manifest: %+v", list)
	}
	c := checkAll(t, r)
	if c.OrphanPacks != 2 {
		t.Fatalf("want the 2 packs sent before the stop, unreferenced: %+v", c)
	}
	again, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	if again.OrphanPacksReused != 2 {
		t.Fatalf("the rerun must reuse the 2 packs already sent: %+v", again)
	}
	checkAll(t, r)
}

func TestInit_Twice(t *testing.T) {
	st, _ := fsstore.New(t.TempDir())
	openRepo(t, st)
	if _, err := Init(context.Background(), st, repo.InitOptions{}); !errors.Is(err, repo.ErrAlreadyInitialised) {
		t.Fatalf("%v", err)
	}
	empty, _ := fsstore.New(t.TempDir())
	if _, err := Open(context.Background(), empty, nil); !errors.Is(err, repo.ErrNotInitialised) {
		t.Fatalf("%v", err)
	}
}

// TestUpload_IndexesAsItGoes: an upload writes an index object each time
// its new packs hold a full one's blobs, moving them into its in-memory
// index (what it keeps per new chunk is the index's 48 bytes); a chunk
// met again after its flush (files "a" and "z" share their first 4 MiB,
// with 40 files between) is still stored once, and the snapshot reads
// back, checks and downloads.
func TestUpload_IndexesAsItGoes(t *testing.T) {
	defer func(n int) { indexFlushBlobs = n }(indexFlushBlobs)
	indexFlushBlobs = 8
	ctx := context.Background()
	dir := t.TempDir()
	shared := make([]byte, repo.DefaultMaxChunk)
	testtree.RandomFill(shared, 99)
	for _, name := range []string{"a", "z"} {
		tail := make([]byte, 100<<10)
		testtree.RandomFill(tail, uint64(name[0]))
		must(t, os.WriteFile(filepath.Join(dir, name), append(append([]byte{}, shared...), tail...), 0o644))
	}
	for i := range 40 {
		b := make([]byte, 64<<10)
		testtree.RandomFill(b, uint64(i))
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%02d", i)), b, 0o644))
	}
	l, id := snap(t, dir)
	root := t.TempDir()
	st, _ := fsstore.New(root)
	r, err := Init(ctx, st, repo.InitOptions{PackSize: 1 << 20})
	must(t, err)
	up, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	idxObjects, _ := os.ReadDir(filepath.Join(root, "index"))
	if len(idxObjects) < 3 {
		t.Fatalf("%d index objects for %d new chunks at %d a flush", len(idxObjects), up.ChunksNew, indexFlushBlobs)
	}
	idx, _, err := r.LoadIndex(ctx, false)
	must(t, err)
	if up.ChunksNew != int64(idx.Len()) || up.ChunksReused < 1 {
		t.Fatalf("%d new chunks, %d reused, %d in the index: every chunk must be stored once", up.ChunksNew, up.ChunksReused, idx.Len())
	}
	checkAll(t, r)
	must(t, snapshot.Delete(ctx, l, id, nil))
	if _, err := Download(ctx, r, l, id, DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	if vr, err := snapshot.Verify(ctx, l, id, snapshot.VerifyOptions{}); err != nil || !vr.OK() {
		t.Fatalf("verify after download: %v %v", vr, err)
	}
}
