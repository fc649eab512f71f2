// Package s3 is the archive store on S3-compatible object storage (MinIO,
// AWS S3) through minio-go: one object per key under bucket/prefix.
// Credentials are kept out of String and of every error it returns.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/defaults"
)

// Config says where the bucket is and how to reach it.
type Config struct {
	// Endpoint is host:port, or a URL: http://host:port (plain HTTP) or
	// https://host:port.
	Endpoint string
	Bucket   string
	Prefix   string // may be empty; no leading or trailing slash
	Region   string
	// AccessKey, SecretKey and SessionToken, when given, are used as they
	// are; otherwise the standard chain finds credentials (Credentials).
	AccessKey, SecretKey, SessionToken string
	// AssumeRole exchanges the credentials for temporary ones at the
	// endpoint's STS (MinIO's AssumeRole) before use.
	AssumeRole bool
	// InstanceRole lets the chain ask the EC2 instance metadata service,
	// which it never probes unless asked.
	InstanceRole bool
	Insecure     bool // plain HTTP
	// IOTimeout bounds every call's wait for the next byte (a response's
	// headers, a body's next read or write): a call that moves nothing
	// for this long is cancelled and fails with store.ErrStalled, which
	// store.Retry retries. 0 means defaults.IOTimeout.
	IOTimeout time.Duration
	// noListRetention ignores the retention a listing carries, as on AWS
	// S3, whose listings carry none (tests of that path against MinIO).
	noListRetention bool
}

// Store is a bucket (and prefix) on an S3-compatible service.
type Store struct {
	c      *minio.Client
	cfg    Config
	prefix string // "" or "prefix/"
}

var _ store.Store = (*Store)(nil)

// New connects (lazily: no request is sent until the first call, except
// to a credential service the chain needs).
func New(cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("s3 remote: no endpoint (--s3-endpoint or HOTSNAP_S3_ENDPOINT)")
	}
	if scheme, host, ok := strings.Cut(cfg.Endpoint, "://"); ok {
		switch scheme {
		case "http":
			cfg.Insecure = true
		case "https":
			cfg.Insecure = false
		default:
			return nil, fmt.Errorf("s3 remote: endpoint %q: want host:port, http://host:port or https://host:port", cfg.Endpoint)
		}
		cfg.Endpoint = strings.TrimSuffix(host, "/")
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("s3 remote: no bucket")
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 remote: bucket %q: %v", cfg.Bucket, err)
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = defaults.IOTimeout
	}
	tr := transport(cfg.IOTimeout)
	creds, err := Credentials(cfg, tr)
	if err != nil {
		return nil, err
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     creds,
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: tr,
		// One try per call: store.Retry is the only retry policy, so
		// minio-go's backoff is not stacked under ours.
		MaxRetries: 1,
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

// transport bounds the connection's phases: the dial, the TLS handshake
// and the wait for a response's headers; the bodies are bounded by the
// calls' own watchdog (IOTimeout between two reads or writes).
func transport(io time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: defaults.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   defaults.ConnectTimeout,
		ResponseHeaderTimeout: io,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

func (s *Store) String() string {
	scheme := "https"
	if s.cfg.Insecure {
		scheme = "http"
	}
	return fmt.Sprintf("s3://%s/%s (%s://%s)", s.cfg.Bucket, strings.TrimSuffix(s.prefix, "/"), scheme, s.cfg.Endpoint)
}

// EnsureBucket creates the bucket when it does not exist, under the one
// retry policy of every call (store.Retry).
func (s *Store) EnsureBucket(ctx context.Context) error {
	return store.Do(ctx, s, "bucket", s.cfg.Bucket, func() error { return s.ensureBucket(ctx, false) })
}

// ensureBucket makes the bucket when it does not exist, with object
// locking when locking is set.
func (s *Store) ensureBucket(ctx context.Context, locking bool) error {
	ctx, _, done := s.watched(ctx)
	defer done()
	ok, err := s.c.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return s.fail(ctx, "bucket", s.cfg.Bucket, err)
	}
	if ok {
		return nil
	}
	err = s.c.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region, ObjectLocking: locking})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return s.fail(ctx, "create bucket", s.cfg.Bucket, err)
	}
	return nil
}

// errStall is the cause a call's watchdog cancels it with.
var errStall = errors.New("stalled")

// watch is a call's watchdog: it cancels the call's context when no byte
// has moved for the I/O timeout. kick says a byte moved.
type watch struct {
	t *time.Timer
	d time.Duration
}

func (w *watch) kick() { w.t.Reset(w.d) }

// watched returns ctx under a watchdog of the store's I/O timeout, and
// the function that ends it.
func (s *Store) watched(ctx context.Context) (context.Context, *watch, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watch{d: s.cfg.IOTimeout}
	w.t = time.AfterFunc(w.d, func() { cancel(errStall) })
	return ctx, w, func() { w.t.Stop(); cancel(nil) }
}

// kickReader kicks a watchdog at every read that moved bytes.
type kickReader struct {
	r io.Reader
	w *watch
}

func (k kickReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if n > 0 {
		k.w.kick()
	}
	return n, err
}

