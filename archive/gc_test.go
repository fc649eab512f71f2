package archive

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/archive/store/faulty"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/retention"
	"github.com/hotsnap/hotsnap/snapshot"
)

func packBytes(t *testing.T, st store.Store) int64 {
	t.Helper()
	var n int64
	st.List(context.Background(), "packs/", func(i store.Info) error { n += i.Size; return nil })
	return n
}

func TestGC_ReclaimsForgottenSnapshots(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		dir := dataDir(t)
		l, err := snapshot.NewLayout(dir, "")
		must(t, err)
		r := openRepo(t, st)
		var ids []string
		for i := 0; i < 3; i++ {
			// Churn: the big file is replaced each time (new chunks).
			big := make([]byte, 3<<20)
			copy(big, []byte{byte(i)})
			for k := range big {
				big[k] ^= byte(k*7 + i)
			}
			must(t, os.WriteFile(filepath.Join(dir, "db", "big.sst.new"), big, 0o644))
			must(t, os.Rename(filepath.Join(dir, "db", "big.sst.new"), filepath.Join(dir, "db", "big.sst")))
			res, err := snapshot.Create(ctx, l, snapshot.CreateOptions{Now: func() time.Time { return time.Now().Add(time.Duration(i) * time.Hour) }})
			must(t, err)
			_, err = Upload(ctx, r, l, res.ID, UploadOptions{})
			must(t, err)
			ids = append(ids, res.ID)
		}
		before := packBytes(t, st)
		dry, err := r.GC(ctx, true, nil)
		must(t, err)
		// Nothing forgotten: nothing to delete, though small packs would be
		// merged (a dry run changes nothing).
		if packBytes(t, st) != before || dry.BlobsDeleted != 0 || dry.PacksDeleted != dry.PacksMerged {
			t.Fatalf("gc with nothing forgotten would delete data: %+v", dry)
		}
		f, err := r.Forget(ctx, retention.KeepPolicy{Last: 1}, false, time.Now())
		must(t, err)
		if len(f.Remove) != 2 {
			t.Fatalf("forget: %+v", f)
		}
		g, err := r.GC(ctx, false, nil)
		must(t, err)
		after := packBytes(t, st)
		if g.BytesAfter != after || after >= before {
			t.Fatalf("gc: %+v, packs %d -> %d", g, before, after)
		}
		checkAll(t, r)
		// All space of the forgotten snapshots is back: the archive now takes
		// what a fresh archive of the kept snapshot takes (up to trailers).
		freshStore, _ := fsstore.New(t.TempDir())
		fresh := openRepo(t, freshStore)
		_, err = Upload(ctx, fresh, l, ids[2], UploadOptions{})
		must(t, err)
		if want := packBytes(t, freshStore); after > want+want/100 {
			t.Fatalf("after gc the archive holds %d pack bytes, a fresh upload of the kept snapshot %d", after, want)
		}
		// The kept snapshot still downloads and verifies.
		must(t, snapshot.Delete(ctx, l, ids[2], nil))
		for _, id := range ids[:2] {
			snapshot.Delete(ctx, l, id, nil)
		}
		_, err = Download(ctx, r, l, ids[2], DownloadOptions{})
		must(t, err)
		if vr, err := snapshot.Verify(ctx, l, ids[2], snapshot.VerifyOptions{}); err != nil || !vr.OK() {
			t.Fatalf("verify after gc: %v %v", err, vr)
		}
	})
}

func TestGC_Locks(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, _ := fsstore.New(root)
	r := openRepo(t, st)
	shared, err := r.Lock(ctx, repo.LockShared, "upload test")
	must(t, err)
	if _, err := r.GC(ctx, false, nil); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "upload test") {
		t.Fatalf("gc under a live shared lock: %v", err)
	}
	shared.Release()
	// A lock whose holder died is broken, and said so. Its age is the
	// store's clock (the object's modification time, an hour ago), not
	// what the lock says of itself: it claims to expire in a year.
	plant := func(key string, age time.Duration, expires time.Time) {
		b, _ := json.Marshal(repo.LockInfo{Kind: repo.LockExclusive, Op: "gc", Holder: proc.Holder{Host: "gone", Pid: 1}, Created: time.Now().Add(-age), Expires: expires})
		must(t, st.Put(ctx, key, b))
		at := time.Now().Add(-age)
		must(t, os.Chtimes(filepath.Join(root, key), at, at))
	}
	plant("locks/deadbeef", time.Hour, time.Now().Add(365*24*time.Hour))
	g, err := r.GC(ctx, false, nil)
	must(t, err)
	if len(g.StaleLocks) != 1 || !strings.Contains(g.StaleLocks[0], "gone") {
		t.Fatalf("stale lock not reported: %+v", g)
	}
	// A lock refreshed a moment ago is live, whatever its host's clock
	// wrote into it (it claims to have expired a day ago).
	plant("locks/fresh", 0, time.Now().Add(-24*time.Hour))
	if _, err := r.GC(ctx, false, nil); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("a freshly refreshed lock was not honoured: %v", err)
	}
	must(t, st.Delete(ctx, "locks/fresh"))
	// An upload cannot start while gc holds its exclusive lock.
	ex, err := r.Lock(ctx, repo.LockExclusive, "gc")
	must(t, err)
	defer ex.Release()
	l, id := snap(t, dataDir(t))
	if _, err := Upload(ctx, r, l, id, UploadOptions{}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("upload during gc: %v", err)
	}
}

