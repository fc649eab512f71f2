package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// A downloaded snapshot was proven file by file as it was written (every
// file against its BLAKE3 as its chunks landed). Its proof records
// that, so the restore that usually follows need not read all of it again
// (docs/DESIGN.md, Proof of a download): proof.json holds a ctime mark
// taken once the tree was whole and durable, and a restore trusts the
// content of every entry whose ctime is still below the mark, checking it
// by stat. Any change to an entry moves its ctime past the mark, and then
// the restore re-hashes, as it does without a proof, when the proof is
// older than proofMaxAge, and when others may write the backups dir.

const (
	proofName    = "proof.json"
	proofVersion = 1
	proofMaxAge  = 24 * time.Hour
	maxProof     = 4 << 10
)

type proof struct {
	Version  int       `json:"version"`
	ID       string    `json:"id"`
	ProvenAt time.Time `json:"provenAt"`
	// CtimeMarkNs is above the ctime of every entry of the proven tree and
	// at or below the ctime any later change gives.
	CtimeMarkNs int64 `json:"ctimeMarkNs"`
}

// writeProof records, in the staging dir stage, that its tree is whole
// (called once it is filled, proven and synced, before the publish).
func (s *session) writeProof(stage, id string) error {
	d, err := s.priv.OpenDir(stage)
	if err != nil {
		return err
	}
	defer d.Close()
	mark, err := fsutil.CtimeMark(d)
	if err != nil {
		return err
	}
	b, err := json.Marshal(proof{Version: proofVersion, ID: id, ProvenAt: time.Now().UTC(), CtimeMarkNs: mark})
	if err != nil {
		return err
	}
	return writeNew(s.priv, stage+"/"+proofName, b)
}

// freshProof returns the ctime mark of snapshot id's proof when it can be
// trusted: written by hotsnap's user into a backups dir nobody else
// writes, for this id, at most proofMaxAge ago by a clock that has not
// gone back since. Anything else is no proof (0, false), never an error:
// the restore then re-hashes.
func (s *session) freshProof(id string, now time.Time) (int64, bool) {
	if s.l.AllowSharedBackups {
		return 0, false
	}
	f, st, err := s.backups.OpenRegular(id + "/" + proofName)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if checkTrusted(st, "proof", f.Name()) != nil || st.Nlink != 1 {
		return 0, false
	}
	b, err := readSmall(f, maxProof)
	if err != nil {
		return 0, false
	}
	var p proof
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&p) != nil || p.Version != proofVersion || p.ID != id || p.CtimeMarkNs <= 0 {
		return 0, false
	}
	if age := now.Sub(p.ProvenAt); age < 0 || age > proofMaxAge {
		return 0, false
	}
	return p.CtimeMarkNs, true
}

// errUnproven: a file the download's proof does not cover
// (manifest.Unproven): the restore then re-hashes the snapshot, as it does
// without a proof.
var errUnproven = errors.New("not covered by the download's proof")

// proofCheck checks each file by stat under a fresh proof as a restore's
// build links it: VerifyTree's check with ProvenBefore (manifest.Unproven),
// made from the stat the build takes anyway, instead of in a pass of its
// own before it (200,000 small files restored after their download in 2.6
// s instead of 3.2 s; docs/benchmarks.md, stop 39). A link group's inode
// may have as many links as the group has names: the build counts them as
// it reads the manifest (name) and checks the links its stats saw at the
// end (finish), before the swap, so no pass of the manifest goes first.
type proofCheck struct {
	mark   int64
	mu     sync.Mutex
	proven map[int][2]uint64 // link group -> the inode (dev, ino) its first name was proven by
	links  map[int]uint64    // link group -> its inode's links when proven
	first  map[int]string    // link group -> the name it was proven by
	names  map[int]uint64    // link group -> its names in the manifest (name)
}

// proofFor returns the check of snapshot id's fresh proof, or nil when it
// has none (then the restore re-hashes).
func (s *session) proofFor(id string, now time.Time) *proofCheck {
	mark, ok := s.freshProof(id, now)
	if !ok {
		return nil
	}
	return &proofCheck{mark: mark, proven: map[int][2]uint64{}, links: map[int]uint64{},
		first: map[int]string{}, names: map[int]uint64{}}
}

