package snapshot

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// makeTree writes dirs*perDir files of size bytes under a new data dir.
func makeTree(b *testing.B, dirs, perDir, size int) string {
	b.Helper()
	root := filepath.Join(b.TempDir(), "data")
	buf := make([]byte, size)
	rand.Read(buf)
	for d := 0; d < dirs; d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < perDir; f++ {
			buf[0], buf[1] = byte(d), byte(f) // distinct content
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", f)), buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root
}

// BenchmarkPause measures the write pause (lockHeldMs: from the start of the
// successful lock attempt to the end of resume) of creates of 10,000 files in
// 100 dirs, for 1 KiB and 100 KiB files, next to `cp -al` of the same tree.
func BenchmarkPause(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		root := makeTree(b, 100, 100, size)
		b.Run(fmt.Sprintf("hotsnap/files=10000/size=%dKiB", size>>10), func(b *testing.B) {
			l, err := NewLayout(root, "")
			if err != nil {
				b.Fatal(err)
			}
			q := &quiesce.Flock{DataDir: root}
			defer q.Close()
			var pause float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := Create(context.Background(), l, CreateOptions{Quiescer: q})
				if err != nil {
					b.Fatal(err)
				}
				pause += res.LockHeldMs
				b.StopTimer()
				if err := Delete(context.Background(), l, res.ID, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(pause/float64(b.N), "pause-ms")
		})
		b.Run(fmt.Sprintf("cp-al/files=10000/size=%dKiB", size>>10), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				dst := filepath.Join(b.TempDir(), "copy")
				start := time.Now()
				if out, err := exec.Command("cp", "-al", root, dst).CombinedOutput(); err != nil {
					b.Fatalf("cp -al: %v %s", err, out)
				}
				total += time.Since(start)
				b.StopTimer()
				os.RemoveAll(dst)
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "pause-ms")
		})
	}
}

// BenchmarkCreate1GiB measures a whole create (lock, link, hash, manifest,
// publish) of a 1 GiB tree (64 files of 16 MiB, in the page cache), then a
// second create of the unchanged tree, which reuses every hash.
func BenchmarkCreate1GiB(b *testing.B) {
	root := makeTree(b, 4, 16, 16<<20)
	l, err := NewLayout(root, "")
	if err != nil {
		b.Fatal(err)
	}
	q := &quiesce.Flock{DataDir: root}
	defer q.Close()
	b.Run("first", func(b *testing.B) {
		b.SetBytes(1 << 30)
		for i := 0; i < b.N; i++ {
			res, err := Create(context.Background(), l, CreateOptions{Quiescer: q})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			Delete(context.Background(), l, res.ID, nil) // no snapshot left: the next one hashes everything
			b.StartTimer()
		}
	})
	if _, err := Create(context.Background(), l, CreateOptions{Quiescer: q}); err != nil {
		b.Fatal(err)
	}
	b.Run("second-unchanged", func(b *testing.B) {
		b.SetBytes(1 << 30)
		for i := 0; i < b.N; i++ {
			res, err := Create(context.Background(), l, CreateOptions{Quiescer: q})
			if err != nil {
				b.Fatal(err)
			}
			if res.HashedBytes != 0 {
				b.Fatalf("unchanged tree hashed %d bytes", res.HashedBytes)
			}
			b.StopTimer()
			Delete(context.Background(), l, res.ID, nil)
			b.StartTimer()
		}
	})
}

// snapshotOf takes a snapshot of the data dir root.
func snapshotOf(b *testing.B, root string) (*Layout, *CreateResult) {
	b.Helper()
	l, err := NewLayout(root, "")
	if err != nil {
		b.Fatal(err)
	}
	snap, err := Create(context.Background(), l, CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return l, snap
}

// BenchmarkRestore measures restores of a 10,000-file tree (100 dirs) with
// --fast-verify: swap-ms is the journaled swap alone (journal + moves), next
// to `cp -al` of the same tree; and a full restore of a 1 GiB tree with full
// verification (every file re-hashed), as an effective rate.
func BenchmarkRestore(b *testing.B) {
	l, snap := snapshotOf(b, makeTree(b, 100, 100, 1<<10))
	b.Run("hotsnap-fast-verify/files=10000", func(b *testing.B) {
		var swap float64
		for i := 0; i < b.N; i++ {
			res, err := Restore(context.Background(), l, snap.ID, RestoreOptions{FastVerify: true})
			if err != nil {
				b.Fatal(err)
			}
			swap += res.SwapMs
		}
		b.ReportMetric(swap/float64(b.N), "swap-ms")
	})
	b.Run("cp-al/files=10000", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			dst := filepath.Join(b.TempDir(), "copy")
			start := time.Now()
			if out, err := exec.Command("cp", "-al", l.TreeDir(snap.ID), dst).CombinedOutput(); err != nil {
				b.Fatalf("cp -al: %v %s", err, out)
			}
			total += time.Since(start)
			b.StopTimer()
			os.RemoveAll(dst)
			b.StartTimer()
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "swap-ms")
	})
	// Directories of 1,000 files: each goes to one worker (restoreBatch),
	// not to two that wait on its lock.
	lw, snapWide := snapshotOf(b, makeTree(b, 20, 1000, 1<<10))
	b.Run("hotsnap-fast-verify/files=20000,per-dir=1000", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Restore(context.Background(), lw, snapWide.ID, RestoreOptions{FastVerify: true, NoFailsafe: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	lb, snapBig := snapshotOf(b, makeTree(b, 4, 16, 16<<20))
	b.Run("hotsnap-full-verify/1GiB", func(b *testing.B) {
		b.SetBytes(1 << 30)
		for i := 0; i < b.N; i++ {
			if _, err := Restore(context.Background(), lb, snapBig.ID, RestoreOptions{NoFailsafe: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
