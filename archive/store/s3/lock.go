package s3

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/hotsnap/hotsnap/archive/store"
)

// Object Lock: a bucket made with object locking keeps every version of
// every object, and a version under retention can be neither deleted nor
// overwritten until its date (store.Locking).

var _ store.Locking = (*Store)(nil)

// LockConfig reads the bucket's object lock and versioning settings.
func (s *Store) LockConfig(ctx context.Context) (store.LockConfig, error) {
	var lc store.LockConfig
	err := store.Do(ctx, s, "object lock config", s.cfg.Bucket, func() error {
		ctx, _, done := s.watched(ctx)
		defer done()
		lc = store.LockConfig{}
		v, err := s.c.GetBucketVersioning(ctx, s.cfg.Bucket)
		if err != nil {
			return s.fail(ctx, "get versioning of", s.cfg.Bucket, err)
		}
		lc.Versioning = v.Enabled()
		enabled, mode, validity, unit, err := s.c.GetObjectLockConfig(ctx, s.cfg.Bucket)
		if err != nil {
			if r := minio.ToErrorResponse(err); r.Code == "ObjectLockConfigurationNotFoundError" {
				return nil
			}
			return s.fail(ctx, "get object lock config of", s.cfg.Bucket, err)
		}
		lc.Enabled = enabled == "Enabled"
		if mode != nil && validity != nil && unit != nil {
			lc.Mode, lc.Days = mode.String(), int(*validity)
			if *unit == minio.Years {
				lc.Days *= 365
			}
		}
		return nil
	})
	return lc, err
}

// EnsureLocked makes the bucket with object locking when it is missing,
// refuses one without it, and sets the default retention.
func (s *Store) EnsureLocked(ctx context.Context, mode string, days int) error {
	m := minio.RetentionMode(strings.ToUpper(mode))
	if !m.IsValid() || days <= 0 {
		return fmt.Errorf("object lock: mode %q, %d days: want governance or compliance, at least 1 day", mode, days)
	}
	err := store.Do(ctx, s, "bucket", s.cfg.Bucket, func() error { return s.ensureBucket(ctx, true) })
	if err != nil {
		return err
	}
	lc, err := s.LockConfig(ctx)
	if err != nil {
		return err
	}
	if !lc.Enabled || !lc.Versioning {
		return fmt.Errorf("bucket %s has no object locking (locking %v, versioning %v): S3 turns it on when a bucket is made; "+
			"give a new bucket name (hotsnap makes it with object locking), or make one yourself (`mc mb --with-lock`, "+
			"`aws s3api create-bucket --object-lock-enabled-for-bucket`)", s.cfg.Bucket, lc.Enabled, lc.Versioning)
	}
	if strings.EqualFold(lc.Mode, string(m)) && lc.Days >= days {
		return nil
	}
	if lc.Mode == string(minio.Compliance) && m == minio.Governance {
		return fmt.Errorf("bucket %s already retains new objects in compliance mode for %d days; it cannot be weakened to governance", s.cfg.Bucket, lc.Days)
	}
	v, unit := uint(days), minio.Days
	return store.Do(ctx, s, "set object lock config of", s.cfg.Bucket, func() error {
		ctx, _, done := s.watched(ctx)
		defer done()
		return s.fail(ctx, "set object lock config of", s.cfg.Bucket, s.c.SetObjectLockConfig(ctx, s.cfg.Bucket, &m, &v, &unit))
	})
}

// Retentions lists the current versions under prefix with their locks,
// which MinIO's listing carries (its metadata extension) and AWS's does
// not (known false).
func (s *Store) Retentions(ctx context.Context, prefix string, fn func(key string, r store.Retention, known bool) error) error {
	type item struct {
		key string
		r   store.Retention
		ask bool
	}
	var items []item
	err := store.Do(ctx, s, "list", prefix, func() error {
		items = items[:0]
		ctx, w, done := s.watched(ctx)
		defer done()
		for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true, WithMetadata: true}) {
			if o.Err != nil {
				return s.fail(ctx, "list", prefix, o.Err)
			}
			w.kick()
			it := item{key: strings.TrimPrefix(o.Key, s.prefix), ask: o.UserMetadata == nil || s.cfg.noListRetention}
			for k, v := range o.UserMetadata { // the case of the names varies by MinIO version
				switch strings.ToLower(k) {
				case "x-amz-object-lock-retain-until-date":
					it.r.Until, _ = time.Parse(time.RFC3339, v)
				case "x-amz-object-lock-mode":
					it.r.Mode = v
				}
			}
			items = append(items, it)
		}
		if context.Cause(ctx) == errStall {
			return s.fail(ctx, "list", prefix, ctx.Err())
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := fn(it.key, it.r, !it.ask); err != nil {
			return err
		}
	}
	return nil
}

// Retention reads the lock of key's current version.
func (s *Store) Retention(ctx context.Context, key string) (store.Retention, error) {
	return s.retention(ctx, key, "")
}

// retention asks for one version's lock (the current one: versionID "").
func (s *Store) retention(ctx context.Context, key, versionID string) (store.Retention, error) {
	k, err := s.key(key)
	if err != nil {
		return store.Retention{}, err
	}
	var r store.Retention
	err = store.Do(ctx, s, "get retention of", key, func() error {
		ctx, _, done := s.watched(ctx)
		defer done()
		mode, until, err := s.c.GetObjectRetention(ctx, s.cfg.Bucket, k, versionID)
		if err != nil {
			if c := minio.ToErrorResponse(err).Code; c == "NoSuchObjectLockConfiguration" || c == "ObjectLockConfigurationNotFoundError" {
				r = store.Retention{}
				return nil
			}
			return s.fail(ctx, "get retention of", key, err)
		}
		if mode != nil && until != nil {
			r = store.Retention{Mode: mode.String(), Until: *until}
		}
		return nil
	})
	return r, err
}

