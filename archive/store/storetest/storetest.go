// Package storetest is the conformance suite every store backend passes.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/hotsnap/hotsnap/archive/store"
)

// Run checks the Store contract on s, which must be empty.
func Run(t *testing.T, s store.Store) {
	ctx := context.Background()
	t.Run("GetMissing", func(t *testing.T) {
		if _, err := s.Get(ctx, "nope/x"); !errors.Is(err, store.ErrNotFound) {
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
		got, err := s.Get(ctx, "packs/ab/abcdef")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get: %v (%d bytes)", err, len(got))
		}
		if n, err := s.Stat(ctx, "packs/ab/abcdef"); err != nil || n != int64(len(data)) {
			t.Fatalf("Stat: %d %v", n, err)
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
		if got, _ := s.Get(ctx, "config"); string(got) != "two" {
			t.Fatalf("overwrite: %q", got)
		}
	})
	t.Run("EmptyObject", func(t *testing.T) {
		if err := s.Put(ctx, "index/empty", []byte{}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "index/empty"); err != nil || len(got) != 0 {
			t.Fatalf("empty object: %v %d", err, len(got))
		}
	})
	t.Run("List", func(t *testing.T) {
		s.Put(ctx, "packs/cd/cdef", []byte("x"))
		s.Put(ctx, "packsX", []byte("not under packs/"))
		var keys []string
		if err := s.List(ctx, "packs/", func(k string, n int64) error { keys = append(keys, k); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		if len(keys) != 2 || keys[0] != "packs/ab/abcdef" || keys[1] != "packs/cd/cdef" {
			t.Fatalf("List packs/: %v", keys)
		}
		stop := errors.New("stop")
		if err := s.List(ctx, "", func(string, int64) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("List must return fn's error: %v", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if err := s.Delete(ctx, "packs/cd/cdef"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "packs/cd/cdef"); !errors.Is(err, store.ErrNotFound) {
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
