package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotsnap/hotsnap/retention"
)

// PruneResult reports a prune. The JSON form is the CLI's contract.
type PruneResult struct {
	DryRun bool                 `json:"dryRun"`
	Keep   []retention.Decision `json:"keep"`
	Remove []retention.Decision `json:"remove"`
	// FailsafesDropped are the failsafes prune --failsafe-older-than
	// dropped (or would drop).
	FailsafesDropped []FailsafeInfo `json:"failsafesDropped"`
}

// Prune deletes the local snapshots the policy does not keep (none with
// dryRun). Snapshots whose manifest cannot be read are kept: nothing is
// deleted on a guess.
func Prune(ctx context.Context, l *Layout, p retention.KeepPolicy, dryRun bool, now time.Time, log *slog.Logger) (*PruneResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	infos, err := List(ctx, l, log)
	if err != nil {
		return nil, err
	}
	var items []retention.Dated
	res := &PruneResult{DryRun: dryRun, Keep: []retention.Decision{}, Remove: []retention.Decision{}}
	for _, i := range infos {
		if i.Error != "" {
			res.Keep = append(res.Keep, retention.Decision{ID: i.ID, Reasons: []string{"unreadable manifest: " + i.Error}})
			continue
		}
		items = append(items, retention.Dated{ID: i.ID, CreatedAt: i.CreatedAt})
	}
	keep, remove := p.Apply(items, now)
	res.Keep = append(keep, res.Keep...)
	if remove != nil {
		res.Remove = remove
	}
	if dryRun {
		return res, nil
	}
	for _, d := range remove {
		if err := Delete(ctx, l, d.ID, log); err != nil {
			return res, fmt.Errorf("prune: delete %s: %w", d.ID, err)
		}
	}
	return res, nil
}

// PruneFailsafes drops the failsafes of restores older than age at now
// and returns them; with dryRun it drops nothing and returns those it
// would drop.
func PruneFailsafes(ctx context.Context, l *Layout, age time.Duration, dryRun bool, now time.Time, log *slog.Logger) ([]FailsafeInfo, error) {
	old := func(fi FailsafeInfo) bool { return !fi.CreatedAt.IsZero() && now.Sub(fi.CreatedAt) > age }
	if !dryRun {
		return DropFailsafes(ctx, l, old, log)
	}
	all, err := Failsafes(ctx, l, log)
	if err != nil {
		return nil, err
	}
	out := []FailsafeInfo{}
	for _, fi := range all {
		if old(fi) {
			out = append(out, fi)
		}
	}
	return out, nil
}
