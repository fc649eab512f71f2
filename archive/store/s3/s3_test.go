package s3

import (
	"context"
	"testing"

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
