package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/errs"
)

// FormatVersion is the repository format this package reads and writes.
const FormatVersion = 2

// Chunker parameters: content-defined, 512 KiB to 4 MiB, average 2 MiB
// (borg's average; restic's is about 1.5 MiB). Each chunk is compressed
// alone and starts cold: an average of 1 MiB made text archives 0.7 %
// larger (docs/DESIGN.md, Compression).
const (
	DefaultMinChunk = 512 << 10
	DefaultAvgChunk = 2 << 20
	DefaultMaxChunk = 4 << 20
	DefaultPackSize = 16 << 20 // packs of about 16 MiB keep the object count low
)

var (
	// ErrNotInitialised is returned by Open when the remote holds no config.
	ErrNotInitialised = errors.New("archive is not initialised")
	// ErrAlreadyInitialised is returned by Init when a config exists.
	ErrAlreadyInitialised = errs.New(errs.Conflict, "archive is already initialised")
	// ErrCorrupt is returned when an object of the archive fails its checks.
	ErrCorrupt = errs.New(errs.VerifyFailed, "archive data is corrupt")
	// ErrNotIndexed marks a chunk no index holds (with ErrCorrupt).
	ErrNotIndexed = errors.New("no index holds")
	// ErrNotFound is returned for a snapshot the archive does not hold.
	ErrNotFound = errs.New(errs.NotFound, "not in the archive")
	// ErrFormat is returned by Open for an archive of another format
	// version than this hotsnap reads.
	ErrFormat = errs.New(errs.Incompatible, "archive format not supported")
)

// Config is the repository's `config` object. In an encrypted archive only
// Format, ID and Encryption are in the clear; the rest is in Sealed.
type Config struct {
	Format      int             `json:"format"`
	ID          string          `json:"id"`
	Encryption  *EncryptionInfo `json:"encryption,omitempty"`
	Sealed      string          `json:"sealed,omitempty"` // base64(nonce || AEAD(JSON of the fields below))
	Chunker     ChunkerParams   `json:"Chunker"`
	Compression string          `json:"compression,omitempty"`
	PackSize    int             `json:"packSize,omitempty"`
	// ObjectLock, when set, says every object is retained (S3 Object
	// Lock) and what an upload must extend (archive/retain.go).
	ObjectLock *ObjectLock `json:"objectLock,omitempty"`
}

// EncryptionInfo is the clear part of an encrypted archive's config.
type EncryptionInfo struct {
	Algorithm string `json:"algorithm"`
	// KeyID is the data key's id: the first key file's own id in archives
	// of hotsnap 0.2, whose first key file is the data key (Wrapped unset).
	KeyID string `json:"keyId"`
	// Wrapped: the data key is random, and only key files wrapping it
	// (keys/<id>) open the archive (archive/keys.go).
	Wrapped bool `json:"wrapped,omitempty"`
}

// encryptedConfig is the whole stored form of an encrypted config: nothing
// else is in the clear, and it is parsed strictly, so a flipped byte anywhere
// in it is caught (a name, a value, the sealed part).
type encryptedConfig struct {
	Format     int             `json:"format"`
	ID         string          `json:"id"`
	Encryption *EncryptionInfo `json:"encryption"`
	Sealed     string          `json:"sealed"`
}

// sealedConfig is what an encrypted config seals.
type sealedConfig struct {
	ID          string        `json:"id"` // bound to the clear header
	Chunker     ChunkerParams `json:"Chunker"`
	Compression string        `json:"compression"`
	PackSize    int           `json:"packSize"`
	ObjectLock  *ObjectLock   `json:"objectLock,omitempty"`
}

// ChunkerParams fix the chunk boundaries of a repository: the same data
// always cuts the same way in it, which is what makes dedup work.
type ChunkerParams struct {
	Min  int    `json:"min"`
	Avg  int    `json:"avg"`
	Max  int    `json:"max"`
	Seed string `json:"seed"` // hex; derives the gear table
}

func (c *Config) check() error {
	ch := c.Chunker
	switch {
	case c.Format != FormatVersion:
		return fmt.Errorf("%w: format %d (this hotsnap reads %d)", ErrCorrupt, c.Format, FormatVersion)
	case ch.Min < 64 || ch.Avg < ch.Min || ch.Max < ch.Avg || ch.Max > 64<<20 || ch.Avg&(ch.Avg-1) != 0:
		return fmt.Errorf("%w: bad Chunker parameters %+v", ErrCorrupt, ch)
	case c.Compression != "zstd":
		return fmt.Errorf("%w: unknown compression %q", ErrCorrupt, c.Compression)
	case c.PackSize < 1<<20 || c.PackSize > 1<<30:
		return fmt.Errorf("%w: bad pack size %d", ErrCorrupt, c.PackSize)
	}
	if b, err := hex.DecodeString(ch.Seed); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: bad Chunker seed", ErrCorrupt)
	}
	if c.ObjectLock != nil {
		if err := c.ObjectLock.check(); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return nil
}

