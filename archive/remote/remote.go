// Package remote opens an archive from a remote spec, as the CLI's
// --remote and an agent's job requests give it:
//
//	file:///abs/path      a directory
//	s3://bucket/prefix    S3 at Options.S3Endpoint with the AWS_* credentials
//	NAME:bucket/prefix    remote NAME of Options.ConfigFile (remotes.json)
//
// Backends are a small registry by scheme (backends.go): another one (sftp,
// or GCS and Azure through their S3 layers with settings of their own) is a
// file with a constructor and one Register call.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
)

// ErrBadRemote is returned for a remote spec that cannot be used: an
// unknown scheme, a relative path, a named remote's path leaving its root.
// A usage error.
var ErrBadRemote = errs.New(errs.Usage, "bad remote")

// Options complete a remote spec: the S3 endpoint and flags, the file of
// named remotes, and the archive's key.
type Options struct {
	S3Endpoint string // host:port, http://host:port or https://host:port (HOTSNAP_S3_ENDPOINT)
	S3Region   string
	S3Insecure bool // plain HTTP
	// IOTimeout bounds a remote call's wait for its next byte (0 means
	// defaults.IOTimeout); a named remote's io_timeout overrides it.
	IOTimeout  time.Duration
	ConfigFile string // remotes.json
	// AccessKey and SecretKey default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
	AccessKey, SecretKey string
	// Key is the archive key; nil for an unencrypted archive.
	Key *repo.Key
	// AsOf, when set, opens a read-only view of the remote as it was at
	// that time (store.Locking.AsOf: a versioned S3 bucket).
	AsOf time.Time
}

// Target is where a backend is to open a store, with its settings: from
// the spec and Options, or from a named remote's entry.
type Target struct {
	Spec                                   string // the whole spec, for messages
	Location                               string // what follows "scheme://"; for a named remote, its root joined with the rest
	Endpoint, Region, AccessKey, SecretKey string
	SessionToken                           string
	Insecure, AssumeRole, InstanceRole     bool
	IOTimeout                              time.Duration
	// Create asks for what the store needs to exist (an S3 bucket).
	Create bool
}

// Backend opens a store at a target.
type Backend func(ctx context.Context, t Target) (store.Store, error)

var (
	mu       sync.Mutex
	backends = map[string]Backend{}
)

// Register makes scheme (as in "scheme://...", and a named remote's
// "type") open stores with b.
func Register(scheme string, b Backend) {
	mu.Lock()
	defer mu.Unlock()
	backends[scheme] = b
}

func backend(scheme string) (Backend, bool) {
	mu.Lock()
	defer mu.Unlock()
	b, ok := backends[scheme]
	return b, ok
}

