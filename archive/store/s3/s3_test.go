package s3

import (
	"context"
	"strings"
	"testing"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/archive/store/storetest"
	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
)

// TestConformance runs the store suite against a real MinIO server.
func TestConformance(t *testing.T) {
	m := testserver.StartMinIO(t)
	s, err := New(Config{Endpoint: m.Endpoint, Bucket: "conformance", Prefix: "repo/a", Insecure: true,
		AccessKey: testserver.MinIOUser, SecretKey: testserver.MinIOPassword})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s)
}

// TestPermanentErrorsAreNotRetried: a bad bucket name or bad credentials
// fail at once: one request, not the retry budget.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	m := testserver.StartMinIO(t)
	if _, err := New(Config{Endpoint: m.Endpoint, Bucket: "ab", Insecure: true, AccessKey: "k", SecretKey: "s"}); err == nil {
		t.Fatal("a 2-character bucket name was accepted")
	}
	wrong, _ := New(Config{Endpoint: m.Endpoint, Bucket: "okbucket", Insecure: true, AccessKey: testserver.MinIOUser, SecretKey: "wrong-secret"})
	c := &counting{Store: wrong}
	r := &store.Retry{Store: c}
	if _, err := r.Get(context.Background(), "config", 1<<20); err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong credentials: %v", err)
	}
	if c.gets != 1 {
		t.Fatalf("a permanent error was tried %d times", c.gets)
	}
}

// counting counts the requests that reach the store.
type counting struct {
	store.Store
	gets int
}

func (c *counting) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	c.gets++
	return c.Store.Get(ctx, key, max)
}
