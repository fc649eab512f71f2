// Package retention decides which snapshots a set of keep rules keeps
// (last N, within a duration, the newest per hour, day and ISO week), for
// local snapshots (snapshot.Prune) and archived ones (archive forget)
// alike. It only decides; callers delete.
package retention

import (
	"fmt"
	"sort"
	"time"

	"github.com/hotsnap/hotsnap/errs"
)

// KeepPolicy is a set of retention rules. A snapshot kept by any rule stays
// (the rules combine as a union); the newest snapshot always stays.
type KeepPolicy struct {
	Last    int           // the N newest
	Within  time.Duration // every snapshot newer than now - Within
	Hourly  int           // the newest of each of the last N hours that have snapshots
	Daily   int           // ... days (UTC)
	Weekly  int           // ... ISO weeks
	Monthly int           // ... months (UTC)
}

// Check refuses an empty policy (it would keep nothing) and negative counts.
func (p KeepPolicy) Check() error {
	if p.Last < 0 || p.Within < 0 || p.Hourly < 0 || p.Daily < 0 || p.Weekly < 0 || p.Monthly < 0 {
		return fmt.Errorf("%w: keep counts and durations must not be negative", errs.ErrInvalid)
	}
	if p == (KeepPolicy{}) {
		return fmt.Errorf("%w: no keep rule given (--keep-last, --keep-within, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly): refusing to remove every snapshot", errs.ErrInvalid)
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
	bucketRule("monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") })
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
