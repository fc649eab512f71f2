package snapshot

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/retention"
)

// du returns the byte count du -sB1 prints for the last of its arguments
// (du counts each inode once, at its first sighting across all arguments).
func du(t *testing.T, args ...string) int64 {
	t.Helper()
	out, err := exec.Command("du", append([]string{"-sB1", "--exclude=.hotsnap"}, args...)...).Output()
	if err != nil {
		t.Fatalf("du %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	n, _ := strconv.ParseInt(strings.Fields(lines[len(lines)-1])[0], 10, 64)
	return n
}

func writeRandom(t *testing.T, p string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
}

func TestUsage_MatchesDu(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	os.Mkdir(data, 0o755)
	testtree.Build(t, data, testtree.Fixture)
	writeRandom(t, filepath.Join(data, "big"), 3<<20)
	bk := filepath.Join(root, "bk")
	l, err := NewLayout(data, bk)
	if err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, l, CreateOptions{Label: "a", Copy: []string{"CURRENT"}})
	writeRandom(t, filepath.Join(data, "big"), 2<<20)  // a pins the old 3 MiB
	os.Remove(filepath.Join(data, "db", "000001.sst")) // a pins it
	b := mustCreate(t, l, CreateOptions{Label: "b"})
	writeRandom(t, filepath.Join(data, "big"), 1<<20)                     // b pins the 2 MiB version
	os.Link(filepath.Join(data, "a.txt"), filepath.Join(root, "outside")) // an external link

	u, err := Usage(context.Background(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := du(t, data); u.LiveBytes != want {
		t.Errorf("liveBytes %d, du says %d", u.LiveBytes, want)
	}
	byID := map[string]SnapshotUsage{}
	for _, s := range u.Snapshots {
		byID[s.ID] = s
	}
	if want := du(t, data, l.SnapshotDir(b.ID), l.SnapshotDir(a.ID)); byID[a.ID].ExclusiveBytes != want {
		t.Errorf("a exclusive %d, du says %d", byID[a.ID].ExclusiveBytes, want)
	}
	if want := du(t, data, l.SnapshotDir(a.ID), l.SnapshotDir(b.ID)); byID[b.ID].ExclusiveBytes != want {
		t.Errorf("b exclusive %d, du says %d", byID[b.ID].ExclusiveBytes, want)
	}
	if want := du(t, data, bk) - 4096; u.PinnedBytes != want {
		t.Errorf("pinnedBytes %d, du says %d (minus the backups dir's own block)", u.PinnedBytes, want)
	}
	if byID[a.ID].ExclusiveBytes < 3<<20 || byID[b.ID].ExclusiveBytes < 2<<20 {
		t.Errorf("replaced files must be pinned by their snapshots: %+v", u.Snapshots)
	}
	if u.Filesystem.FreeBytes == 0 || u.Filesystem.TotalBytes < u.Filesystem.FreeBytes {
		t.Errorf("filesystem: %+v", u.Filesystem)
	}
	// Deleting a alone frees what usage said.
	before := du(t, root)
	if err := Delete(context.Background(), l, a.ID, nil); err != nil {
		t.Fatal(err)
	}
	if freed := before - du(t, root); freed != byID[a.ID].ExclusiveBytes {
		t.Errorf("deleting a freed %d bytes, usage said %d", freed, byID[a.ID].ExclusiveBytes)
	}
}

func TestPrune(t *testing.T) {
	dir := testtree.New(t)
	l := newLayout(t, dir)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		at := start.Add(time.Duration(i) * 24 * time.Hour)
		mustCreate(t, l, CreateOptions{Now: func() time.Time { return at }})
	}
	now := start.Add(5 * 24 * time.Hour)
	res, err := Prune(context.Background(), l, retention.KeepPolicy{Last: 2}, true, now, nil)
	if err != nil || len(res.Remove) != 3 || len(res.Keep) != 2 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if infos, _ := List(context.Background(), l, nil); len(infos) != 5 {
		t.Fatal("dry run deleted snapshots")
	}
	if _, err := Prune(context.Background(), l, retention.KeepPolicy{}, false, now, nil); err == nil {
		t.Fatal("prune without rules must refuse")
	}
	res, err = Prune(context.Background(), l, retention.KeepPolicy{Last: 2}, false, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := List(context.Background(), l, nil)
	if len(infos) != 2 || infos[1].ID != res.Keep[0].ID {
		t.Fatalf("after prune: %+v", infos)
	}
	assertClean(t, l)
}
