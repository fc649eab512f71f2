package s3

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/archive/store/storetest"
	"github.com/hotsnap/hotsnap/internal/testserver"
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
// fail at once, not after the retry budget.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	m := testserver.StartMinIO(t)
	if _, err := New(Config{Endpoint: m.Endpoint, Bucket: "ab", Insecure: true, AccessKey: "k", SecretKey: "s"}); err == nil {
		t.Fatal("a 2-character bucket name was accepted")
	}
	start := time.Now()
	wrong, _ := New(Config{Endpoint: m.Endpoint, Bucket: "okbucket", Insecure: true, AccessKey: testserver.MinIOUser, SecretKey: "wrong-secret"})
	r := &store.Retry{Store: wrong}
	if _, err := r.Get(context.Background(), "config"); err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong credentials: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("permanent errors took %s: they were retried", el)
	}
}
