package s3

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
)

// TestLocking runs the object lock side of the store against a real
// MinIO: a bucket without locking is refused; one is made with it; new
// objects get the default retention, read from the listing and (as on AWS,
// whose listings carry none) one call at a time; a lock is lengthened,
// never shortened; a locked version cannot be deleted, a plain delete only
// hides it; a view as of a time reads what was current then and writes
// nothing.
func TestLocking(t *testing.T) {
	m := testserver.StartMinIO(t)
	ctx := context.Background()
	open := func(bucket string, listing bool) *Store {
		s, err := New(Config{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "p", Insecure: true,
			AccessKey: testserver.MinIOUser, SecretKey: testserver.MinIOPassword, noListRetention: !listing})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain := open("plain", true)
	if err := plain.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := plain.EnsureLocked(ctx, "compliance", 2); err == nil {
		t.Fatal("a bucket without object locking was accepted")
	}
	s := open("locked", true)
	if err := s.EnsureLocked(ctx, "governance", 3); err != nil {
		t.Fatal(err)
	}
	if lc, err := s.LockConfig(ctx); err != nil || !lc.Enabled || !lc.Versioning || lc.Mode != "GOVERNANCE" || lc.Days != 3 {
		t.Fatalf("lock config %+v %v", lc, err)
	}
	if err := s.Put(ctx, "k", []byte("one")); err != nil {
		t.Fatal(err)
	}
	v1 := time.Now()
	time.Sleep(10 * time.Millisecond) // the next version is strictly later
	for _, listing := range []bool{true, false} {
		st := open("locked", listing)
		var got store.Retention
		err := st.Retentions(ctx, "", func(k string, r store.Retention, known bool) error {
			if known != listing {
				t.Fatalf("known %v with listing %v", known, listing)
			}
			if !known {
				var err error
				r, err = st.Retention(ctx, k)
				if err != nil {
					return err
				}
			}
			got = r
			return nil
		})
		if err != nil || got.Mode != "GOVERNANCE" || got.Until.Before(time.Now().Add(71*time.Hour)) {
			t.Fatalf("retention (listing %v): %+v %v", listing, got, err)
		}
	}
	until := time.Now().Add(10 * 24 * time.Hour)
	if err := s.Extend(ctx, "k", store.Retention{Mode: "GOVERNANCE", Until: until}); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, "k", store.Retention{Mode: "GOVERNANCE", Until: time.Now().Add(time.Hour)}); !errors.Is(err, store.ErrRetained) {
		t.Fatalf("shortening a lock: %v", err)
	}
	if err := s.Put(ctx, "k", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k", 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a delete: %v", err)
	}
	var versions []store.Version
	if err := s.Versions(ctx, "", func(v store.Version) error { versions = append(versions, v); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 3 {
		t.Fatalf("versions: %+v", versions)
	}
	for _, v := range versions {
		if !v.DeleteMarker {
			if err := s.DeleteVersion(ctx, "k", v.VersionID); !errors.Is(err, store.ErrRetained) {
				t.Fatalf("delete of a locked version: %v", err)
			}
		}
	}
	past, err := s.AsOf(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := past.Get(ctx, "k", 10); err != nil || string(b) != "one" {
		t.Fatalf("as of the first version: %q %v", b, err)
	}
	if b, err := past.GetRange(ctx, "k", 1, 2); err != nil || string(b) != "ne" {
		t.Fatalf("range as of the first version: %q %v", b, err)
	}
	if err := past.Put(ctx, "k", []byte("x")); !errors.Is(err, store.ErrReadOnly) || !store.IsReadOnly(past) {
		t.Fatalf("a write to a view of the past: %v", err)
	}
	now, err := s.AsOf(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := now.Stat(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("as of now, after the delete: %v", err)
	}
}
