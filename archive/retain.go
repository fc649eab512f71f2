package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/internal/par"
)

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// RetentionReport says how an upload kept its snapshot's objects locked.
// The JSON form is the CLI's contract.
type RetentionReport struct {
	Mode string `json:"mode"`
	// ProtectedUntil is when the snapshot's protection ends: every object
	// it needs is retained at least until then.
	ProtectedUntil time.Time `json:"protectedUntil"`
	ReusedPacks    int       `json:"reusedPacks"` // packs of earlier uploads the snapshot needs
	Needed         int       `json:"needed"`      // objects of earlier uploads it needs (packs, index objects, config, keys)
	Extended       int       `json:"extended"`    // retention calls made
	// Short counts needed objects left ending before ProtectedUntil
	// because the credentials may not extend retention; Warning says so.
	Short   int    `json:"short"`
	Warning string `json:"warning,omitempty"`
}

// locking returns the store's object lock side, or an error when the
// archive has a lock the store cannot keep.
func (r *Repo) locking() (store.Locking, error) {
	lk, ok := store.Unwrap(r.Store()).(store.Locking)
	if !ok {
		return nil, fmt.Errorf("%w: the archive's config asks for an object lock, but %s cannot lock objects", repo.ErrCorrupt, r.Store())
	}
	return lk, nil
}

