// Package storetest is the conformance suite every store backend passes.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
)

// Run checks the Store contract on s, which must be empty.
func Run(t *testing.T, s store.Store) {
	ctx := context.Background()
	t.Run("GetMissing", func(t *testing.T) {
		if _, err := s.Get(ctx, "nope/x", 1<<20); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of a missing key: %v", err)
		}
		if _, err := s.Stat(ctx, "nope/x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat of a missing key: %v", err)
		}
		if _, err := s.GetRange(ctx, "nope/x", 0, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetRange of a missing key: %v", err)
		}
	})
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	t.Run("PutGetStat", func(t *testing.T) {
		if err := s.Put(ctx, "packs/ab/abcdef", data); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "packs/ab/abcdef", int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get: %v (%d bytes)", err, len(got))
		}
		if _, err := s.Get(ctx, "packs/ab/abcdef", int64(len(data))-1); !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("Get of an object larger than its bound: %v", err)
		}
		i, err := s.Stat(ctx, "packs/ab/abcdef")
		if err != nil || i.Size != int64(len(data)) || i.Key != "packs/ab/abcdef" {
			t.Fatalf("Stat: %+v %v", i, err)
		}
		if d := time.Since(i.ModTime); d < -time.Hour || d > time.Hour {
			t.Fatalf("Stat: modification time %v is not the store's now", i.ModTime)
		}
	})
	t.Run("GetRange", func(t *testing.T) {
		got, err := s.GetRange(ctx, "packs/ab/abcdef", 12345, 1000)
		if err != nil || !bytes.Equal(got, data[12345:13345]) {
			t.Fatalf("GetRange: %v", err)
		}
		if _, err := s.GetRange(ctx, "packs/ab/abcdef", int64(len(data))-10, 100); err == nil {
			t.Fatal("GetRange past the end must fail")
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		s.Put(ctx, "config", []byte("one"))
		s.Put(ctx, "config", []byte("two"))
		if got, _ := s.Get(ctx, "config", 100); string(got) != "two" {
			t.Fatalf("overwrite: %q", got)
		}
	})
	t.Run("EmptyObject", func(t *testing.T) {
		if err := s.Put(ctx, "index/empty", []byte{}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "index/empty", 0); err != nil || len(got) != 0 {
			t.Fatalf("empty object: %v %d", err, len(got))
		}
	})
	t.Run("List", func(t *testing.T) {
		s.Put(ctx, "packs/cd/cdef", []byte("x"))
		s.Put(ctx, "packsX", []byte("not under packs/"))
		var keys []string
		if err := s.List(ctx, "packs/", func(i store.Info) error {
			if i.ModTime.IsZero() {
				t.Errorf("List: %s has no modification time", i.Key)
			}
			keys = append(keys, i.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		if len(keys) != 2 || keys[0] != "packs/ab/abcdef" || keys[1] != "packs/cd/cdef" {
			t.Fatalf("List packs/: %v", keys)
		}
		stop := errors.New("stop")
		if err := s.List(ctx, "", func(store.Info) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("List must return fn's error: %v", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if err := s.Delete(ctx, "packs/cd/cdef"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "packs/cd/cdef", 10); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted key still readable: %v", err)
		}
		if err := s.Delete(ctx, "packs/cd/cdef"); err != nil {
			t.Fatalf("Delete of a missing key must succeed: %v", err)
		}
	})
	t.Run("BadKeys", func(t *testing.T) {
		for _, k := range []string{"", "/abs", "a/../b", "a//b", "a/"} {
			if err := s.Put(ctx, k, []byte("x")); err == nil {
				t.Errorf("Put accepted bad key %q", k)
			}
		}
	})
}
