package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/hardlink"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/freezer"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// ToolVersion is recorded in every manifest.
var ToolVersion = "0.4.0"

// DefaultNodeID is the node id of a single-node snapshot when none is given.
const DefaultNodeID = defaults.NodeID

// CreateOptions tune Create. The zero value takes a snapshot with no write
// lock of its own (quiesce.None), linking every file.
type CreateOptions struct {
	// Label is the id's suffix; empty means a random UUID. Ignored when ID is set.
	Label string
	// ID fixes the snapshot id (cluster snapshots share one id on every node).
	ID string
	// Quiescer stops writes; nil means quiesce.None.
	Quiescer quiesce.Quiescer
	// Lock is the retry policy around the Quiescer.
	Lock quiesce.Policy
	// AllowInconsistent takes the snapshot without the lock when the lock
	// times out, and flags it potentiallyInconsistent.
	AllowInconsistent bool
	// Copy lists globs of files captured as private copies (files the
	// application rewrites in place). See docs/snapshots.md for the glob rules.
	Copy []string
	// Exclude lists globs of entries left out (with their subtrees).
	Exclude []string
	// LinkMode is hardlink.LinkModeLink (default), LinkModeReflink or LinkModeAuto.
	LinkMode string
	// AppVersion, NodeID, Topology and EncryptionKeyID are recorded in the
	// manifest for restore's compatibility checks. NodeID defaults to
	// DefaultNodeID, Topology to just this node.
	AppVersion string
	// AppEngine names the storage engine that wrote the data (recorded,
	// and checked at restore).
	AppEngine       string
	NodeID          string
	Topology        *manifest.Topology
	EncryptionKeyID string
	// Workers bounds parallel work; 0 means defaults.Workers.
	Workers int
	// Logger receives progress and warnings; nil is silent.
	Logger *slog.Logger
	// Progress, when set, follows the first pass of the capture (entries
	// captured; totals unknown) and the hashing of the files the capture
	// could not take hashes for from the previous snapshot.
	Progress Progress
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// LockedSince, when set, is when the Quiescer's writes were really
	// stopped (an agent's lock taken before Create was called, in a cluster
	// snapshot); the recorded lock-held time counts from it.
	LockedSince time.Time
}

