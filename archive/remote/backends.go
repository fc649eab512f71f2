package remote

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	s3store "github.com/hotsnap/hotsnap/archive/store/s3"
)

func init() {
	Register("file", openFile)
	Register("s3", openS3)
}

// openFile opens a directory: file:///abs/path, or a named remote's root.
func openFile(_ context.Context, t Target) (store.Store, error) {
	u, err := url.Parse("file://" + t.Location)
	if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("%w: remote %q: want file:///absolute/path", ErrBadRemote, t.Spec)
	}
	return fsstore.New(u.Path)
}

// openS3 opens bucket/prefix at the target's endpoint (MinIO or any S3).
func openS3(ctx context.Context, t Target) (store.Store, error) {
	bucket, prefix, _ := strings.Cut(strings.Trim(t.Location, "/"), "/")
	s, err := s3store.New(s3store.Config{Endpoint: t.Endpoint, Bucket: bucket, Prefix: prefix, Region: t.Region,
		AccessKey: t.AccessKey, SecretKey: t.SecretKey, SessionToken: t.SessionToken, Insecure: t.Insecure,
		AssumeRole: t.AssumeRole, InstanceRole: t.InstanceRole, IOTimeout: t.IOTimeout})
	if err != nil {
		return nil, fmt.Errorf("%w: remote %q: %v", ErrBadRemote, t.Spec, err)
	}
	if t.Create {
		if err := s.EnsureBucket(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}
