package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotsnap/hotsnap/archive/store"
	fsstore "github.com/hotsnap/hotsnap/archive/store/fs"
	s3store "github.com/hotsnap/hotsnap/archive/store/s3"
	"github.com/hotsnap/hotsnap/fsutil"
)

// RemoteOptions complete a remote spec: S3 endpoint and flags, and the file
// of named remotes.
type RemoteOptions struct {
	S3Endpoint string // host:port (HOTSNAP_S3_ENDPOINT)
	S3Region   string
	S3Insecure bool   // plain HTTP
	ConfigFile string // remotes.json
	// AccessKey and SecretKey default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
	AccessKey, SecretKey string
}

// RemoteConfig is one named remote in a remotes.json file.
type RemoteConfig struct {
	Type            string `json:"type"` // "s3" or "file"
	Endpoint        string `json:"endpoint"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Region          string `json:"region"`
	Insecure        bool   `json:"insecure"`
	Path            string `json:"path"` // type file: the root directory
}

// Connect opens the store a remote spec names, wrapped in bounded retries:
//
//	file:///abs/path      a directory
//	s3://bucket/prefix    S3 at o.S3Endpoint with the AWS_* credentials
//	NAME:bucket/prefix    remote NAME of o.ConfigFile
//
// With create, a missing S3 bucket is created.
func Connect(ctx context.Context, spec string, o RemoteOptions, create bool) (store.Store, error) {
	var st store.Store
	switch {
	case spec == "":
		return nil, fmt.Errorf("%w: no remote given (--remote file:///path, s3://bucket/prefix or NAME:bucket/prefix)", ErrBadRemote)
	case strings.HasPrefix(spec, "file://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("%w: remote %q: want file:///absolute/path", ErrBadRemote, spec)
		}
		s, err := fsstore.New(u.Path)
		if err != nil {
			return nil, err
		}
		st = s
	case strings.HasPrefix(spec, "s3://"):
		bucket, prefix := splitBucket(strings.TrimPrefix(spec, "s3://"))
		ak, sk := o.AccessKey, o.SecretKey
		if ak == "" {
			ak = os.Getenv("AWS_ACCESS_KEY_ID")
		}
		if sk == "" {
			sk = os.Getenv("AWS_SECRET_ACCESS_KEY")
		}
		s, err := s3store.New(s3store.Config{Endpoint: o.S3Endpoint, Bucket: bucket, Prefix: prefix, Region: o.S3Region,
			AccessKey: ak, SecretKey: sk, Insecure: o.S3Insecure})
		if err != nil {
			return nil, err
		}
		if create {
			if err := s.EnsureBucket(ctx); err != nil {
				return nil, err
			}
		}
		st = s
	case strings.Contains(spec, "://"):
		return nil, fmt.Errorf("%w: remote %q: unknown scheme; want file:///path, s3://bucket/prefix or NAME:bucket/prefix", ErrBadRemote, spec)
	default:
		name, rest, ok := strings.Cut(spec, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: remote %q: want file:///path, s3://bucket/prefix or NAME:bucket/prefix", ErrBadRemote, spec)
		}
		if o.ConfigFile == "" {
			return nil, fmt.Errorf("%w: remote %q names %q: give the remotes file with --remote-config", ErrBadRemote, spec, name)
		}
		// It holds credentials: refused when others may read it.
		b, err := fsutil.ReadSecretFile(o.ConfigFile, "remote config")
		if err != nil {
			return nil, err
		}
		var all map[string]RemoteConfig
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, fmt.Errorf("%w: remote config %s: %v", ErrBadRemote, o.ConfigFile, err)
		}
		rc, ok := all[name]
		if !ok {
			return nil, fmt.Errorf("%w: remote %q is not in %s", ErrBadRemote, name, o.ConfigFile)
		}
		// What follows NAME: stays inside the named remote's root.
		if rest = strings.Trim(rest, "/"); rest != "" {
			if err := fsutil.ValidRelPath(rest); err != nil {
				return nil, fmt.Errorf("%w: remote %q: %v (the part after %s: must stay inside the remote's root)", ErrBadRemote, spec, err, name)
			}
		}
		switch rc.Type {
		case "s3":
			bucket, prefix := splitBucket(rest)
			s, err := s3store.New(s3store.Config{Endpoint: rc.Endpoint, Bucket: bucket, Prefix: prefix, Region: rc.Region,
				AccessKey: rc.AccessKeyID, SecretKey: rc.SecretAccessKey, Insecure: rc.Insecure})
			if err != nil {
				return nil, fmt.Errorf("remote %q: %w", name, err)
			}
			if create {
				if err := s.EnsureBucket(ctx); err != nil {
					return nil, err
				}
			}
			st = s
		case "file":
			if !filepath.IsAbs(rc.Path) {
				return nil, fmt.Errorf("%w: remote %q in %s: type file needs an absolute path", ErrBadRemote, name, o.ConfigFile)
			}
			s, err := fsstore.New(filepath.Join(rc.Path, rest))
			if err != nil {
				return nil, err
			}
			st = s
		default:
			return nil, fmt.Errorf("%w: remote %q in %s has type %q (want s3 or file)", ErrBadRemote, name, o.ConfigFile, rc.Type)
		}
	}
	return &store.Retry{Store: st}, nil
}

func splitBucket(s string) (bucket, prefix string) {
	bucket, prefix, _ = strings.Cut(strings.Trim(s, "/"), "/")
	return bucket, prefix
}
