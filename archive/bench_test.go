package archive

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive/repo"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	"github.com/hotsnap/hotsnap/retention"
	"github.com/hotsnap/hotsnap/snapshot"
)

// benchTree writes 256 MiB: half random, half text-like (words drawn from a
// small vocabulary, which compresses about 3x like logs and JSON do).
func benchTree(b *testing.B) (*snapshot.Layout, string) {
	dir := filepath.Join(b.TempDir(), "data")
	os.MkdirAll(dir, 0o755)
	r := make([]byte, 128<<20)
	rand.Read(r)
	os.WriteFile(filepath.Join(dir, "random.bin"), r, 0o644)
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega request response user id time status error ok")
	var sb strings.Builder
	for i := 0; sb.Len() < 128<<20; i++ {
		sb.WriteString(words[int(r[i%len(r)])%len(words)])
		if i%12 == 11 {
			sb.WriteByte('\n')
		} else {
			sb.WriteByte(' ')
		}
	}
	os.WriteFile(filepath.Join(dir, "text.log"), []byte(sb.String()), 0o644)
	l, _ := snapshot.NewLayout(dir, "")
	res, err := snapshot.Create(context.Background(), l, snapshot.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return l, res.ID
}

// BenchmarkUpload measures a first upload of 256 MiB (half random, half
// text) to a file:// archive on tmpfs, so the figure is hotsnap's own work;
// unencrypted and encrypted in the same run.
func BenchmarkUpload(b *testing.B) {
	l, id := benchTree(b)
	for _, encrypted := range []bool{false, true} {
		name := "plain"
		if encrypted {
			name = "encrypted"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(256 << 20)
			for i := 0; i < b.N; i++ {
				dir, _ := os.MkdirTemp("/dev/shm", "hotsnap-bench-")
				st, _ := fsstore.New(dir)
				o := repo.InitOptions{}
				if encrypted {
					k := repo.GenerateKey()
					o.Key = &k
				}
				r, _ := Init(context.Background(), st, o)
				res, err := Upload(context.Background(), r, l, id, UploadOptions{})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.BytesSent)/float64(256<<20), "stored/raw")
				os.RemoveAll(dir)
			}
		})
	}
}

// BenchmarkDownload measures downloading the 256 MiB snapshot from a
// file:// archive on tmpfs into a data dir with no local snapshots.
func BenchmarkDownload(b *testing.B) {
	l, id := benchTree(b)
	dir, _ := os.MkdirTemp("/dev/shm", "hotsnap-bench-")
	defer os.RemoveAll(dir)
	st, _ := fsstore.New(dir)
	r, _ := Init(context.Background(), st, repo.InitOptions{})
	if _, err := Upload(context.Background(), r, l, id, UploadOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target := filepath.Join(b.TempDir(), "target")
		os.Mkdir(target, 0o755)
		lt, _ := snapshot.NewLayout(target, "")
		if _, err := Download(context.Background(), r, lt, id, DownloadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGC: an archive of 20 snapshots of a 1 GiB tree (64 files of
// 16 MiB; 5 % of the files replaced before each snapshot), then forget all
// but the last 10 and gc. Reported next to the first full upload of the
// tree, measured in the same run, to the same file:// archive on disk.
func BenchmarkGC(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "data")
		os.MkdirAll(dir, 0o755)
		buf := make([]byte, 16<<20)
		write := func(k int) {
			rand.Read(buf)
			p := filepath.Join(dir, fmt.Sprintf("f%02d", k))
			os.WriteFile(p+".new", buf, 0o644)
			os.Rename(p+".new", p)
		}
		for k := 0; k < 64; k++ {
			write(k)
		}
		l, _ := snapshot.NewLayout(dir, "")
		st, _ := fsstore.New(filepath.Join(b.TempDir(), "repo"))
		r, _ := Init(context.Background(), st, repo.InitOptions{})
		var firstUpload time.Duration
		for s := 0; s < 20; s++ {
			if s > 0 {
				for k := 0; k < 3; k++ { // 3 of 64 files: 5 %
					write((s*3 + k) % 64)
				}
			}
			at := time.Now().Add(time.Duration(s) * time.Hour)
			res, err := snapshot.Create(context.Background(), l, snapshot.CreateOptions{Now: func() time.Time { return at }})
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if _, err := Upload(context.Background(), r, l, res.ID, UploadOptions{}); err != nil {
				b.Fatal(err)
			}
			if s == 0 {
				firstUpload = time.Since(t0)
			}
		}
		if _, err := r.Forget(context.Background(), retention.KeepPolicy{Last: 10}, false, time.Now().Add(48*time.Hour)); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		g, err := r.GC(context.Background(), false, nil)
		if err != nil {
			b.Fatal(err)
		}
		gcTime := time.Since(t0)
		b.ReportMetric(gcTime.Seconds(), "gc-s")
		b.ReportMetric(firstUpload.Seconds(), "first-upload-s")
		b.ReportMetric(gcTime.Seconds()/firstUpload.Seconds(), "gc/upload")
		b.ReportMetric(float64(g.BytesBefore-g.BytesAfter)/(1<<20), "freed-MiB")
	}
}