// Repo is an open repository.
type Repo struct {
	st   store.Store
	cfg  Config
	gear [256]uint64
	enc  *crypter // nil: unencrypted
	dek  Key      // the data key (encrypted archives)
	raw  []byte   // the config object as read or written
}

// KeyID is the archive key's id, or "" when the archive is not encrypted.
func (r *Repo) KeyID() string {
	if r.enc == nil {
		return ""
	}
	return r.enc.keyID
}

// Store returns the repository's store.
func (r *Repo) Store() store.Store { return r.st }

// WithStore is r on another store holding the same archive (a store
// wrapped to inject faults, or with other credentials).
func (r *Repo) WithStore(st store.Store) *Repo {
	c := *r
	c.st = st
	return &c
}

// Config returns the repository's configuration.
func (r *Repo) Config() Config { return r.cfg }

func newRepo(st store.Store, cfg Config, enc *crypter) *Repo {
	r := &Repo{st: st, cfg: cfg, enc: enc}
	seed, _ := hex.DecodeString(cfg.Chunker.Seed)
	x := blake3.New()
	x.Write([]byte("hotsnap gear table"))
	x.Write(seed)
	var buf [256 * 8]byte
	x.Digest().Read(buf[:])
	for i := range r.gear {
		r.gear[i] = binary.LittleEndian.Uint64(buf[i*8:])
	}
	return r
}

// InitOptions tune Init.
type InitOptions struct {
	// PackSize is the target pack size; 0 means DefaultPackSize (16 MiB).
	// Smaller packs (at least 1 MiB) make more objects.
	PackSize int
	// Key, when set, encrypts the archive: every object but the config's
	// clear header is sealed, chunk ids are keyed. The data key is random;
	// Key wraps it (archive/keys.go).
	Key *Key
	// ObjectLock, when set, needs a store with object locking
	// (store.Locking): the bucket is made with it, or must have it, and
	// retains every new object ObjectLock.BucketDays().
	ObjectLock *ObjectLock
	// directKey makes Key the data key itself, as hotsnap 0.2 did (tests).
	directKey bool
}

