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
