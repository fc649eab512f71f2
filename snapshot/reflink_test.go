package snapshot

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/examples/bank"
	"github.com/hotsnap/hotsnap/hardlink"
	"github.com/hotsnap/hotsnap/internal/testutil/testxfs"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// TestBank_InPlaceReflinkXFS: on a real XFS with reflinks (a loop-mounted
// image), writers that rewrite account files in place need no --copy in
// reflink and auto modes: every file is cloned under the lock, so each
// snapshot sums to the total, still verifies after the writers went on
// rewriting the live files, and restores to a data dir that sums right.
func TestBank_InPlaceReflinkXFS(t *testing.T) {
	mnt := testxfs.Mount(t, 300<<20)
	for _, mode := range []string{hardlink.LinkModeReflink, hardlink.LinkModeAuto} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(mnt, mode)
			if err := bank.Init(dir, bankAccounts, bankBalance); err != nil {
				t.Fatal(err)
			}
			w := &bank.Writer{DataDir: dir, Accounts: bankAccounts, InPlace: true, Think: 300 * time.Microsecond}
			stop, err := w.Run(context.Background(), 6)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			for w.Transfers.Load() < 50 {
				time.Sleep(time.Millisecond)
			}
			l := newLayout(t, dir)
			q := &quiesce.Flock{DataDir: dir}
			defer q.Close()
			var ids []string
			for i := 0; i < 10; i++ {
				res, err := Create(context.Background(), l, CreateOptions{Quiescer: q, LinkMode: mode})
				if err != nil {
					t.Fatalf("create %d in %s mode with in-place writers: %v", i, mode, err)
				}
				if sum, n, err := bank.Sum(l.TreeDir(res.ID)); err != nil || n != bankAccounts || sum != bankTotal {
					t.Fatalf("snapshot %s: %d accounts sum to %d (err %v)", res.ID, n, sum, err)
				}
				ids = append(ids, res.ID)
			}
			before := w.Transfers.Load()
			for w.Transfers.Load() < before+200 {
				time.Sleep(time.Millisecond) // the writers rewrite the live files on
			}
			for _, id := range ids {
				if vr, err := Verify(context.Background(), l, id, VerifyOptions{}); err != nil || !vr.OK() {
					t.Fatalf("verify %s after more in-place writes: %v %v", id, err, vr.Problems)
				}
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := Restore(context.Background(), l, ids[len(ids)/2], RestoreOptions{Quiescer: q}); err != nil {
				t.Fatal(err)
			}
			if sum, n, err := bank.Sum(dir); err != nil || n != bankAccounts || sum != bankTotal {
				t.Fatalf("restored data dir: %d accounts sum to %d (err %v)", n, sum, err)
			}
		})
	}
}