// CreateResult reports a published snapshot. The JSON form is the CLI's
// `create --json` contract (docs/json.md).
type CreateResult struct {
	ID                      string   `json:"id"`
	Path                    string   `json:"path"`
	Files                   int64    `json:"files"`
	Dirs                    int64    `json:"dirs"`
	Symlinks                int64    `json:"symlinks"`
	Bytes                   int64    `json:"bytes"`
	LockHeldMs              float64  `json:"lockHeldMs"`
	LockWaitMs              float64  `json:"lockWaitMs"`
	LockAttempts            int      `json:"lockAttempts"`
	FirstPassMs             float64  `json:"firstPassMs"`
	RescannedDirs           int      `json:"rescannedDirs"`
	RecapturedEntries       int      `json:"recapturedEntries"`
	PotentiallyInconsistent bool     `json:"potentiallyInconsistent"`
	HashedFiles             int64    `json:"hashedFiles"`
	HashedBytes             int64    `json:"hashedBytes"`
	ReusedHashes            int64    `json:"reusedHashes"`
	DurationMs              float64  `json:"durationMs"`
	Warnings                []string `json:"warnings"`
	// Quiesced says what the quiescer stopped (nil when the lock was not
	// taken: --allow-inconsistent after a timeout).
	Quiesced *quiesce.Report `json:"quiesced"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Create takes a snapshot of the data dir (docs/DESIGN.md, Create): recover, quiesce,
// build the link tree in staging, resume, hash (reusing hashes of unchanged
// inodes from the newest snapshot), check that no linked file was modified in
// place, seal the manifest and publish atomically into the backups dir. On
// any error nothing is left behind: no snapshot, no staging.
func Create(ctx context.Context, l *Layout, o CreateOptions) (*CreateResult, error) {
	p, err := Prepare(ctx, l, o)
	if err != nil {
		return nil, err
	}
	return p.Capture(ctx, CaptureOptions{Quiescer: o.Quiescer, Lock: o.Lock, AllowInconsistent: o.AllowInconsistent, LockedSince: o.LockedSince})
}

// Pending is a prepared snapshot: everything Create does before it stops
// writes (checks, recovery, the newest manifest read for hash reuse, the
// staging dir) is done, and this data dir's operation lock is held. A
// cluster agent prepares before the coordinator locks the nodes, so the
// writes stay stopped only for the capture itself. Capture or Abort it.
type Pending struct {
	l                       *Layout
	o                       CreateOptions
	id, label               string
	createdAt               time.Time
	topo                    manifest.Topology
	copyGlobs, excludeGlobs globSet
	s                       *session
	prev                    *ManifestFile // the newest snapshot's, for hash reuse (nil: none)
	stage                   string        // staging/<id>, in the private state dir
	tree                    *fsutil.Dir   // stage/data, open
	pass                    *hardlink.Pass
	firstPass               time.Duration
	warnings                []string // found while preparing
	start                   time.Time
	log                     *slog.Logger
	mu                      sync.Mutex
	done                    bool
}

// CaptureOptions say how a Pending captures: as the CreateOptions fields
// of the same names.
type CaptureOptions struct {
	Quiescer          quiesce.Quiescer
	Lock              quiesce.Policy
	AllowInconsistent bool
	LockedSince       time.Time
}

// ID is the prepared snapshot's id.
func (p *Pending) ID() string { return p.id }

// Abort removes the staging dir and releases the operation lock. It is
// safe to call after Capture, and more than once.
func (p *Pending) Abort() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	p.cleanup()
}

func (p *Pending) cleanup() {
	if p.tree != nil {
		p.tree.Close()
	}
	if err := p.s.priv.RemoveAll(p.stage); err != nil {
		p.log.Warn("could not remove staging; the next command will", "path", p.s.priv.Join(p.stage), "err", err)
	}
	if p.prev != nil {
		p.prev.Close()
	}
	p.s.close()
}

// Prepare does the part of Create that needs no write lock. The quiescer
// fields of o are not used (Capture says how to stop writes).
func Prepare(ctx context.Context, l *Layout, o CreateOptions) (p *Pending, err error) {
	start := time.Now()
	log := logger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NodeID == "" {
		o.NodeID = DefaultNodeID
	}
	topo := manifest.Topology{Nodes: []string{o.NodeID}}
	if o.Topology != nil {
		topo = *o.Topology
	}
	copyGlobs, err := newGlobSet("--copy", o.Copy)
	if err != nil {
		return nil, err
	}
	excludeGlobs, err := newGlobSet("--exclude", o.Exclude)
	if err != nil {
		return nil, err
	}
	switch o.LinkMode {
	case "", hardlink.LinkModeLink, hardlink.LinkModeReflink, hardlink.LinkModeAuto:
	default:
		return nil, fmt.Errorf("%w: link mode %q (want link, reflink or auto)", ErrInvalid, o.LinkMode)
	}
	// Checked at the door: a version a restore could never match would
	// leave --ignore-version the only way back.
	if o.AppVersion != "" {
		if err := manifest.ValidVersion(o.AppVersion); err != nil {
			return nil, fmt.Errorf("%w: --app-version %q: want major.minor.patch, such as 3.11.2", ErrInvalid, o.AppVersion)
		}
	}
	if o.AppEngine != "" && !validEngine(o.AppEngine) {
		return nil, fmt.Errorf("%w: --app-engine %q: want 1 to 64 of letters, digits, '.', '_', '-'", ErrInvalid, o.AppEngine)
	}
	createdAt := o.Now().UTC()
	id := o.ID
	if id == "" {
		if id, err = NewID(createdAt, o.Label); err != nil {
			return nil, err
		}
	} else if err := validID(id); err != nil {
		return nil, err
	}
	label := id[strings.IndexByte(id, '_')+1:]
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.backups.Exists(id) {
		return nil, fmt.Errorf("snapshot %s: %w", id, ErrExists)
	}
	if err := s.mkdirPriv(stagingName); err != nil {
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	prev := s.latestManifest()
	stage := stagingName + "/" + id
	if err := s.priv.Mkdir(stage, 0o700); err != nil {
		return nil, fmt.Errorf("create staging: %w", err)
	}
	p = &Pending{l: l, o: o, id: id, label: label, createdAt: createdAt, topo: topo,
		copyGlobs: copyGlobs, excludeGlobs: excludeGlobs, s: s, prev: prev, stage: stage, start: start, log: log}
	if err := p.firstPassCapture(ctx); err != nil {
		p.cleanup()
		s = nil // closed by cleanup
		return nil, err
	}
	return p, nil
}

// Capture stops writes (with co), builds the link tree, resumes writes,
// then hashes, seals and publishes, as Create. The Pending is used up:
// on error its staging is removed, and the operation lock is released
// either way.
func (p *Pending) Capture(ctx context.Context, co CaptureOptions) (res *CreateResult, err error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: snapshot %s was already captured or aborted", ErrInvalid, p.id)
	}
	p.done = true // an Abort from now on is a no-op: Capture cleans up
	p.mu.Unlock()
	defer p.cleanup() // after a publish, staging is gone: only the op lock is released
	l, o, id, log := p.l, p.o, p.id, p.log
	stage, prev, start, createdAt, label, topo := p.stage, p.prev, p.start, p.createdAt, p.label, p.topo
	s := p.s
	o.Quiescer, o.Lock, o.AllowInconsistent, o.LockedSince = co.Quiescer, co.Lock, co.AllowInconsistent, co.LockedSince
	if o.Quiescer == nil {
		o.Quiescer = quiesce.None{}
	}
	tree := p.tree
	// --- Quiesce: writes stop here. ---
	res = &CreateResult{ID: id, Path: l.SnapshotDir(id), Warnings: append([]string{}, p.warnings...), FirstPassMs: ms(p.firstPass)}
	stats, lerr := quiesce.Acquire(ctx, o.Quiescer, o.Lock)
	res.LockAttempts = stats.Attempts
	res.LockWaitMs = ms(stats.Waited)
	locked := lerr == nil
	var held *quiesce.Held
	if locked {
		held = quiesce.Hold(ctx, o.Quiescer)
		defer held.Resume()
	}
	if lerr != nil {
		if !errors.Is(lerr, ErrLockTimeout) || !o.AllowInconsistent {
			return nil, lerr
		}
		res.PotentiallyInconsistent = true
		msg := "writes could not be stopped in time; taking the snapshot anyway (--allow-inconsistent): it is flagged potentiallyInconsistent"
		log.Warn(msg, "attempts", stats.Attempts)
		res.Warnings = append(res.Warnings, msg)
	}
	crashPoint("create.locked")
	var copyInode func(dev, ino uint64) bool
	if wf, ok := o.Quiescer.(quiesce.WriterFiles); ok && locked {
		files, err := wf.WritableFiles()
		if err != nil {
			return nil, fmt.Errorf("list the files the stopped processes can write: %w", err)
		}
		if len(files) > 0 {
			log.Info("files the stopped application can write are captured as copies", "files", len(files))
			copyInode = func(dev, ino uint64) bool { return files[freezer.FileID{Dev: dev, Ino: ino}] }
		}
	}
	berr := p.pass.Finish(ctx, copyInode)
	crashPoint("create.linked")
	var rerr error
	if locked {
		rerr = held.Resume()
		since := stats.Acquired
		if !o.LockedSince.IsZero() {
			since = o.LockedSince
		}
		res.LockHeldMs = ms(time.Since(since))
	}
	// --- Writes continue from here on. ---
	if berr != nil {
		return nil, fmt.Errorf("capture tree: %w", berr)
	}
	if rerr != nil {
		return nil, fmt.Errorf("resume writes: %w (the snapshot was discarded)", rerr)
	}
	crashPoint("create.resumed")
	if r, ok := o.Quiescer.(quiesce.Reporter); ok && locked {
		rep := r.Report()
		res.Quiesced = &rep
		if rep.Mode == "flock" && rep.Processes == 0 {
			msg := "no writer was coordinated: no process had the write gate (.hotsnap/gate.lock) open, so the gate stopped nothing; for an application not written for the gate use --quiesce freeze (or exec, http, signal)"
			log.Warn(msg)
			res.Warnings = append(res.Warnings, msg)
		}
	}
	built := p.pass.Result()
	res.RescannedDirs, res.RecapturedEntries = built.Stats.Rescanned, built.Stats.Recaptured
	for _, w := range built.Warnings {
		msg := fmt.Sprintf("%s: %s", fsutil.Quote(w.Rel), w.Reason)
		log.Info("entry not captured", "path", w.Rel, "reason", w.Reason)
		res.Warnings = append(res.Warnings, msg)
	}
	hdr := &manifest.Manifest{
		Format: manifest.Format, ID: id, Label: label, CreatedAt: createdAt,
		ToolVersion: ToolVersion, AppVersion: o.AppVersion, AppEngine: o.AppEngine,
		Node: manifest.Node{ID: o.NodeID}, Topology: topo,
		EncryptionKeyID:         o.EncryptionKeyID,
		PotentiallyInconsistent: res.PotentiallyInconsistent,
		LockHeldMs:              res.LockHeldMs,
	}
	phase := time.Now()
	step := func(name string) { // phase times, for --log-level debug
		log.Debug("create phase", "phase", name, "ms", ms(time.Since(phase)))
		phase = time.Now()
	}
	rec := newRecord(built.Items)
	rec.progress = o.Progress
	// The snapshot's own directories get the captured owners, modes and
	// mtimes (after the lock: they are never shared with live data).
	if err := fstree.FinishDirs(tree, rec.dirs()); err != nil {
		return nil, err
	}
	step("record and dirs")
	if err := rec.hashAndSettle(ctx, tree, prev, built.LockFloor, o.Workers, res); err != nil {
		return nil, err
	}
	step("hash and settle")
	crashPoint("create.hashed")
	totals, err := rec.write(s.priv, stage+"/"+manifestName, hdr)
	if err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	step("manifest")
	crashPoint("create.manifest")
	if err := fstree.Sync(ctx, tree, rec.owned(), o.Workers); err != nil {
		return nil, err
	}
	step("sync")
	if err := s.writeSeal(stage); err != nil {
		return nil, fmt.Errorf("write the seal record: %w", err)
	}
	if err := s.publish(stage, id); err != nil {
		return nil, err
	}
	step("publish")
	t := totals
	res.Files, res.Dirs, res.Symlinks, res.Bytes = t.Files, t.Dirs, t.Symlinks, t.Bytes
	res.DurationMs = ms(time.Since(start))
	log.Info("snapshot created", "id", id, "files", t.Files, "bytes", t.Bytes, "lockHeldMs", res.LockHeldMs)
	return res, nil
}

// validEngine reports whether name is a storage engine's name as hotsnap
// records it: 1 to 64 of letters, digits, '.', '_', '-'.
func validEngine(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
