package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// KeepPolicy is a set of retention rules. A snapshot kept by any rule stays
// (the rules combine as a union); the newest snapshot always stays.
type KeepPolicy struct {
	Last   int           // the N newest
	Within time.Duration // every snapshot newer than now - Within
	Hourly int           // the newest of each of the last N hours that have snapshots
	Daily  int           // ... days (UTC)
	Weekly int           // ... ISO weeks
}

// Check refuses an empty policy (it would keep nothing) and negative counts.
func (p KeepPolicy) Check() error {
	if p.Last < 0 || p.Within < 0 || p.Hourly < 0 || p.Daily < 0 || p.Weekly < 0 {
		return fmt.Errorf("%w: keep counts and durations must not be negative", ErrInvalid)
	}
	if p == (KeepPolicy{}) {
		return fmt.Errorf("%w: no keep rule given (--keep-last, --keep-within, --keep-hourly, --keep-daily, --keep-weekly): refusing to remove every snapshot", ErrInvalid)
	}
	return nil
}

// Dated is anything retention applies to: an id and a creation time.
type Dated struct {
	ID        string
	CreatedAt time.Time
}

// Decision says why a snapshot is kept (no reasons: it goes).
type Decision struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
	Reasons   []string  `json:"reasons"`
}

// Apply decides which items to keep at time now. Items may come in any
// order; decisions come newest first.
func (p KeepPolicy) Apply(items []Dated, now time.Time) (keep, remove []Decision) {
	sorted := append([]Dated(nil), items...)
	sort.Slice(sorted, func(i, j int) bool {
		if !sorted[i].CreatedAt.Equal(sorted[j].CreatedAt) {
			return sorted[i].CreatedAt.After(sorted[j].CreatedAt)
		}
		return sorted[i].ID > sorted[j].ID
	})
	reasons := make([][]string, len(sorted))
	bucketRule := func(name string, n int, bucket func(time.Time) string) {
		seen := map[string]bool{}
		for i, s := range sorted {
			if len(seen) >= n {
				return
			}
			b := bucket(s.CreatedAt.UTC())
			if !seen[b] {
				seen[b] = true
				reasons[i] = append(reasons[i], fmt.Sprintf("%s %s", name, b))
			}
		}
	}
	for i, s := range sorted {
		if i < p.Last {
			reasons[i] = append(reasons[i], fmt.Sprintf("last %d", p.Last))
		}
		if p.Within > 0 && !s.CreatedAt.Before(now.Add(-p.Within)) {
			reasons[i] = append(reasons[i], "within "+p.Within.String())
		}
	}
	bucketRule("hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") })
	bucketRule("daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") })
	bucketRule("weekly", p.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) })
	if len(sorted) > 0 && len(reasons[0]) == 0 {
		reasons[0] = []string{"newest"}
	}
	for i, s := range sorted {
		d := Decision{ID: s.ID, CreatedAt: s.CreatedAt, Reasons: reasons[i]}
		if len(reasons[i]) > 0 {
			keep = append(keep, d)
		} else {
			d.Reasons = []string{}
			remove = append(remove, d)
		}
	}
	return keep, remove
}

// PruneResult reports a prune. The JSON form is the CLI's contract.
type PruneResult struct {
	DryRun bool       `json:"dryRun"`
	Keep   []Decision `json:"keep"`
	Remove []Decision `json:"remove"`
}

// Prune deletes the local snapshots the policy does not keep (none with
// dryRun). Snapshots whose manifest cannot be read are kept: nothing is
// deleted on a guess.
func Prune(ctx context.Context, l *Layout, p KeepPolicy, dryRun bool, now time.Time, log *slog.Logger) (*PruneResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	infos, err := List(ctx, l, log)
	if err != nil {
		return nil, err
	}
	var items []Dated
	res := &PruneResult{DryRun: dryRun, Keep: []Decision{}, Remove: []Decision{}}
	for _, i := range infos {
		if i.Error != "" {
			res.Keep = append(res.Keep, Decision{ID: i.ID, Reasons: []string{"unreadable manifest: " + i.Error}})
			continue
		}
		items = append(items, Dated{ID: i.ID, CreatedAt: i.CreatedAt})
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
