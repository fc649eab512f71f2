package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/snapshot"
)

// TestCoordinatorRunPolicy: cluster run --policy, twice: each run takes a
// cluster snapshot, uploads every piece, keeps one cluster snapshot on
// the nodes and one in the archive, and gcs; a failed upload is named.
func TestCoordinatorRunPolicy(t *testing.T) {
	tc := startCluster(t, 3)
	ctx := context.Background()
	spec := "file://" + t.TempDir()
	p := &pipeline.Policy{Remote: spec, KeepLocal: &pipeline.Keep{Last: 1}, KeepRemote: &pipeline.Keep{Last: 1}, GC: true}
	open := func(ctx context.Context, s string) (*archive.Repo, error) {
		return remote.Open(ctx, s, remote.Options{}, false)
	}
	var ids []string
	for range 2 {
		res, err := tc.co.RunPolicy(ctx, p, CreateOptions{}, open)
		if err != nil || !res.OK {
			t.Fatalf("cluster run: %+v %v", res, err)
		}
		var names []string
		for _, s := range res.Steps {
			names = append(names, s.Step)
		}
		if strings.Join(names, " ") != "create upload prune forget gc" || res.Steps[0].Bytes == 0 {
			t.Fatalf("steps %+v", res.Steps)
		}
		ids = append(ids, res.ID)
	}
	l, err := tc.co.List(ctx)
	if err != nil || len(l.Snapshots) != 1 || l.Snapshots[0].ID != ids[1] || !l.Snapshots[0].Available {
		t.Fatalf("cluster snapshots after two runs keeping one: %+v %v", l, err)
	}
	repo, _ := open(ctx, spec)
	list, _ := repo.List(ctx)
	if len(list) != 3 || list[0].ID != ids[1] {
		t.Fatalf("archived pieces after two runs keeping one: %+v", list)
	}
	// A remote the agents cannot use: the upload step fails, the new
	// cluster snapshot stays, nothing is pruned.
	bad := filepath.Join(t.TempDir(), "file")
	os.WriteFile(bad, []byte("x"), 0o644)
	res, err := tc.co.RunPolicy(ctx, &pipeline.Policy{Remote: "file://" + bad, KeepLocal: &pipeline.Keep{Last: 1}}, CreateOptions{}, open)
	if err == nil || res.FailedStep != "upload" || !strings.Contains(err.Error(), "upload") {
		t.Fatalf("a failed upload: %+v %v", res, err)
	}
	if l, _ := tc.co.List(ctx); len(l.Snapshots) != 2 {
		t.Fatalf("after a failed upload: %+v", l.Snapshots)
	}
}

// counter reads one sample's value from the metrics text (-1: absent).
func counter(m, series string) float64 {
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestAgentPolicy: an agent's own policy runs on its schedule and on
// demand, and the metrics show the last run.
func TestAgentPolicy(t *testing.T) {
	tc := startCluster(t, 1)
	nd := tc.nodes[0]
	spec := "file://" + t.TempDir()
	nd.agent.cfg.Policy = &pipeline.Policy{Remote: spec, KeepLocal: &pipeline.Keep{Last: 5}}
	const ok, failed = `hotsnap_policy_runs_total{node="n1",result="ok"}`, `hotsnap_policy_runs_total{node="n1",result="failed"}`
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nd.agent.RunPolicyEvery(ctx, 50*time.Millisecond); close(done) }()
	// No upper bound: wait until a scheduled run has been counted.
	for counter(metricsText(t, nd), ok) < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if infos, _ := snapshot.List(context.Background(), nd.layout, nil); len(infos) == 0 {
		t.Fatal("the scheduled run took no snapshot")
	}
	// On demand: the metrics show this run.
	if _, err := nd.agent.RunPolicy(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := metricsText(t, nd)
	if counter(m, `hotsnap_policy_last_run_success{node="n1"}`) != 1 || counter(m, `hotsnap_policy_last_snapshot_bytes{node="n1"}`) <= 0 ||
		counter(m, `hotsnap_policy_last_run_timestamp_seconds{node="n1"}`) < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Fatalf("the last run is not in the metrics:\n%s", m)
	}
	// A run that fails (the remote is a file) is counted and shown.
	failedBefore := counter(m, failed)
	bad := filepath.Join(t.TempDir(), "file")
	os.WriteFile(bad, []byte("x"), 0o644)
	nd.agent.cfg.Policy = &pipeline.Policy{Remote: "file://" + bad}
	if _, err := nd.agent.RunPolicy(context.Background()); err == nil {
		t.Fatal("a policy with a bad remote succeeded")
	}
	m = metricsText(t, nd)
	if counter(m, `hotsnap_policy_last_run_success{node="n1"}`) != 0 || counter(m, failed) != failedBefore+1 {
		t.Fatalf("a failed run is not in the metrics:\n%s", m)
	}
}