// fail is wrap for a call made under a watchdog: a call it cancelled is
// store.ErrStalled, saying for how long nothing moved.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	if context.Cause(ctx) == errStall {
		return fmt.Errorf("%s %s on %s: %w: no byte moved for %s (--io-timeout)", op, key, s, store.ErrStalled, s.cfg.IOTimeout)
	}
	return s.wrap(op, key, err)
}

// wrap maps minio errors: missing keys to store.ErrNotFound, an endpoint
// that cannot be reached to store.ErrUnavailable, the rest with the
// operation and key (minio-go's messages carry no secrets).
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		// The transport's own bounds (dial, TLS handshake, response
		// headers): the endpoint does not answer.
		return fmt.Errorf("%s %s on %s: %w: no byte moved for %s (--io-timeout; connect %s): %v", op, key, s, store.ErrStalled, s.cfg.IOTimeout, defaults.ConnectTimeout, err)
	case errors.As(err, &oe):
		return fmt.Errorf("%s %s on %s: %w: %v", op, key, s, store.ErrUnavailable, err)
	}
	r := minio.ToErrorResponse(err)
	if r.Code == "NoSuchKey" || r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket" {
		return fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	switch {
	case r.Code == "ObjectLocked" || strings.Contains(r.Message, "WORM"):
		return store.Permanent(fmt.Errorf("%s %s on %s: %w: %v", op, key, s, store.ErrRetained, err))
	case r.Code == "NoSuchBucket":
		return store.Permanent(fmt.Errorf("%s %s on %s: bucket %s does not exist (archive init or upload makes it)", op, key, s, s.cfg.Bucket))
	case r.Code == "AccessDenied":
		return store.Permanent(fmt.Errorf("%s %s on %s: %w: %v", op, key, s, store.ErrDenied, err))
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
	return s.get(ctx, key, max, minio.GetObjectOptions{})
}

// get is Get of one version (opts.VersionID) or the current one.
func (s *Store) get(ctx context.Context, key string, max int64, opts minio.GetObjectOptions) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	ctx, w, done := s.watched(ctx)
	defer done()
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, k, opts)
	if err != nil {
		return nil, s.fail(ctx, "get", key, err)
	}
	defer o.Close()
	// The size the response announces is checked before reading, and the
	// read is bounded whatever it said.
	info, err := o.Stat()
	if err != nil {
		return nil, s.fail(ctx, "get", key, err)
	}
	if info.Size > max {
		return nil, fmt.Errorf("%s is %d bytes, more than %d: %w", key, info.Size, max, store.ErrTooLarge)
	}
	b := make([]byte, 0, max64(info.Size, 0)+1)
	b, err = readAtMost(b, kickReader{o, w}, max)
	if err != nil {
		if errors.Is(err, store.ErrTooLarge) {
			return nil, fmt.Errorf("%s: more than %d bytes: %w", key, max, err)
		}
		return nil, s.fail(ctx, "get", key, err)
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
	return s.getRange(ctx, key, off, n, minio.GetObjectOptions{})
}

// getRange is GetRange of one version (opts.VersionID) or the current one.
func (s *Store) getRange(ctx context.Context, key string, off, n int64, opts minio.GetObjectOptions) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return []byte{}, nil
	}
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	ctx, w, done := s.watched(ctx)
	defer done()
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, k, opts)
	if err != nil {
		return nil, s.fail(ctx, "get", key, err)
	}
	defer o.Close()
	// The size is known: one allocation, no regrowing (ranges are MiBs).
	b := make([]byte, n)
	got, err := io.ReadFull(kickReader{o, w}, b)
	if context.Cause(ctx) == errStall {
		return nil, s.fail(ctx, "get", key, err)
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return nil, fmt.Errorf("read %s [%d, +%d): got %d bytes (past the end of the object?)", key, off, n, got)
	}
	if err != nil {
		return nil, s.fail(ctx, "get", key, err)
	}
	return b, nil
}

func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return store.Info{}, err
	}
	ctx, _, done := s.watched(ctx)
	defer done()
	info, err := s.c.StatObject(ctx, s.cfg.Bucket, k, minio.StatObjectOptions{})
	if err != nil {
		return store.Info{}, s.fail(ctx, "stat", key, err)
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
	ctx, w, done := s.watched(ctx)
	defer done()
	_, err = s.c.PutObject(ctx, s.cfg.Bucket, k, kickReader{bytes.NewReader(data), w}, int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true})
	return s.fail(ctx, "put", key, err)
}

func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	ctx, _, done := s.watched(ctx)
	defer done()
	err = s.c.RemoveObject(ctx, s.cfg.Bucket, k, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	return s.fail(ctx, "delete", key, err)
}

func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	ctx, w, done := s.watched(ctx)
	defer done() // also stops the listing goroutine if fn fails
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return s.fail(ctx, "list", prefix, o.Err)
		}
		w.kick()
		if err := fn(store.Info{Key: strings.TrimPrefix(o.Key, s.prefix), Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	if context.Cause(ctx) == errStall {
		return s.fail(ctx, "list", prefix, ctx.Err())
	}
	return ctx.Err()
}