// Extend lengthens the lock of key's current version.
func (s *Store) Extend(ctx context.Context, key string, r store.Retention) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	m := minio.RetentionMode(strings.ToUpper(r.Mode))
	until := r.Until.UTC()
	ctx, _, done := s.watched(ctx)
	defer done()
	return s.fail(ctx, "extend retention of", key, s.c.PutObjectRetention(ctx, s.cfg.Bucket, k, minio.PutObjectRetentionOptions{Mode: &m, RetainUntilDate: &until}))
}

// Versions lists every version and delete marker under prefix.
func (s *Store) Versions(ctx context.Context, prefix string, fn func(store.Version) error) error {
	ctx, w, done := s.watched(ctx)
	defer done()
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			return s.fail(ctx, "list versions", prefix, o.Err)
		}
		w.kick()
		v := store.Version{Key: strings.TrimPrefix(o.Key, s.prefix), VersionID: o.VersionID, Size: o.Size,
			ModTime: o.LastModified, Latest: o.IsLatest, DeleteMarker: o.IsDeleteMarker}
		if err := fn(v); err != nil {
			return err
		}
	}
	if context.Cause(ctx) == errStall {
		return s.fail(ctx, "list versions", prefix, ctx.Err())
	}
	return ctx.Err()
}

// DeleteVersion removes one version (or delete marker) for good.
func (s *Store) DeleteVersion(ctx context.Context, key, versionID string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if versionID == "" {
		return fmt.Errorf("delete version of %s: no version id", key)
	}
	ctx, _, done := s.watched(ctx)
	defer done()
	err = s.c.RemoveObject(ctx, s.cfg.Bucket, k, minio.RemoveObjectOptions{VersionID: versionID})
	return s.fail(ctx, "delete version "+versionID+" of", key, err)
}

// AsOf lists every version once and serves, for each key, the version
// that was current at t.
func (s *Store) AsOf(ctx context.Context, t time.Time) (store.Store, error) {
	if t.IsZero() || t.After(time.Now().Add(time.Minute)) {
		return nil, fmt.Errorf("as of %s: want a time in the past", t.Format(time.RFC3339))
	}
	var all []store.Version
	err := store.Do(ctx, s, "list versions", "", func() error {
		all = all[:0]
		return s.Versions(ctx, "", func(v store.Version) error {
			if !v.ModTime.After(t) {
				all = append(all, v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Newest first within a key; a key's newest version at t wins.
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Key != all[j].Key {
			return all[i].Key < all[j].Key
		}
		return all[i].ModTime.After(all[j].ModTime)
	})
	a := &asOf{s: s, t: t, at: map[string]store.Version{}}
	for _, v := range all {
		if _, seen := a.at[v.Key]; seen {
			continue
		}
		a.at[v.Key] = v
	}
	for k, v := range a.at {
		if v.DeleteMarker {
			delete(a.at, k)
		} else {
			a.keys = append(a.keys, k)
		}
	}
	sort.Strings(a.keys)
	return a, nil
}

// asOf is the read-only view AsOf returns.
type asOf struct {
	s    *Store
	t    time.Time
	at   map[string]store.Version
	keys []string
}

var _ store.Store = (*asOf)(nil)

func (a *asOf) ReadOnly() bool { return true }

func (a *asOf) String() string {
	return fmt.Sprintf("%s as of %s", a.s, a.t.UTC().Format(time.RFC3339))
}

func (a *asOf) version(key string) (string, error) {
	v, ok := a.at[key]
	if !ok {
		return "", fmt.Errorf("%s (as of %s): %w", key, a.t.UTC().Format(time.RFC3339), store.ErrNotFound)
	}
	return v.VersionID, nil
}

func (a *asOf) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	id, err := a.version(key)
	if err != nil {
		return nil, err
	}
	return a.s.get(ctx, key, max, minio.GetObjectOptions{VersionID: id})
}

func (a *asOf) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	id, err := a.version(key)
	if err != nil {
		return nil, err
	}
	return a.s.getRange(ctx, key, off, n, minio.GetObjectOptions{VersionID: id})
}

func (a *asOf) Stat(_ context.Context, key string) (store.Info, error) {
	if _, err := a.version(key); err != nil {
		return store.Info{}, err
	}
	v := a.at[key]
	return store.Info{Key: key, Size: v.Size, ModTime: v.ModTime}, nil
}

func (a *asOf) List(_ context.Context, prefix string, fn func(store.Info) error) error {
	i := sort.SearchStrings(a.keys, prefix)
	for ; i < len(a.keys) && strings.HasPrefix(a.keys[i], prefix); i++ {
		v := a.at[a.keys[i]]
		if err := fn(store.Info{Key: v.Key, Size: v.Size, ModTime: v.ModTime}); err != nil {
			return err
		}
	}
	return nil
}

func (a *asOf) Put(context.Context, string, []byte) error {
	return fmt.Errorf("%s: %w", a, store.ErrReadOnly)
}

func (a *asOf) Delete(context.Context, string) error {
	return fmt.Errorf("%s: %w", a, store.ErrReadOnly)
}
