// Package s3 is the archive store on S3-compatible object storage (MinIO,
// AWS S3) through minio-go: one object per key under bucket/prefix.
// Credentials are kept out of String and of every error it returns.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/hotsnap/hotsnap/archive/store"
)

// Config says where the bucket is and how to reach it.
type Config struct {
	Endpoint  string // host:port, no scheme
	Bucket    string
	Prefix    string // may be empty; no leading or trailing slash
	Region    string
	AccessKey string
	SecretKey string
	Insecure  bool // plain HTTP
}

// Store is a bucket (and prefix) on an S3-compatible service.
type Store struct {
	c      *minio.Client
	cfg    Config
	prefix string // "" or "prefix/"
}

var _ store.Store = (*Store)(nil)

// New connects (lazily: no request is sent until the first call).
func New(cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("s3 remote: no endpoint (--s3-endpoint or HOTSNAP_S3_ENDPOINT)")
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("s3 remote: no bucket")
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 remote: bucket %q: %v", cfg.Bucket, err)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, fmt.Errorf("s3 remote: no credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the remote config file)")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 remote %s: %v", cfg.Endpoint, err)
	}
	p := strings.Trim(cfg.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return &Store{c: c, cfg: cfg, prefix: p}, nil
}

func (s *Store) String() string {
	scheme := "https"
	if s.cfg.Insecure {
		scheme = "http"
	}
	return fmt.Sprintf("s3://%s/%s (%s://%s)", s.cfg.Bucket, strings.TrimSuffix(s.prefix, "/"), scheme, s.cfg.Endpoint)
}

// EnsureBucket creates the bucket when it does not exist. Like every other
// call (through store.Retry), it is retried on transient errors: 5 tries,
// backoff from 200ms doubling.
func (s *Store) EnsureBucket(ctx context.Context) error {
	var err error
	backoff := 200 * time.Millisecond
	for i := 0; i < 5; i++ {
		if err = s.ensureBucket(ctx); err == nil || ctx.Err() != nil || store.IsPermanent(err) {
			return err
		}
		if i < 4 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff *= 2
		}
	}
	return err
}

func (s *Store) ensureBucket(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return s.wrap("bucket", s.cfg.Bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.c.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region}); err != nil {
		if r := minio.ToErrorResponse(err); r.Code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return s.wrap("create bucket", s.cfg.Bucket, err)
	}
	return nil
}

// wrap maps minio errors: missing keys to store.ErrNotFound, the rest with
// the operation and key (minio-go's messages carry no secrets).
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	if r.Code == "NoSuchKey" || r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket" {
		return fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	err = fmt.Errorf("%s %s on %s: %v", op, key, s, err)
	switch r.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed:
		return store.Permanent(err) // retrying cannot fix credentials or names
	}
	return err
}

func (s *Store) key(k string) (string, error) {
	if err := store.ValidKey(k); err != nil {
		return "", err
	}
	return s.prefix + k, nil
}

func (s *Store) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	defer o.Close()
	// The size the response announces is checked before reading, and the
	// read is bounded whatever it said.
	info, err := o.Stat()
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	if info.Size > max {
		return nil, fmt.Errorf("%s is %d bytes, more than %d: %w", key, info.Size, max, store.ErrTooLarge)
	}
	b := make([]byte, 0, max64(info.Size, 0)+1)
	b, err = readAtMost(b, o, max)
	if err != nil {
		if errors.Is(err, store.ErrTooLarge) {
			return nil, fmt.Errorf("%s: more than %d bytes: %w", key, max, err)
		}
		return nil, s.wrap("get", key, err)
	}
	return b, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// readAtMost reads r to its end into b, refusing more than max bytes.
func readAtMost(b []byte, r io.Reader, max int64) ([]byte, error) {
	for {
		if int64(len(b)) > max {
			return nil, store.ErrTooLarge
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), int(max)+1)])
		b = b[:len(b)+n]
		if err == io.EOF {
			if int64(len(b)) > max {
				return nil, store.ErrTooLarge
			}
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return []byte{}, nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, k, opts)
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	defer o.Close()
	// The size is known: one allocation, no regrowing (ranges are MiBs).
	b := make([]byte, n)
	got, err := io.ReadFull(o, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return nil, fmt.Errorf("read %s [%d, +%d): got %d bytes (past the end of the object?)", key, off, n, got)
	}
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return b, nil
}

func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return store.Info{}, err
	}
	info, err := s.c.StatObject(ctx, s.cfg.Bucket, k, minio.StatObjectOptions{})
	if err != nil {
		return store.Info{}, s.wrap("stat", key, err)
	}
	return store.Info{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	// One PUT (no multipart): S3 makes a single PUT visible whole or not at
	// all. No SHA-256 of the payload for the signature: over plain HTTP
	// minio-go would hash every byte, and every object hotsnap writes checks
	// itself (packs and indexes are named by their BLAKE3, manifests are
	// sealed), which download and check verify.
	_, err = s.c.PutObject(ctx, s.cfg.Bucket, k, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true})
	return s.wrap("put", key, err)
}

func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	err = s.c.RemoveObject(ctx, s.cfg.Bucket, k, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	return s.wrap("delete", key, err)
}

func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn fails
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return s.wrap("list", prefix, o.Err)
		}
		if err := fn(store.Info{Key: strings.TrimPrefix(o.Key, s.prefix), Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}
