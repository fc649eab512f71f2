package archive

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/snapshot"
)

// seedArchive is a real archive of a small snapshot (a few files of a few
// chunks, one link group), made once: the fuzz targets damage copies of it.
var seedArchive struct {
	once sync.Once
	dir  string // the archive's root
	keys []string
	id   string
	err  error
}

func seeded(t testing.TB) (string, []string, string) {
	seedArchive.once.Do(func() {
		base, err := os.MkdirTemp("", "hotsnap-fuzz-seed-")
		if err != nil {
			seedArchive.err = err
			return
		}
		data := filepath.Join(base, "data")
		os.MkdirAll(filepath.Join(data, "db"), 0o755)
		os.WriteFile(filepath.Join(data, "db", "text.log"), testtree.ProseText(600<<10, 3), 0o644)
		os.WriteFile(filepath.Join(data, "a.txt"), []byte("alpha\n"), 0o644)
		os.WriteFile(filepath.Join(data, "empty"), nil, 0o644)
		os.Link(filepath.Join(data, "a.txt"), filepath.Join(data, "db", "a-link"))
		os.Symlink("a.txt", filepath.Join(data, "sym"))
		l, err := snapshot.NewLayout(data, "")
		if err == nil {
			var res *snapshot.CreateResult
			if res, err = snapshot.Create(context.Background(), l, snapshot.CreateOptions{}); err == nil {
				seedArchive.id = res.ID
				seedArchive.dir = filepath.Join(base, "repo")
				var st *fsstore.Store
				if st, err = fsstore.New(seedArchive.dir); err == nil {
					var r *Repo
					if r, err = Init(context.Background(), st, repo.InitOptions{PackSize: 1 << 20}); err == nil {
						_, err = Upload(context.Background(), r, l, res.ID, UploadOptions{})
					}
				}
			}
		}
		seedArchive.err = err
		filepath.WalkDir(seedArchive.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(seedArchive.dir, p)
				seedArchive.keys = append(seedArchive.keys, filepath.ToSlash(rel))
			}
			return nil
		})
		sort.Strings(seedArchive.keys)
	})
	if seedArchive.err != nil {
		t.Fatalf("seed archive: %v", seedArchive.err)
	}
	return seedArchive.dir, seedArchive.keys, seedArchive.id
}

// damage copies the seed archive to dir and changes one object as op says:
// op[0] picks the object, op[1] the change (overwrite at an offset, cut,
// append, replace whole), op[2:6] the offset; the rest is the bytes.
func damage(t testing.TB, dir string, op []byte) store.Store {
	src, keys, _ := seeded(t)
	for _, k := range keys {
		b, _ := os.ReadFile(filepath.Join(src, k))
		p := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, b, 0o600)
	}
	if len(op) >= 6 {
		k := keys[int(op[0])%len(keys)]
		p := filepath.Join(dir, filepath.FromSlash(k))
		b, _ := os.ReadFile(p)
		off := int(binary.LittleEndian.Uint32(op[2:6]))
		payload := op[6:]
		switch op[1] % 4 {
		case 0: // overwrite in place
			if len(b) > 0 {
				off %= len(b)
				copy(b[off:], payload)
			}
		case 1: // truncate
			if len(b) > 0 {
				b = b[:off%len(b)]
			}
		case 2: // append
			b = append(b, payload...)
		case 3: // replace whole
			b = payload
		}
		os.WriteFile(p, b, 0o600)
	}
	st, err := fsstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// FuzzHostileArchive damages one object of a real archive (index, pack,
// snapshot object, config, lock...) in every way the fuzzer finds, then
// runs download, check and gc on it: each must refuse or succeed, never
// panic, and a failed download must leave no snapshot behind.
func FuzzHostileArchive(f *testing.F) {
	_, keys, _ := seeded(f)
	for i, k := range keys {
		for _, op := range []byte{0, 1, 2, 3} {
			f.Add(append([]byte{byte(i), op, 8, 0, 0, 0}, []byte("\xff\xff\xff\xff\x00\x00\x00\x10")...))
		}
		_ = k
	}
	f.Fuzz(func(t *testing.T, op []byte) {
		ctx := context.Background()
		st := damage(t, t.TempDir(), op)
		r, err := Open(ctx, st, nil)
		if err != nil {
			return
		}
		_, _, id := seeded(t)
		data := filepath.Join(t.TempDir(), "data")
		os.Mkdir(data, 0o755)
		l, err := snapshot.NewLayout(data, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Download(ctx, r, l, id, DownloadOptions{}); err != nil {
			if infos, _ := snapshot.List(ctx, l, nil); len(infos) != 0 {
				t.Fatalf("a failed download (%v) left a snapshot: %+v", err, infos)
			}
		} else if vr, err := snapshot.Verify(ctx, l, id, snapshot.VerifyOptions{}); err != nil || !vr.OK() {
			t.Fatalf("a download that succeeded does not verify: %v %v", err, vr)
		}
		r.Check(ctx, CheckOptions{ReadData: true})
		if _, err := r.GC(ctx, false, nil); err == nil {
			// Whatever gc kept must still be a consistent archive for
			// what it kept: check finds no missing chunk.
			c, err := r.Check(ctx, CheckOptions{})
			if err == nil && !c.OK() {
				for _, p := range c.Problems {
					if strings.Contains(p, "no index holds") {
						t.Fatalf("gc on a damaged archive lost a used chunk: %v", c.Problems)
					}
				}
			}
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if seedArchive.dir != "" {
		os.RemoveAll(filepath.Dir(seedArchive.dir))
	}
	os.Exit(code)
}