// Init writes a new config to an empty remote.
func Init(ctx context.Context, st store.Store, o InitOptions) (*Repo, error) {
	// A locked archive's bucket first: it is made with object locking.
	var lock *ObjectLock
	if o.ObjectLock != nil {
		ol := *o.ObjectLock
		ol.Mode = strings.ToLower(ol.Mode)
		if ol.ExtendDays == 0 {
			ol.ExtendDays = max(1, (ol.Days+3)/4)
		}
		if err := ol.check(); err != nil {
			return nil, fmt.Errorf("%w: %v", errs.ErrInvalid, err)
		}
		lk, ok := store.Unwrap(st).(store.Locking)
		if !ok {
			return nil, fmt.Errorf("%w: %s cannot lock objects: an archive with an object lock needs an S3 remote whose bucket has object locking", errs.ErrInvalid, st)
		}
		if err := lk.EnsureLocked(ctx, ol.Mode, ol.BucketDays()); err != nil {
			return nil, err
		}
		lock = &ol
	}
	if _, err := st.Stat(ctx, "config"); err == nil {
		return nil, fmt.Errorf("%s: %w", st, ErrAlreadyInitialised)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var id, seed [16 + 16]byte
	rand.Read(id[:16])
	rand.Read(seed[:])
	if o.PackSize == 0 {
		o.PackSize = DefaultPackSize
	}
	if o.PackSize < 1<<20 || o.PackSize > 1<<30 {
		return nil, fmt.Errorf("%w: pack size %d: want 1 MiB (1048576) to 1 GiB", errs.ErrInvalid, o.PackSize)
	}
	cfg := Config{Format: FormatVersion, ID: hex.EncodeToString(id[:16]), Compression: "zstd", PackSize: o.PackSize,
		Chunker: ChunkerParams{Min: DefaultMinChunk, Avg: DefaultAvgChunk, Max: DefaultMaxChunk, Seed: hex.EncodeToString(seed[:])}}
	cfg.ObjectLock = lock
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	var enc *crypter
	var dek Key
	var stored any = cfg
	if o.Key != nil {
		// A random data key, wrapped under the key file (archive/keys.go).
		dek = GenerateKey()
		if o.directKey {
			dek = *o.Key // as hotsnap 0.2 made archives (tests of the old format)
		}
		enc = newCrypter(dek)
		inner, _ := json.Marshal(sealedConfig{ID: cfg.ID, Chunker: cfg.Chunker, Compression: cfg.Compression, PackSize: cfg.PackSize, ObjectLock: cfg.ObjectLock})
		cfg.Encryption = &EncryptionInfo{Algorithm: Algorithm, KeyID: enc.keyID, Wrapped: !o.directKey}
		stored = encryptedConfig{Format: cfg.Format, ID: cfg.ID, Encryption: cfg.Encryption,
			Sealed: base64.StdEncoding.EncodeToString(enc.seal(nil, inner))}
		if !o.directKey {
			if err := st.Put(ctx, keysPrefix+o.Key.ID(), wrapKey(cfg.ID, *o.Key, dek)); err != nil {
				return nil, err
			}
		}
	}
	b, _ := json.MarshalIndent(stored, "", "  ")
	if err := st.Put(ctx, "config", b); err != nil {
		return nil, err
	}
	r := newRepo(st, cfg, enc)
	r.dek, r.raw = dek, b
	return r, nil
}

// checkConfig fails when the config object is no longer the one this
// repo was opened with: two commands initialised an empty remote at the
// same moment and the other one's config won. A commit is refused then,
// rather than leave a snapshot that the archive's key cannot read.
func (r *Repo) CheckConfig(ctx context.Context) error {
	b, err := r.st.Get(ctx, "config", maxConfigObject)
	if err != nil {
		return fmt.Errorf("re-read config: %w", err)
	}
	if !bytes.Equal(b, r.raw) {
		return fmt.Errorf("%w: the archive's config changed while this command ran (another command initialised the archive at the same moment?): run it again", ErrCorrupt)
	}
	return nil
}

// Open reads the config of an initialised remote. An encrypted archive needs
// its key (ErrKeyRequired, ErrWrongKey otherwise); an unencrypted one refuses
// a key, so nobody believes data is encrypted when it is not.
func Open(ctx context.Context, st store.Store, key *Key) (*Repo, error) {
	b, err := st.Get(ctx, "config", maxConfigObject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w (run `hotsnap archive init`, or upload, which initialises it)", st, ErrNotInitialised)
	}
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrCorrupt, err)
	}
	if cfg.Format != FormatVersion {
		return nil, fmt.Errorf("%s: %w: it is format %d, this hotsnap reads format %d (format 1 was written by hotsnap 0.1, before manifests and indexes became streams): initialise a new archive and upload again", st, ErrFormat, cfg.Format, FormatVersion)
	}
	var enc *crypter
	var dek Key
	switch {
	case cfg.Encryption == nil && key != nil:
		return nil, fmt.Errorf("%s is not encrypted, but an encryption key was given (drop --encryption-key-file, or use a new archive)", st)
	case cfg.Encryption != nil:
		var strict encryptedConfig
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&strict); err != nil || dec.More() || strict.Format != FormatVersion {
			return nil, fmt.Errorf("%w: encrypted config does not parse strictly (damaged?)", ErrCorrupt)
		}
		if cfg.Encryption.Algorithm != Algorithm {
			return nil, fmt.Errorf("%w: config: unknown encryption %q", ErrCorrupt, cfg.Encryption.Algorithm)
		}
		if key == nil {
			// Name the key files by the ids keygen and archive key list
			// print (the data key's id names no file a user holds).
			ids, _ := listKeyFiles(ctx, st)
			if !cfg.Encryption.Wrapped {
				ids = []string{cfg.Encryption.KeyID} // hotsnap 0.2: the first key file is the data key
			}
			return nil, fmt.Errorf("%s: %w: give --encryption-key-file with one of the archive's key files (ids %s)", st, ErrKeyRequired, strings.Join(ids, ", "))
		}
		if cfg.Encryption.Wrapped && key.ID() == cfg.Encryption.KeyID {
			return nil, fmt.Errorf("%w: the config's data key id is a key file's id", ErrCorrupt)
		}
		dek, err = dataKey(ctx, st, cfg.ID, cfg.Encryption.KeyID, *key)
		if err != nil {
			return nil, err
		}
		enc = newCrypter(dek)
		// Strict: the unused bits of a last base64 digit must be zero, so
		// even a flip that would decode to the same bytes is refused.
		sealed, err := base64.StdEncoding.Strict().DecodeString(cfg.Sealed)
		if err != nil {
			return nil, fmt.Errorf("%w: config: sealed part is not strict base64", ErrCorrupt)
		}
		inner, err := enc.open(sealed)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		var sc sealedConfig
		if err := json.Unmarshal(inner, &sc); err != nil || sc.ID != cfg.ID {
			return nil, fmt.Errorf("%w: config: the sealed part does not belong to archive %s", ErrCorrupt, cfg.ID)
		}
		cfg.Chunker, cfg.Compression, cfg.PackSize, cfg.ObjectLock = sc.Chunker, sc.Compression, sc.PackSize, sc.ObjectLock
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := newRepo(st, cfg, enc)
	r.dek, r.raw = dek, b
	return r, nil
}

// OpenOrInit opens the repository, initialising an empty remote first
// (encrypted with key when it is set).
func OpenOrInit(ctx context.Context, st store.Store, key *Key) (*Repo, error) {
	r, err := Open(ctx, st, key)
	if errors.Is(err, ErrNotInitialised) {
		r, err = Init(ctx, st, InitOptions{Key: key})
		if errors.Is(err, ErrAlreadyInitialised) { // a concurrent init won
			return Open(ctx, st, key)
		}
	}
	return r, err
}