func schemes() string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for s := range backends {
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Open opens the archive a spec names; with init, an archive not yet
// initialised is initialised (and a missing bucket created).
func Open(ctx context.Context, spec string, o Options, init bool) (*archive.Repo, error) {
	st, err := Store(ctx, spec, o, init)
	if err != nil {
		return nil, err
	}
	if init {
		return archive.OpenOrInit(ctx, st, o.Key)
	}
	return archive.Open(ctx, st, o.Key)
}

// Store opens the store a spec names, wrapped in bounded retries. With
// create, what the store needs to exist is made (an S3 bucket).
func Store(ctx context.Context, spec string, o Options, create bool) (store.Store, error) {
	t, scheme, err := resolve(spec, o)
	if err != nil {
		return nil, err
	}
	t.Create = create
	b, ok := backend(scheme)
	if !ok {
		return nil, fmt.Errorf("%w: remote %q: unknown scheme %q; %s (schemes: %s)", ErrBadRemote, spec, scheme, want, schemes())
	}
	st, err := b(ctx, t)
	if err != nil {
		return nil, err
	}
	if !o.AsOf.IsZero() {
		lk, ok := st.(store.Locking)
		if !ok {
			return nil, fmt.Errorf("%w: remote %q keeps no versions: --as-of needs an S3 bucket with versioning", ErrBadRemote, spec)
		}
		if st, err = lk.AsOf(ctx, o.AsOf); err != nil {
			return nil, err
		}
	}
	return &store.Retry{Store: withFaults(st)}, nil
}

const want = "want file:///path, s3://bucket/prefix or NAME:bucket/prefix"

// resolve turns a spec into a target and a scheme.
func resolve(spec string, o Options) (Target, string, error) {
	if spec == "" {
		return Target{}, "", fmt.Errorf("%w: no remote given (--remote: %s)", ErrBadRemote, want)
	}
	if scheme, loc, ok := strings.Cut(spec, "://"); ok {
		// Credentials not given here come from the standard chain
		// (s3.Credentials: environment, shared file, roles).
		t := Target{Spec: spec, Location: loc, Endpoint: o.S3Endpoint, Region: o.S3Region, Insecure: o.S3Insecure,
			AccessKey: o.AccessKey, SecretKey: o.SecretKey, IOTimeout: o.IOTimeout}
		return t, scheme, nil
	}
	name, rest, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return Target{}, "", fmt.Errorf("%w: remote %q: %s", ErrBadRemote, spec, want)
	}
	if o.ConfigFile == "" {
		return Target{}, "", fmt.Errorf("%w: remote %q names %q: give the remotes file with --remote-config", ErrBadRemote, spec, name)
	}
	rc, err := named(o.ConfigFile, name)
	if err != nil {
		return Target{}, "", err
	}
	// What follows NAME: stays inside the named remote's root.
	if rest = strings.Trim(rest, "/"); rest != "" {
		if err := fsutil.ValidRelPath(rest); err != nil {
			return Target{}, "", fmt.Errorf("%w: remote %q: %v (the part after %s: must stay inside the remote's root)", ErrBadRemote, spec, err, name)
		}
	}
	t := Target{Spec: spec, Location: rest, Endpoint: rc.Endpoint, Region: rc.Region, Insecure: rc.Insecure,
		AccessKey: rc.AccessKeyID, SecretKey: rc.SecretAccessKey, SessionToken: rc.SessionToken,
		AssumeRole: rc.AssumeRole, InstanceRole: rc.InstanceRole, IOTimeout: o.IOTimeout}
	if rc.IOTimeout != "" {
		d, err := time.ParseDuration(rc.IOTimeout)
		if err != nil || d <= 0 {
			return Target{}, "", fmt.Errorf("%w: remote %q in %s: io_timeout %q: want a duration such as 30s", ErrBadRemote, name, o.ConfigFile, rc.IOTimeout)
		}
		t.IOTimeout = d
	}
	if rc.Path != "" {
		if !strings.HasPrefix(rc.Path, "/") {
			return Target{}, "", fmt.Errorf("%w: remote %q in %s: path must be absolute", ErrBadRemote, name, o.ConfigFile)
		}
		t.Location = path.Join(rc.Path, rest)
	}
	return t, rc.Type, nil
}

// Config is one named remote in a remotes.json file.
type Config struct {
	Type            string `json:"type"`     // a scheme: "s3" or "file"
	Endpoint        string `json:"endpoint"` // host:port, http://host:port or https://host:port
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token"` // with temporary credentials
	Region          string `json:"region"`
	Insecure        bool   `json:"insecure"`
	AssumeRole      bool   `json:"assume_role"`   // exchange the credentials at the endpoint's STS (MinIO AssumeRole)
	InstanceRole    bool   `json:"instance_role"` // let the chain ask the EC2 metadata service
	IOTimeout       string `json:"io_timeout"`    // a duration: a call's wait for its next byte
	Path            string `json:"path"`          // type file: the root directory
}

// named reads remote name from the remotes file, which holds credentials
// and is refused when others may read it.
func named(file, name string) (Config, error) {
	b, err := fsutil.ReadSecretFile(file, "remote config")
	if err != nil {
		return Config{}, err
	}
	// Strict: a misspelt key is an error naming it, never a setting
	// silently ignored (secret_acess_key would otherwise read as "no
	// credentials").
	var all map[string]Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&all); err != nil || dec.More() {
		if err == nil {
			err = fmt.Errorf("more than one JSON value")
		}
		return Config{}, fmt.Errorf("%w: remote config %s: %v", ErrBadRemote, file, err)
	}
	rc, ok := all[name]
	if !ok {
		return Config{}, fmt.Errorf("%w: remote %q is not in %s", ErrBadRemote, name, file)
	}
	if rc.Type == "" {
		return Config{}, fmt.Errorf("%w: remote %q in %s has no type (want one of %s)", ErrBadRemote, name, file, schemes())
	}
	return rc, nil
}
