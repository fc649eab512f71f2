// Package store defines where an archive's objects live: a flat namespace
// of slash-separated keys holding immutable byte strings. Backends are its
// subpackages (fs for a plain directory, s3 for S3-compatible services); one
// conformance suite (storetest) runs against all of them.
//
// It knows nothing of packs, chunks or manifests; package archive does.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/errs"
)

// ErrNotFound is returned by Get, GetRange and Stat for a missing key.
var ErrNotFound = errors.New("object not found")

// ErrTooLarge is returned by Get for an object larger than the caller's
// bound: what a remote serves is never read unbounded.
var ErrTooLarge = errs.New(errs.VerifyFailed, "object is larger than it may be")

// Info describes a stored object. ModTime is the store's own clock (S3's
// LastModified, a file's mtime), so that ages are measured without trusting
// any one host's clock against another's.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a backend: a flat namespace of immutable-looking objects. An
// implementation is one file of a package under archive/store and one line
// in archive/remote's registry.
type Store interface {
	// Get returns the whole object, or ErrNotFound. An object of more than
	// max bytes is refused with ErrTooLarge, having read at most max+1.
	Get(ctx context.Context, key string, max int64) ([]byte, error)
	// GetRange returns length bytes from offset, or ErrNotFound. Reading past
	// the end is an error.
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Stat describes the object, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every key starting with prefix, in no set order.
	// It stops at fn's first error and returns it.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Put stores data under key. A reader sees the whole object or none of
	// it, never a part; putting an existing key replaces it.
	Put(ctx context.Context, key string, data []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages, without credentials.
	String() string
}

// ValidKey refuses keys that are empty, absolute, or not clean slash paths.
func ValidKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("bad object key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("bad object key %q", key)
		}
	}
	return nil
}

// ErrRetained is returned for a delete or an overwrite of an object
// version that an object lock still protects.
var ErrRetained = errors.New("object is retained (object lock)")

// ErrDenied is returned for a call the credentials may not make (S3's
// AccessDenied): a command with an uploader's write-only credentials gets
// it for what only an operator may do.
var ErrDenied = errors.New("access denied")

// ErrReadOnly is returned by a read-only view (Locking.AsOf) for a write.
var ErrReadOnly = errs.New(errs.Usage, "the remote is opened read-only (--as-of)")

// Retention is the lock on one object version: until Until, nobody may
// delete or overwrite that version (in governance mode, nobody without
// the bypass permission). A zero Until means none.
type Retention struct {
	Mode  string // GOVERNANCE or COMPLIANCE
	Until time.Time
}

// Version is one stored version of a key, or a delete marker.
type Version struct {
	Key, VersionID string
	Size           int64
	ModTime        time.Time
	Latest         bool
	DeleteMarker   bool
}

// LockConfig is a bucket's object lock setting.
type LockConfig struct {
	Enabled    bool   // object locking is on (it can only be turned on when the bucket is made)
	Versioning bool   // versioning is on (object locking needs it)
	Mode       string // the default retention's mode, "" when none
	Days       int    // the default retention's period
}

// Locking is a store that keeps every version of its objects and can lock
// them (S3 Object Lock). Archives with an object lock need it.
type Locking interface {
	Store
	// LockConfig reads the bucket's setting.
	LockConfig(ctx context.Context) (LockConfig, error)
	// EnsureLocked makes the bucket, with object locking, when it does not
	// exist, and sets its default retention (mode, days) unless it already
	// has that mode for at least as many days. A bucket without object
	// locking is refused.
	EnsureLocked(ctx context.Context, mode string, days int) error
	// Retentions calls fn for the current version of every key under
	// prefix, with its retention (zero when it has none) when the listing
	// carries it (MinIO's does); known is false when it does not (AWS S3):
	// ask Retention for the keys that matter.
	Retentions(ctx context.Context, prefix string, fn func(key string, r Retention, known bool) error) error
	// Retention reads the retention of key's current version.
	Retention(ctx context.Context, key string) (Retention, error)
	// Extend sets the retention of key's current version to r; a lock can
	// only be lengthened (a shorter one fails with ErrRetained).
	Extend(ctx context.Context, key string, r Retention) error
	// Versions calls fn for every version and delete marker under prefix.
	Versions(ctx context.Context, prefix string, fn func(Version) error) error
	// DeleteVersion removes one version for good: ErrRetained while its
	// lock holds.
	DeleteVersion(ctx context.Context, key, versionID string) error
	// AsOf is a read-only view of the store as it was at t: for each key
	// the newest version written at or before t, unless that is a delete
	// marker. Writes fail with ErrReadOnly.
	AsOf(ctx context.Context, t time.Time) (Store, error)
}

// ReadOnly is a store that refuses every write (an AsOf view).
type ReadOnly interface {
	ReadOnly() bool
}

// IsReadOnly reports whether st (below any wrappers) refuses writes.
func IsReadOnly(st Store) bool {
	ro, ok := Unwrap(st).(ReadOnly)
	return ok && ro.ReadOnly()
}
