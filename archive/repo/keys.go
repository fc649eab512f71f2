package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/hotsnap/hotsnap/archive/store"
	"github.com/hotsnap/hotsnap/errs"
)

// Key files and the data key (docs/DESIGN.md, "Archive keys"). An
// encrypted archive's objects are sealed with its data key, which no file
// holds: each key file wraps it in an object keys/<key file id>
// (XChaCha20-Poly1305 under a key derived from the key file, the archive
// id and the key file's id bound in as associated data). A key file opens
// the archive when its wrapped key exists and opens, so key files can be
// added, and removed (revoked), without re-encrypting anything. Archives
// made before wrapping (hotsnap 0.2) use their first key file as the data
// key itself: it keeps working, and cannot be removed.

const keysPrefix = "keys/"

// maxKeyObject bounds a wrapped key object.
const maxKeyObject = 4 << 10

// wrapped is a wrapped key's plaintext.
type wrapped struct {
	Archive string `json:"archive"`
	KeyFile string `json:"keyFile"`
	DataKey string `json:"dataKey"` // hex
}

func wrapAEAD(kek Key) (aeadSealer, error) {
	wk := make([]byte, 32)
	blake3.DeriveKey("hotsnap 2026 archive key wrap", kek[:], wk)
	return chacha20poly1305.NewX(wk)
}

type aeadSealer interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
}

func wrapAD(archiveID, kekID string) []byte {
	return []byte("hotsnap key wrap\x00" + archiveID + "\x00" + kekID)
}

// wrapKey seals dek under kek for the archive archiveID.
func wrapKey(archiveID string, kek, dek Key) []byte {
	a, _ := wrapAEAD(kek)
	plain, _ := json.Marshal(wrapped{Archive: archiveID, KeyFile: kek.ID(), DataKey: hex.EncodeToString(dek[:])})
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return a.Seal(nonce, nonce, plain, wrapAD(archiveID, kek.ID()))
}

// unwrapKey opens keys/<kek id>: an error wrapping ErrCorrupt when it does
// not open with kek for this archive (damaged, forged, or another key's
// object under this name).
func unwrapKey(archiveID string, kek Key, b []byte) (Key, error) {
	var dek Key
	a, _ := wrapAEAD(kek)
	ns := a.NonceSize()
	if len(b) < ns+chacha20poly1305.Overhead {
		return dek, fmt.Errorf("%w: wrapped key of %d bytes is too short", ErrCorrupt, len(b))
	}
	plain, err := a.Open(nil, b[:ns], b[ns:], wrapAD(archiveID, kek.ID()))
	if err != nil {
		return dek, fmt.Errorf("%w: %skeyfile %s does not open with that key file (damaged or forged)", ErrCorrupt, keysPrefix, kek.ID())
	}
	var w wrapped
	if err := json.Unmarshal(plain, &w); err != nil || w.Archive != archiveID || w.KeyFile != kek.ID() {
		return dek, fmt.Errorf("%w: %s%s names another archive or key file", ErrCorrupt, keysPrefix, kek.ID())
	}
	if b, err := hex.DecodeString(w.DataKey); err != nil || len(b) != len(dek) {
		return dek, fmt.Errorf("%w: %s%s: bad data key", ErrCorrupt, keysPrefix, kek.ID())
	} else {
		copy(dek[:], b)
	}
	return dek, nil
}

