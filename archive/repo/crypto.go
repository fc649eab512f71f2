package repo

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/hotsnap/hotsnap/errs"
)

// Algorithm names the archive's AEAD.
const Algorithm = "xchacha20-poly1305"

var (
	// ErrKeyRequired is returned when an encrypted archive is opened without a key.
	ErrKeyRequired = errs.New(errs.Incompatible, "archive is encrypted: a key is needed")
	// ErrWrongKey is returned when the key given is not the archive's.
	ErrWrongKey = errs.New(errs.Incompatible, "wrong encryption key")
)

// Key is an archive's 32-byte master key.
type Key [32]byte

// GenerateKey returns a new random key.
func GenerateKey() Key {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		panic(err)
	}
	return k
}

// ParseKey reads a key file: 32 raw bytes, or 64 hex digits (what
// `hotsnap archive keygen` writes) with an optional trailing newline.
func ParseKey(b []byte) (Key, error) {
	var k Key
	if t := bytes.TrimSpace(b); len(t) == 64 {
		if _, err := hex.Decode(k[:], t); err == nil {
			return k, nil
		}
	}
	if len(b) == 32 {
		copy(k[:], b)
		return k, nil
	}
	return k, fmt.Errorf("an encryption key file holds 32 bytes or 64 hex digits; this one holds %d bytes (make one with `hotsnap archive keygen --output FILE`)", len(b))
}

// ID is the key's short public fingerprint, stored in the archive's config
// and manifests: it names the key without revealing it.
func (k Key) ID() string {
	sum := make([]byte, 8)
	blake3.DeriveKey("hotsnap 2026 archive key id", k[:], sum)
	return hex.EncodeToString(sum)
}

// crypter seals and opens the archive's objects. A nil *crypter is an
// unencrypted archive: seal copies, open returns its input, chunk ids are
// plain BLAKE3.
type crypter struct {
	aead  cipher.AEAD
	idKey []byte
	keyID string
}

func newCrypter(k Key) *crypter {
	enc := make([]byte, 32)
	blake3.DeriveKey("hotsnap 2026 archive encryption", k[:], enc)
	idk := make([]byte, 32)
	blake3.DeriveKey("hotsnap 2026 archive chunk ids", k[:], idk)
	aead, err := chacha20poly1305.NewX(enc)
	if err != nil {
		panic(err)
	}
	return &crypter{aead: aead, idKey: idk, keyID: k.ID()}
}

// overhead is what sealing adds: nonce and tag.
func (c *crypter) overhead() int {
	if c == nil {
		return 0
	}
	return chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
}

// seal appends nonce || AEAD(plain) to dst (plain itself when unencrypted).
func (c *crypter) seal(dst, plain []byte) []byte {
	if c == nil {
		return append(dst, plain...)
	}
	n := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[n:]
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return c.aead.Seal(dst, nonce, plain, nil)
}

// open checks and decrypts what seal wrote.
func (c *crypter) open(b []byte) ([]byte, error) {
	if c == nil {
		return b, nil
	}
	if len(b) < c.overhead() {
		return nil, fmt.Errorf("%w: encrypted object of %d bytes is too short", ErrCorrupt, len(b))
	}
	ns := chacha20poly1305.NonceSizeX
	out, err := c.aead.Open(nil, b[:ns], b[ns:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (damaged, or not written with this key)", ErrCorrupt)
	}
	return out, nil
}

// ChunkID is a chunk's id: BLAKE3 of its bytes, keyed when encrypted so
// that ids reveal nothing about content.
func (c *crypter) chunkID(b []byte) ID {
	if c == nil {
		return HashOf(b)
	}
	h, _ := blake3.NewKeyed(c.idKey)
	h.Write(b)
	var id ID
	h.Sum(id[:0])
	return id
}

// The repository's blobs and packs, sealed with its data key when it is
// encrypted.

// Encrypted reports whether the archive is encrypted.
func (r *Repo) Encrypted() bool { return r.enc != nil }

// Overhead is what sealing adds to a blob (0 unencrypted).
func (r *Repo) Overhead() int { return r.enc.overhead() }

// Seal appends plain, sealed with a fresh nonce, to dst; an unencrypted
// archive's blobs are not sealed (call only when Encrypted).
func (r *Repo) Seal(dst, plain []byte) []byte { return r.enc.seal(dst, plain) }

// ChunkID is a chunk's id: its BLAKE3, keyed in an encrypted archive.
func (r *Repo) ChunkID(chunk []byte) ID { return r.enc.chunkID(chunk) }

// DecodeBlob opens and decompresses a stored blob and checks it is chunk
// id of rawLen bytes.
func (r *Repo) DecodeBlob(stored []byte, id ID, rawLen int) ([]byte, error) {
	return decodeBlob(r.enc, stored, id, rawLen)
}

// OpenBlob is DecodeBlob without the id check, decompressing into *dst's
// memory (grown there when too small, to be reused): for a caller that
// proves the chunk another way (each file it lands in against the
// manifest's BLAKE3) and checks the id only to name the damage
// (CheckChunk).
func (r *Repo) OpenBlob(dst *[]byte, stored []byte, id ID, rawLen int) ([]byte, error) {
	return openBlob(r.enc, dst, stored, id, rawLen)
}

// CheckChunk says whether chunk is the content of id.
func (r *Repo) CheckChunk(chunk []byte, id ID) error { return checkChunk(r.enc, chunk, id) }

// ParsePack reads a whole pack's trailer: its blobs.
func (r *Repo) ParsePack(pack []byte) ([]BlobRef, error) { return parsePack(r.enc, pack) }

// FinishPack seals p's trailer and returns the pack, its id and its blobs.
func (r *Repo) FinishPack(p *PackWriter) ([]byte, ID, []BlobRef) { return p.finish(r.enc) }

// NewChunker cuts rd's content into chunks by the archive's parameters,
// reading through buf.
func (r *Repo) NewChunker(rd io.Reader, buf []byte) *Chunker {
	return NewChunker(rd, &r.gear, r.cfg.Chunker, buf)
}