// pauseAfterPack blocks the first pack Put's return until release is closed.
type pauseAfterPack struct {
	store.Store
	paused, release chan struct{}
	once            bool
}

func (p *pauseAfterPack) Put(ctx context.Context, key string, data []byte) error {
	err := p.Store.Put(ctx, key, data)
	if strings.HasPrefix(key, "packs/") && !p.once {
		p.once = true
		close(p.paused)
		<-p.release
	}
	return err
}

// TestGC_DuringUpload: gc started while an upload is in progress must not
// lose the upload's data; the uploaded snapshot then downloads and verifies.
func TestGC_DuringUpload(t *testing.T) {
	ctx := context.Background()
	base, _ := fsstore.New(t.TempDir())
	r := openRepo(t, base)
	dir := dataDir(t)
	l, id := snap(t, dir)
	p := &pauseAfterPack{Store: base, paused: make(chan struct{}), release: make(chan struct{})}
	ru := *r
	ru.Repo = ru.WithStore(p)
	done := make(chan error, 1)
	go func() { _, err := Upload(ctx, &ru, l, id, UploadOptions{}); done <- err }()
	<-p.paused
	if _, err := r.GC(ctx, false, nil); !errors.Is(err, repo.ErrLocked) {
		close(p.release)
		t.Fatalf("gc during an upload: %v", err)
	}
	close(p.release)
	must(t, <-done)
	g, err := r.GC(ctx, false, nil)
	must(t, err)
	if g.PacksDeleted != 0 {
		t.Fatalf("gc deleted packs of a live snapshot: %+v", g)
	}
	must(t, snapshot.Delete(ctx, l, id, nil))
	_, err = Download(ctx, r, l, id, DownloadOptions{})
	must(t, err)
	checkAll(t, r)
}

func TestDownload_ReadOnlyCredentials(t *testing.T) {
	ctx := context.Background()
	st, _ := fsstore.New(t.TempDir())
	r := openRepo(t, st)
	l, id := snap(t, dataDir(t))
	_, err := Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	must(t, snapshot.Delete(ctx, l, id, nil))
	ro := *r
	ro.Repo = ro.WithStore(faulty.ReadOnly{Store: st})
	if _, err := Download(ctx, &ro, l, id, DownloadOptions{}); err != nil {
		t.Fatalf("download with read-only credentials: %v", err)
	}
	// A gc holding the archive still stops it.
	must(t, snapshot.Delete(ctx, l, id, nil))
	ex, err := r.Lock(ctx, repo.LockExclusive, "gc")
	must(t, err)
	defer ex.Release()
	if _, err := Download(ctx, &ro, l, id, DownloadOptions{}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("download during gc: %v", err)
	}
}

// breakLockAfterPack removes the upload's lock (as a gc that judged it
// stale would) once the first pack is stored.
type breakLockAfterPack struct {
	store.Store
	done bool
}

func (b *breakLockAfterPack) Put(ctx context.Context, key string, data []byte) error {
	err := b.Store.Put(ctx, key, data)
	if strings.HasPrefix(key, "packs/") && !b.done {
		b.done = true
		b.Store.List(ctx, "locks/", func(i store.Info) error { return b.Store.Delete(ctx, i.Key) })
	}
	return err
}

// TestUpload_StopsWhenItsLockIsLost: an upload whose lock is gone writes
// neither index nor manifest.
func TestUpload_StopsWhenItsLockIsLost(t *testing.T) {
	ctx := context.Background()
	base, _ := fsstore.New(t.TempDir())
	r := openRepo(t, base)
	l, id := snap(t, dataDir(t))
	ru := *r
	ru.Repo = ru.WithStore(&breakLockAfterPack{Store: base})
	if _, err := Upload(ctx, &ru, l, id, UploadOptions{}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("upload after its lock was removed: %v", err)
	}
	var idx, snaps int
	base.List(ctx, "index/", func(store.Info) error { idx++; return nil })
	base.List(ctx, "snapshots/", func(store.Info) error { snaps++; return nil })
	if idx != 0 || snaps != 0 {
		t.Fatalf("an upload without its lock wrote %d index and %d snapshot objects", idx, snaps)
	}
}