// retentions reads the retention of the current version of the objects
// under prefixes: from the listing where it carries them, else one call
// for each key that needed says matters (the others are left out).
func (r *Repo) retentions(ctx context.Context, lk store.Locking, needed func(key string) bool, prefixes ...string) (map[string]store.Retention, error) {
	ret := map[string]store.Retention{}
	var ask []string
	for _, p := range prefixes {
		err := lk.Retentions(ctx, p, func(k string, rt store.Retention, known bool) error {
			switch {
			case p == "config" && k != "config":
			case known:
				ret[k] = rt
			case needed(k):
				ask = append(ask, k)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read retention: %w", err)
		}
	}
	for _, k := range ask {
		rt, err := lk.Retention(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read retention: %w", err)
		}
		ret[k] = rt
	}
	return ret, nil
}

// lockedPrefixes are where the objects a snapshot needs live.
var lockedPrefixes = []string{"config", "keys/", "index/", "packs/", "snapshots/"}

// protect is an upload's retention step, before its snapshot object is
// written: every pack in packs, every index object, the config and the
// key files must be retained Days from now (an hour's margin covers the
// commit and clocks that differ); those that end sooner are extended to
// BucketDays from now, 8 calls at a time.
func (r *Repo) protect(ctx context.Context, packs map[repo.ID]struct{}, now time.Time) (*RetentionReport, error) {
	ol := r.Config().ObjectLock
	lk, err := r.locking()
	if err != nil {
		return nil, err
	}
	rep := &RetentionReport{Mode: ol.Mode, ProtectedUntil: now.Add(days(ol.Days)).UTC(), ReusedPacks: len(packs)}
	isNeeded := func(k string) bool {
		if k == "config" || strings.HasPrefix(k, "keys/") || strings.HasPrefix(k, "index/") {
			return true
		}
		id, err := repo.ParseID(k[strings.LastIndexByte(k, '/')+1:])
		_, used := packs[id]
		return err == nil && used && repo.PackKey(id) == k
	}
	ret, err := r.retentions(ctx, lk, isNeeded, "config", "keys/", "index/", "packs/")
	if err != nil {
		return nil, err
	}
	var needed []string
	for id := range packs {
		needed = append(needed, repo.PackKey(id))
	}
	for k := range ret {
		if k == "config" || strings.HasPrefix(k, "keys/") || strings.HasPrefix(k, "index/") {
			needed = append(needed, k)
		}
	}
	rep.Needed = len(needed)
	need := rep.ProtectedUntil.Add(time.Hour)
	var short []string
	for _, k := range needed {
		if ret[k].Until.Before(need) {
			short = append(short, k)
		}
	}
	sort.Strings(short)
	target := store.Retention{Mode: strings.ToUpper(ol.Mode), Until: now.Add(days(ol.BucketDays())).UTC()}
	done, err := extendAll(ctx, lk, short, func(string) store.Retention { return target })
	rep.Extended = len(done)
	if errors.Is(err, store.ErrDenied) {
		rep.Short = len(short) - len(done)
		rep.Warning = fmt.Sprintf("%d objects this snapshot needs are retained for less than its %d days (these credentials may not extend retention: %v); "+
			"run `hotsnap archive check --repair-retention` with an operator's credentials", rep.Short, ol.Days, err)
		return rep, nil
	}
	return rep, err
}

// extendAll extends the retention of keys, 8 at a time (par.ForEach: the
// first error stops the rest), each to until(k), and returns those it
// extended.
func extendAll(ctx context.Context, lk store.Locking, keys []string, until func(string) store.Retention) (map[string]bool, error) {
	var mu sync.Mutex
	done := map[string]bool{}
	err := par.ForEach(ctx, len(keys), 8, func(ctx context.Context, i int) error {
		k := keys[i]
		if err := store.Do(ctx, lk, "extend retention of", k, func() error { return lk.Extend(ctx, k, until(k)) }); err != nil {
			return err
		}
		mu.Lock()
		done[k] = true
		mu.Unlock()
		return nil
	})
	return done, err
}

// RetentionCheck is what check found of the archive's object lock. The
// JSON form is the CLI's contract.
type RetentionCheck struct {
	Mode string `json:"mode"`
	Days int    `json:"days"`
	// Checked counts the objects whose retention was compared with what
	// the snapshots needing them promise (upload time + Days).
	Checked int `json:"checked"`
	// Short counts those retained for less; Repaired how many of them
	// --repair-retention extended.
	Short    int `json:"short"`
	Repaired int `json:"repaired"`
	// NewestProtectedUntil is the latest promise: the newest snapshot's
	// upload time + Days. ShortestUntil is the earliest retention among the
	// objects that promise needs.
	NewestProtectedUntil time.Time `json:"newestProtectedUntil"`
	ShortestUntil        time.Time `json:"shortestUntil"`
}

// retentionNeeds is what check gathers for the retention check: for each
// object, the latest time a snapshot needing it is promised protection.
type retentionNeeds struct {
	need   map[string]time.Time
	newest time.Time
}

func (n *retentionNeeds) add(key string, until time.Time) {
	if until.After(n.need[key]) {
		n.need[key] = until
	}
}

// checkRetention compares every needed object's retention with its need,
// reports those short in add, and with repair extends them to it.
func (r *Repo) checkRetention(ctx context.Context, n *retentionNeeds, repair bool, add func(string, ...any)) (*RetentionCheck, error) {
	ol := r.Config().ObjectLock
	lk, err := r.locking()
	if err != nil {
		return nil, err
	}
	ret, err := r.retentions(ctx, lk, func(k string) bool { _, ok := n.need[k]; return ok }, lockedPrefixes...)
	if err != nil {
		return nil, err
	}
	rc := &RetentionCheck{Mode: ol.Mode, Days: ol.Days, NewestProtectedUntil: n.newest}
	var short []string
	for k, need := range n.need {
		rc.Checked++
		until := ret[k].Until
		if rc.ShortestUntil.IsZero() || until.Before(rc.ShortestUntil) {
			rc.ShortestUntil = until
		}
		if until.Before(need) {
			short = append(short, k)
		}
	}
	sort.Strings(short)
	rc.Short = len(short)
	if repair {
		mode := strings.ToUpper(ol.Mode)
		var done map[string]bool
		done, err = extendAll(ctx, lk, short, func(k string) store.Retention { return store.Retention{Mode: mode, Until: n.need[k]} })
		if err != nil {
			add("repair retention: %v", err)
		}
		rc.Repaired = len(done)
		short = slices.DeleteFunc(short, func(k string) bool { return done[k] })
	}
	for _, k := range short {
		add("%s is retained until %s, before %s (the protection of a snapshot that needs it): run archive check --repair-retention",
			k, fmtTime(ret[k].Until), fmtTime(n.need[k]))
	}
	return rc, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never (no retention)"
	}
	return t.UTC().Format(time.RFC3339)
}

// lockedPlan changes a gc plan for an archive with an object lock:
// nothing is repacked or merged (the old packs would stay, retained,
// beside the new ones), and an unused pack is deleted only once its
// retention has passed; until then it is kept and counted in res.
func (r *Repo) lockedPlan(ctx context.Context, plan *gcPlan, stored map[repo.ID]int64, blobsOf map[repo.ID][]repo.BlobRef, res *GCResult) error {
	lk, err := r.locking()
	if err != nil {
		return err
	}
	deadKeys := map[string]bool{}
	for _, id := range plan.dead {
		deadKeys[repo.PackKey(id)] = true
	}
	ret, err := r.retentions(ctx, lk, func(k string) bool { return deadKeys[k] }, "packs/")
	if err != nil {
		return err
	}
	for _, id := range append(plan.mixed, plan.small...) {
		plan.kept = append(plan.kept, repo.PackEntry{ID: id, Size: stored[id], Blobs: blobsOf[id]})
	}
	plan.mixed, plan.small, plan.moves = nil, nil, nil
	now := time.Now()
	var dead []repo.ID
	for _, id := range plan.dead {
		t := ret[repo.PackKey(id)].Until
		if !t.After(now) {
			dead = append(dead, id)
			continue
		}
		res.RetainedPacks++
		res.RetainedBytes += stored[id]
		if res.RetainedUntil == nil || t.After(*res.RetainedUntil) {
			t := t.UTC()
			res.RetainedUntil = &t
		}
		if blobsOf[id] != nil {
			plan.kept = append(plan.kept, repo.PackEntry{ID: id, Size: stored[id], Blobs: blobsOf[id]})
		}
	}
	plan.dead = dead
	return nil
}

// purgeVersions removes for good the old versions (not the current ones)
// whose retention has passed, and the delete markers of keys left with no
// version: with versioning a delete only hides an object, and this is
// where the space comes back. A version still retained is kept and
// counted.
func (r *Repo) purgeVersions(ctx context.Context, res *GCResult) error {
	lk, err := r.locking()
	if err != nil {
		return err
	}
	byKey := map[string][]store.Version{}
	err = store.Do(ctx, lk, "list versions", "", func() error {
		clear(byKey)
		return lk.Versions(ctx, "", func(v store.Version) error { byKey[v.Key] = append(byKey[v.Key], v); return nil })
	})
	if err != nil {
		return err
	}
	for key, vs := range byKey {
		left := 0
		for _, v := range vs {
			if v.DeleteMarker || v.Latest {
				if !v.DeleteMarker {
					left++
				}
				continue
			}
			err := store.Do(ctx, lk, "delete version", key, func() error { return lk.DeleteVersion(ctx, key, v.VersionID) })
			switch {
			case errors.Is(err, store.ErrRetained):
				res.VersionsRetained++
				left++
			case err != nil:
				return err
			default:
				res.VersionsRemoved++
			}
		}
		if left > 0 {
			continue
		}
		for _, v := range vs {
			if v.DeleteMarker {
				if err := store.Do(ctx, lk, "delete marker", key, func() error { return lk.DeleteVersion(ctx, key, v.VersionID) }); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