// name counts e among its link group's names; the build calls it for
// every entry of the manifest, selected or not, in order.
func (c *proofCheck) name(e *manifest.Entry) {
	if c == nil || e.LinkGroup == 0 {
		return
	}
	c.mu.Lock()
	c.names[e.LinkGroup]++
	c.mu.Unlock()
}

// check says whether the proof covers the file e, of stat st (an error
// wrapping errUnproven when it does not). A later name of a link group
// whose inode was proven by its first name is covered: the build's own
// link of that first name moved the inode's ctime and link count. The
// links of a group's inode are checked by finish.
func (c *proofCheck) check(e *manifest.Entry, st fsutil.Stat) error {
	if c == nil {
		return nil
	}
	in := [2]uint64{st.Dev, st.Ino}
	names := uint64(1)
	if e.LinkGroup != 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		if got, ok := c.proven[e.LinkGroup]; ok && got == in {
			return nil
		}
		names = st.Nlink // checked against the group's names by finish
	}
	if why := manifest.Unproven(e, st, c.mark, names); why != "" {
		return fmt.Errorf("%w: %q %s", errUnproven, e.Path, why)
	}
	if g := e.LinkGroup; g != 0 {
		c.proven[g] = in
		if st.Nlink > c.links[g] {
			c.links[g], c.first[g] = st.Nlink, string(e.Path)
		}
	}
	return nil
}

// finish checks, once every entry was named and built, that no link
// group's inode had more links when proven than the group has names.
func (c *proofCheck) finish() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for g, n := range c.links {
		if n > max(1, c.names[g]) {
			return fmt.Errorf("%w: %q %s", errUnproven, c.first[g], manifest.TooManyLinks(n))
		}
	}
	return nil
}

// verifyForRestore proves the snapshot's tree for a restore: by stat where
// a fresh proof covers it ("proof"), else as asked ("full" re-hashes,
// "fast" stats).
func (s *session) verifyForRestore(ctx context.Context, snap *fsutil.Dir, mf *ManifestFile, id string, vo manifest.VerifyOptions, now time.Time) (*manifest.VerifyResult, string, error) {
	if !vo.Fast {
		if vr, ok, err := s.verifyByProof(ctx, snap, mf, id, vo, now); err != nil || ok {
			return vr, "proof", err
		}
	}
	return s.verifyAsAsked(ctx, snap, mf, vo)
}

// verifyByProof proves the tree by stat under a fresh proof of its
// download; ok is false when there is none or it no longer covers every
// entry (then the tree must be re-hashed). It must run before anything
// links the tree's files: a new link moves an inode's ctime past the mark.
func (s *session) verifyByProof(ctx context.Context, snap *fsutil.Dir, mf *ManifestFile, id string, vo manifest.VerifyOptions, now time.Time) (*manifest.VerifyResult, bool, error) {
	mark, ok := s.freshProof(id, now)
	if !ok {
		return nil, false, nil
	}
	r, err := mf.Reader()
	if err != nil {
		return nil, false, err
	}
	groups, err := manifest.LinkGroupSizes(r)
	if err != nil {
		return nil, false, err
	}
	pv := vo
	pv.ProvenBefore, pv.LinkGroups = mark, groups
	if r, err = mf.Reader(); err != nil {
		return nil, false, err
	}
	vr, err := manifest.VerifyTree(ctx, snap, r, pv)
	if err != nil {
		return nil, false, err
	}
	for _, p := range vr.Problems {
		if p.Kind == manifest.ProblemUnproven {
			s.log.Info("the download's proof no longer covers the snapshot: re-hashing it", "id", id)
			return nil, false, nil
		}
	}
	return vr, true, nil
}

// verifyAsAsked proves the tree by a re-hash of every file ("full") or,
// with vo.Fast, by stat ("fast").
func (s *session) verifyAsAsked(ctx context.Context, snap *fsutil.Dir, mf *ManifestFile, vo manifest.VerifyOptions) (*manifest.VerifyResult, string, error) {
	how := "full"
	if vo.Fast {
		how = "fast"
	}
	r, err := mf.Reader()
	if err != nil {
		return nil, "", err
	}
	vr, err := manifest.VerifyTree(ctx, snap, r, vo)
	return vr, how, err
}
