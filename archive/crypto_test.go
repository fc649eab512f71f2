package archive

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	"github.com/hotsnap/hotsnap/snapshot"
)

const marker = "HOTSNAP-PLAINTEXT-MARKER-6d1f0c"

func TestEncryption_RoundTripAndKeys(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		key := repo.GenerateKey()
		r, err := Init(ctx, st, repo.InitOptions{PackSize: 1 << 20, Key: &key})
		must(t, err)
		dir := dataDir(t)
		must(t, os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(strings.Repeat(marker+"\n", 1000)), 0o644))
		l, id := snap(t, dir)
		_, err = Upload(ctx, r, l, id, UploadOptions{})
		must(t, err)
		// Nothing stored reveals the plaintext or its plain BLAKE3.
		plainHash := blake3.Sum256([]byte(strings.Repeat(marker+"\n", 1000)))
		for _, needle := range [][]byte{[]byte(marker), plainHash[:], []byte(hex.EncodeToString(plainHash[:]))} {
			st.List(ctx, "", func(i store.Info) error {
				b, _ := st.Get(ctx, i.Key, 1<<30)
				if bytes.Contains(b, needle) || strings.Contains(i.Key, string(needle)) {
					t.Errorf("object %s reveals %q", i.Key, needle)
				}
				return nil
			})
		}
		// The right key reads everything back.
		r2, err := Open(ctx, st, &key)
		must(t, err)
		checkAll(t, r2)
		must(t, snapshot.Delete(ctx, l, id, nil))
		_, err = Download(ctx, r2, l, id, DownloadOptions{})
		must(t, err)
		if vr, err := snapshot.Verify(ctx, l, id, snapshot.VerifyOptions{}); err != nil || !vr.OK() {
			t.Fatalf("verify: %v %v", err, vr)
		}
		_, err = r2.GC(ctx, false, nil)
		must(t, err)
		checkAll(t, r2)
		// A wrong or missing key fails when the archive is opened, before any data moves.
		wrong := repo.GenerateKey()
		if _, err := Open(ctx, st, &wrong); !errors.Is(err, repo.ErrWrongKey) || !strings.Contains(err.Error(), key.ID()) {
			t.Fatalf("wrong key: %v", err)
		}
		if _, err := Open(ctx, st, nil); !errors.Is(err, repo.ErrKeyRequired) {
			t.Fatalf("missing key: %v", err)
		}
	})
}

func TestEncryption_KeyOnPlainArchiveRefused(t *testing.T) {
	st, _ := fsstore.New(t.TempDir())
	openRepo(t, st)
	k := repo.GenerateKey()
	if _, err := Open(context.Background(), st, &k); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("%v", err)
	}
}

func TestParseKey(t *testing.T) {
	k := repo.GenerateKey()
	for _, b := range [][]byte{k[:], []byte(hex.EncodeToString(k[:]) + "\n")} {
		got, err := repo.ParseKey(b)
		if err != nil || got != k {
			t.Fatalf("ParseKey(%d bytes): %v", len(b), err)
		}
	}
	if _, err := repo.ParseKey([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

// TestEncryption_EveryFlipIsDetected flips bytes in every kind of object of
// an encrypted archive: each flip must be refused, never read as data.
func TestEncryption_EveryFlipIsDetected(t *testing.T) {
	ctx := context.Background()
	key := repo.GenerateKey()
	root := t.TempDir()
	st, _ := fsstore.New(root)
	r, err := Init(ctx, st, repo.InitOptions{PackSize: 1 << 20, Key: &key})
	must(t, err)
	l, id := snap(t, dataDir(t))
	_, err = Upload(ctx, r, l, id, UploadOptions{})
	must(t, err)
	keyOf := func(prefix string) string {
		var k string
		st.List(ctx, prefix, func(i store.Info) error { k = i.Key; return nil })
		return k
	}
	flip := func(k string, at int) func() {
		orig, _ := st.Get(ctx, k, 1<<30)
		b := append([]byte(nil), orig...)
		if at < 0 {
			at = len(b) + at
		}
		b[at] ^= 0x01
		must(t, st.Put(ctx, k, b))
		return func() { must(t, st.Put(ctx, k, orig)) }
	}
	// config: every single byte.
	cfg, _ := st.Get(ctx, "config", 1<<20)
	for i := range cfg {
		undo := flip("config", i)
		if _, err := Open(ctx, st, &key); err == nil {
			t.Fatalf("config byte %d flipped: the archive still opened", i)
		}
		undo()
	}
	// index, manifest: any read fails.
	for _, k := range []string{keyOf("index/"), keyOf("snapshots/")} {
		undo := flip(k, -20)
		if _, err := Download(ctx, r, l, "2020-01-01T00.00.00Z_x", DownloadOptions{}); err == nil {
			t.Fatal("unreachable")
		}
		c, err := r.Check(ctx, CheckOptions{})
		if err == nil && c.OK() {
			t.Fatalf("%s flipped: check found nothing", k)
		}
		undo()
	}
	// pack: a byte of a blob, and a byte of the trailer.
	pk := keyOf("packs/")
	data, _ := st.Get(ctx, pk, 1<<30)
	refs, err := r.ParsePack(data)
	must(t, err)
	for _, at := range []int{int(refs[0].Offset) + refs[0].Length/2, len(data) - repo.TrailerTailLen - 5} {
		undo := flip(pk, at)
		c, err := r.Check(ctx, CheckOptions{ReadData: true})
		must(t, err)
		if c.OK() {
			t.Fatalf("pack byte %d flipped: check --read-data found nothing", at)
		}
		undo()
	}
	// lock: an unreadable lock is treated as a live exclusive one.
	lk, err := r.Lock(ctx, repo.LockShared, "test")
	must(t, err)
	undo := flip(lk.Key(), 30)
	if _, err := r.GC(ctx, false, nil); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("flipped lock: gc %v", err)
	}
	undo()
	lk.Release()
	checkAll(t, r)
	_ = time.Now
}