// dataKey finds the data key that key file kek opens in an encrypted
// archive whose config names data key dataKeyID.
func dataKey(ctx context.Context, st store.Store, archiveID, dataKeyID string, kek Key) (Key, error) {
	b, err := st.Get(ctx, keysPrefix+kek.ID(), maxKeyObject)
	switch {
	case err == nil:
		dek, err := unwrapKey(archiveID, kek, b)
		if err != nil {
			return dek, err
		}
		if dek.ID() != dataKeyID {
			return dek, fmt.Errorf("%w: %s%s holds data key %s, the archive's is %s", ErrCorrupt, keysPrefix, kek.ID(), dek.ID(), dataKeyID)
		}
		return dek, nil
	case !errors.Is(err, store.ErrNotFound):
		return Key{}, err
	case kek.ID() == dataKeyID:
		return kek, nil // an archive of hotsnap 0.2 (not Wrapped): the first key file is the data key
	}
	ids, _ := listKeyFiles(ctx, st)
	known := "none"
	if len(ids) > 0 {
		known = strings.Join(ids, ", ")
	}
	return Key{}, fmt.Errorf("%s: %w: the key file's id is %s; the archive's key files are %s", st, ErrWrongKey, kek.ID(), known)
}

func listKeyFiles(ctx context.Context, st store.Store) ([]string, error) {
	var ids []string
	err := st.List(ctx, keysPrefix, func(i store.Info) error {
		if id := strings.TrimPrefix(i.Key, keysPrefix); isHexID(id) {
			ids = append(ids, id)
		}
		return nil
	})
	sort.Strings(ids)
	return ids, err
}

func isHexID(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// KeyFiles lists the ids of the key files that open the archive, and, for
// an archive of hotsnap 0.2, the id of the first key file, which is the
// data key itself (legacy: it cannot be removed).
func (r *Repo) KeyFiles(ctx context.Context) (ids []string, legacy string, err error) {
	if r.enc == nil {
		return nil, "", fmt.Errorf("%w: the archive is not encrypted", errs.ErrInvalid)
	}
	ids, err = listKeyFiles(ctx, r.st)
	if err != nil {
		return nil, "", err
	}
	if !r.cfg.Encryption.Wrapped {
		legacy = r.enc.keyID
	}
	return ids, legacy, nil
}

// AddKeyFile lets the key file k open the archive too: the data key is
// wrapped under it. The repo must have been opened with a key file already.
func (r *Repo) AddKeyFile(ctx context.Context, k Key) error {
	if r.enc == nil {
		return fmt.Errorf("%w: the archive is not encrypted", errs.ErrInvalid)
	}
	if k.ID() == r.dek.ID() {
		return fmt.Errorf("%w: key file %s already opens the archive", errs.ErrConflict, k.ID())
	}
	if _, err := r.st.Stat(ctx, keysPrefix+k.ID()); err == nil {
		return fmt.Errorf("%w: key file %s already opens the archive", errs.ErrConflict, k.ID())
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := r.st.Put(ctx, keysPrefix+k.ID(), wrapKey(r.cfg.ID, k, r.dek)); err != nil {
		return err
	}
	// Read it back: the new key file must open the archive before anyone
	// relies on it.
	if _, err := dataKey(ctx, r.st, r.cfg.ID, r.enc.keyID, k); err != nil {
		return fmt.Errorf("the new key file does not open the archive after all: %w", err)
	}
	return nil
}

// RemoveKeyFile revokes key file id: it no longer opens the archive. The
// last key file is never removed (the data would be lost), nor the data
// key of an archive of hotsnap 0.2. Revocation stops new access by the
// key file alone; it cannot take back a data key or a copy of the archive
// already read with it (docs/archive.md, Encryption).
func (r *Repo) RemoveKeyFile(ctx context.Context, id string) error {
	ids, legacy, err := r.KeyFiles(ctx)
	if err != nil {
		return err
	}
	if id == legacy {
		return fmt.Errorf("%w: key file %s is this archive's data key itself (made by hotsnap 0.2): it cannot be revoked; to cut it off, upload into a new archive", errs.ErrInvalid, id)
	}
	found := false
	for _, x := range ids {
		found = found || x == id
	}
	if !found {
		return fmt.Errorf("key file %s: %w", id, ErrNotFound)
	}
	if len(ids) == 1 && legacy == "" {
		return fmt.Errorf("%w: key file %s is the archive's last: removing it would make the data unreadable (add another first)", errs.ErrInvalid, id)
	}
	return r.st.Delete(ctx, keysPrefix+id)
}
