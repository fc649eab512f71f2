package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// BenchmarkClusterCreate: three agents (real HTTP on loopback, real etcd),
// 1,000 files of 4 KiB on each node; one op is a whole cluster create
// (agency lock, plan, lock all, create all, unlock, plan check). It reports
// the longest and the median time writes stayed stopped on a node.
func BenchmarkClusterCreate(b *testing.B) {
	tc := startCluster(b, 3)
	buf := make([]byte, 4096)
	for _, n := range tc.nodes {
		for d := 0; d < 10; d++ {
			dir := filepath.Join(n.dir, fmt.Sprintf("d%02d", d))
			os.MkdirAll(dir, 0o755)
			for f := 0; f < 100; f++ {
				buf[0], buf[1] = byte(d), byte(f)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), buf, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	ctx := context.Background()
	// One create outside the timing: the first hashes every file; later
	// ones reuse the hashes of unchanged inodes, as in production.
	if _, err := tc.co.Create(ctx, CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	var pauses []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := tc.co.Create(ctx, CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range res.Pieces {
			pauses = append(pauses, p.LockHeldMs)
		}
	}
	b.StopTimer()
	sort.Float64s(pauses)
	b.ReportMetric(pauses[len(pauses)-1], "max-pause-ms")
	b.ReportMetric(pauses[len(pauses)/2], "median-pause-ms")
}
