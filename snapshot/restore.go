package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fstree"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// The target deployment, checked against the snapshot (docs/DESIGN.md, Restore and recover).
	AppVersion      string
	AppEngine       string
	EncryptionKeyID string
	// Nodes is the target topology; empty means just NodeID (default DefaultNodeID).
	NodeID string
	Nodes  []string
	// Include, when set, makes a partial restore: only the entries these
	// globs select (the --copy rules; a directory brings its subtree) are
	// put back, each replacing the live entry at its path whole.
	Include []string
	// IgnoreVersion skips the version rule (and says so in the result).
	IgnoreVersion bool
	// FastVerify checks the snapshot's tree by stat only instead of re-hashing.
	FastVerify bool
	// NoFailsafe deletes the previous state after a successful restore
	// instead of keeping it in <state-dir>/failsafe/.
	NoFailsafe bool
	// DryRun checks everything and reports what would change, changing nothing.
	DryRun bool
	// Quiescer holds the application's writes for the whole swap; nil means
	// quiesce.None. Lock is its retry policy.
	Quiescer quiesce.Quiescer
	Lock     quiesce.Policy
	// StopCmd runs (sh -c) before the swap and must succeed; StartCmd runs after it.
	StopCmd, StartCmd string
	// HookTimeout bounds each hook; 0 means 5 minutes.
	HookTimeout time.Duration
	Workers     int
	Logger      *slog.Logger
	// Progress, when set, follows the re-hash that proves the snapshot.
	Progress Progress
	Now      func() time.Time
	// From, when set, is where snapshot id comes from instead of the
	// backups dir: an archived snapshot (archive.Source), written straight
	// into the restore's tree with every file checked against its BLAKE3
	// as it lands; no local snapshot is kept. Its manifest is proven (seal, the
	// compatibility rules) and the change planned before anything is
	// fetched. Include does not go with it (yet).
	From fstree.Source
}

// RestoreResult reports a restore. The JSON form is the CLI's contract.
type RestoreResult struct {
	ID                      string       `json:"id"`
	DryRun                  bool         `json:"dryRun"`
	Restored                bool         `json:"restored"`
	Verified                string       `json:"verified"` // "full" (re-hashed), "fast" (stat), "proof" (stat, under a download's fresh proof) "download" (from the archive, checked as written) or "manifest" (a dry run from the archive: only its manifest proven)
	IgnoredVersion          bool         `json:"ignoredVersion"`
	PotentiallyInconsistent bool         `json:"potentiallyInconsistent"`
	Include                 []string     `json:"include,omitempty"` // a partial restore's patterns
	Files                   int64        `json:"files"`
	Bytes                   int64        `json:"bytes"`
	Failsafe                string       `json:"failsafe,omitempty"`
	Plan                    *RestorePlan `json:"plan"`
	LockHeldMs              float64      `json:"lockHeldMs"`
	SwapMs                  float64      `json:"swapMs"`
	DurationMs              float64      `json:"durationMs"`
	Warnings                []string     `json:"warnings"`
}

// ErrHook is returned when a --stop-cmd or --start-cmd fails.
var ErrHook = quiesce.ErrHook

// Restore puts snapshot id back as the data dir (docs/DESIGN.md, Restore and recover). Nothing in the
// data dir is touched until the manifest's seal, the snapshot's tree and the
// compatibility rules all passed. The restored tree is built beside the data
// (hard links for linked entries, fresh copies for copied ones, so the
// application can never write into the snapshot), then swapped in under the
// write lock (or between --stop-cmd and --start-cmd) with a journal: a crash
// at any step leaves the old state or the restored one, which Recover settles.
func Restore(ctx context.Context, l *Layout, id string, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	log := logger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Quiescer == nil {
		o.Quiescer = quiesce.None{}
	}
	if o.NodeID == "" {
		o.NodeID = DefaultNodeID
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{o.NodeID}
	}
	if err := validID(id); err != nil {
		return nil, err
	}
	if err := l.checkRestorableLayout(); err != nil {
		return nil, err
	}
	// A dry run is read-only: no operation lock, no recovery, no writes.
	s, err := l.openSession(ctx, log, !o.DryRun)
	if err != nil {
		return nil, err
	}
	defer s.close()

	// 1. Prove: who wrote the manifest, compatibility, the tree against the
	// manifest (a pass that also proves the seal), what would change (a
	// pass that also refuses hotsnap's own names).
	var snap *fsutil.Dir
	var mf *ManifestFile
	var dirs []manifest.Entry // From: the directories, finished after the fill
	if o.From != nil {
		if len(o.Include) > 0 {
			return nil, fmt.Errorf("%w: a partial restore (include) is from a local snapshot only: download it first", ErrInvalid)
		}
		if mf, dirs, err = s.fetchManifest(ctx, id, o.From); err != nil {
			return nil, err
		}
	} else if snap, mf, err = s.treeOf(id); err != nil {
		return nil, err
	} else {
		defer snap.Close()
	}
	defer mf.Close()
	m, err := mf.Header()
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{ID: id, DryRun: o.DryRun, IgnoredVersion: o.IgnoreVersion,
		PotentiallyInconsistent: m.PotentiallyInconsistent, Files: m.Totals.Files, Bytes: m.Totals.Bytes, Warnings: []string{}}
	target := manifest.Target{AppVersion: o.AppVersion, AppEngine: o.AppEngine, Nodes: o.Nodes, EncryptionKeyID: o.EncryptionKeyID}
	if err := manifest.CheckCompatible(m, target, o.IgnoreVersion); err != nil {
		return nil, fmt.Errorf("restore %s refused, nothing was changed: %w", id, err)
	}
	if o.IgnoreVersion {
		if verr := manifest.CheckVersion(m.AppVersion, o.AppVersion); verr != nil {
			res.Warnings = append(res.Warnings, "version check ignored (--ignore-version): "+verr.Error())
		}
	}
	if m.PotentiallyInconsistent {
		res.Warnings = append(res.Warnings, "the snapshot is flagged potentiallyInconsistent: writes were not stopped when it was taken")
	}
	if m.AppEngine == "" && o.AppEngine != "" {
		res.Warnings = append(res.Warnings, "the snapshot names no storage engine (taken by an older hotsnap, or without --app-engine): the engine rule was not checked")
	}
	var sel *selection
	if len(o.Include) > 0 {
		if sel, err = selectTops(ctx, mf, o.Include); err != nil {
			return nil, err
		}
		res.Include, res.Files, res.Bytes = o.Include, sel.files, sel.bytes
	}
	vo := manifest.VerifyOptions{Fast: o.FastVerify, Workers: o.Workers, Trusted: !l.AllowSharedBackups}
	p := progressOr(o.Progress)
	pdone := sync.OnceFunc(p.Done) // the verify phase ends once, where the re-hash ends
	defer func() { pdone() }()     // and on every early return
	if !o.FastVerify && o.From == nil {
		p.Start("verify", res.Files, res.Bytes)
		vo.OnHashed = func(n int64) { p.Add(1, n) }
	}
	if sel != nil {
		// A partial restore proves what it puts back (the manifest's seal
		// was proven by selectTops' pass).
		vo.Only = func(rel string) bool { return sel.scope(rel) != scopeOut }
	}
	var vr *manifest.VerifyResult
	var how string
	var proof *proofCheck // a fresh proof of the download, checked by the build
	// The full re-hash of a local snapshot runs beside the build of the
	// restore tree (step 2), which touches only hotsnap's private staging:
	// the swap waits for both, and a damaged snapshot removes the tree.
	beside := o.From == nil && !o.FastVerify && !o.DryRun
	if o.From != nil {
		// The fill checks every file against its BLAKE3 as its chunks
		// land.
		vr, how = &manifest.VerifyResult{}, "download"
		if o.DryRun { // only the manifest was fetched and proven
			how = "manifest"
		}
	} else if o.FastVerify && !o.DryRun {
		// Fast: the build checks each file's stat as it links or copies
		// it (fstree.CheckStat), in the private staging tree, before the
		// swap touches anything; a separate pass of stats first would
		// only do it twice. (Extra entries in the snapshot's tree are not
		// restored, and directories and symlinks are made from the
		// manifest.) A dry run has no build, so it stats here.
		vr, how = &manifest.VerifyResult{}, "fast"
	} else if beside {
		// A fresh proof of the download is checked by the build, by the
		// stat it takes of each file before linking it (and before its
		// link moves the inode's ctime); if a file is not covered, the
		// build stops and step 2 runs again with the re-hash beside it.
		if proof = s.proofFor(id, o.Now()); proof != nil {
			beside, how, vr = false, "proof", &manifest.VerifyResult{}
		}
	} else if vr, how, err = s.verifyForRestore(ctx, snap, mf, id, vo, o.Now()); err != nil {
		return nil, err
	}
	if !beside {
		pdone()
		res.Verified = how
		if !vr.OK() {
			return nil, fmt.Errorf("restore %s refused, nothing was changed: the snapshot is damaged: %w", id, vr.Err())
		}
	}
	phase := time.Now()
	step := func(name string) { // phase times, for --log-level debug
		log.Debug("restore phase", "phase", name, "ms", ms(time.Since(phase)))
		phase = time.Now()
	}
	step("prove")
	// Free space first: links cost none; the copy entries are written.
	// Counting them takes a pass over the manifest, needed only when the
	// filesystem could not hold every byte of the snapshot.
	need, what := int64(0), "restore "+id+" (its copied files)"
	if o.From != nil {
		need, what = res.Bytes, "restore "+id+" from the archive"
	} else if enoughSpace(s.data, res.Bytes, what) != nil {
		if need, err = copyNeed(mf, sel); err != nil {
			return nil, err
		}
	}
	if err := enoughSpace(s.data, need, what); err != nil {
		return nil, err
	}
	if o.DryRun {
		if res.Plan, err = s.planRestore(ctx, mf, sel); err != nil {
			return nil, err
		}
		res.DurationMs = ms(time.Since(start))
		return res, nil
	}

	// 2. Build the restored tree beside the data (the data dir is
	// untouched), and at the same time plan what changes (a walk of the
	// live tree) and, with the full re-hash, prove the snapshot: the swap
	// waits for all three, and the first to fail stops the others.
	if err := s.mkdirPriv(restoringName); err != nil {
		return nil, err
	}
	restoring := restoringName + "/" + id
	if err := s.priv.RemoveAll(restoring); err != nil {
		return nil, err
	}
	cleanup := func() {
		if err := s.priv.RemoveAll(restoring); err != nil {
			log.Warn("could not remove the restore tree; the next command will", "path", s.priv.Join(restoring), "err", err)
		}
	}
	damaged := func(err error) error {
		return fmt.Errorf("restore %s refused, nothing was changed: the snapshot is damaged: %w", id, err)
	}
	rehash := func(ctx context.Context) error {
		if !beside {
			return nil
		}
		// VerifyTree's default is twice the readers of the build: while
		// the build and the plan use the CPUs, more reads in flight keep
		// the disk busy (200,000 small files, dir by dir: 8.4-9.1 s with
		// once, 7.9-8.4 s with twice; docs/benchmarks.md).
		var err error
		if vr, how, err = s.verifyAsAsked(ctx, snap, mf, vo); err != nil {
			return err
		}
		if !vr.OK() {
			return damaged(vr.Err())
		}
		return nil
	}
	// A full restore from a local snapshot into an empty data dir adds
	// every entry: the build lists them as it reads the manifest, and no
	// pass of the manifest runs beside it for the plan (its CPU is the
	// build's, which links a file in two system calls).
	var adding *planAdding
	emptyData := o.From == nil && sel == nil && s.emptyData()
	planFn := func(ctx context.Context) (err error) {
		if emptyData {
			return nil
		}
		res.Plan, err = s.planRestore(ctx, mf, sel)
		return err
	}
	bp := progressOr(o.Progress)
	if beside {
		bp = noProgress{} // the re-hash reports, as "verify"
	}
	var buildDamage error // what the build's stat check found, with the re-hash beside
	build := func(ctx context.Context) error {
		bp.Start("build", res.Files, res.Bytes)
		defer bp.Done()
		var err error
		if o.From != nil {
			err = s.fillRestoreTree(ctx, restoring, mf, dirs, o.From)
		} else {
			err = s.buildRestoreTree(ctx, snap, restoring, mf, o.Include, o.Workers, beside, proof, adding, bp)
		}
		if errors.Is(err, ErrIncompatible) { // a snapshot entry on hotsnap's own places (planAdding)
			return err
		}
		if errors.Is(err, ErrVerifyFailed) {
			if beside { // the re-hash names the damage better: let it finish
				buildDamage = damaged(err)
				return nil
			}
			return damaged(err)
		}
		if err != nil {
			return fmt.Errorf("build restore tree: %w", err)
		}
		return nil
	}
	timed := func(name string, fn func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			t := time.Now()
			defer func() { log.Debug("restore part", "part", name, "ms", ms(time.Since(t))) }()
			return fn(ctx)
		}
	}
	step2 := func() error {
		if emptyData {
			adding = s.newPlanAdding() // before the build, which lists the entries into it
		}
		if err := together(ctx, timed("rehash", rehash), timed("plan", planFn), timed("build", build)); err != nil {
			return err
		}
		if adding != nil {
			res.Plan = adding.plan
		}
		return buildDamage
	}
	err = step2()
	if proof != nil && errors.Is(err, errUnproven) {
		// Not covered by the proof: the tree built so far goes, and the
		// snapshot is re-hashed beside a new build, as without a proof.
		log.Info("the download's proof no longer covers the snapshot: re-hashing it", "id", id, "why", err.Error())
		cleanup()
		proof, beside, bp, buildDamage = nil, true, noProgress{}, nil
		p.Start("verify", res.Files, res.Bytes)
		pdone = sync.OnceFunc(p.Done)
		err = step2()
	}
	if beside {
		pdone()
		res.Verified = how
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	step("build")
	crashPoint("restore.built")

	// 3. Stop the application, then hold its writes for the swap.
	if o.StopCmd != "" {
		if err := quiesce.RunHook(ctx, "stop", o.StopCmd, o.HookTimeout, l.DataDir, log); err != nil {
			cleanup()
			return nil, fmt.Errorf("%w; nothing was changed", err)
		}
	}
	stats, err := quiesce.Acquire(ctx, o.Quiescer, o.Lock)
	if err != nil {
		cleanup()
		err = fmt.Errorf("restore %s refused, nothing was changed: the write lock could not be held for the swap: %w", id, err)
		if o.StartCmd != "" {
			if serr := quiesce.RunHook(context.WithoutCancel(ctx), "start", o.StartCmd, o.HookTimeout, l.DataDir, log); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		return nil, err
	}
	held := quiesce.Hold(ctx, o.Quiescer)
	defer held.Resume()
	swapStart := time.Now()
	step("lock")
	failsafe, serr := s.swap(id, restoring, sel, o)
	step("swap")
	res.SwapMs = ms(time.Since(swapStart))
	rerr := held.Resume()
	res.LockHeldMs = ms(time.Since(stats.Acquired))
	if serr != nil {
		cleanup()
		return nil, serr
	}
	res.Restored = true
	if !o.NoFailsafe {
		res.Failsafe = failsafe
	}
	// 4. Start the application again.
	var errs []error
	if rerr != nil {
		errs = append(errs, fmt.Errorf("resume writes: %w", rerr))
	}
	if o.StartCmd != "" {
		if err := quiesce.RunHook(context.WithoutCancel(ctx), "start", o.StartCmd, o.HookTimeout, l.DataDir, log); err != nil {
			errs = append(errs, fmt.Errorf("the data dir was restored to %s, but %w", id, err))
		}
	}
	cleanup()
	res.DurationMs = ms(time.Since(start))
	log.Info("snapshot restored", "id", id, "failsafe", res.Failsafe, "swapMs", res.SwapMs)
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	return res, nil
}

// together runs fns at once and waits for them all; the first to fail
// stops the others (their context is cancelled). It returns the error of
// the first fn in the list that failed for a reason of its own, not
// because it was stopped, so the list is in the order of what an error
// should name first.
func together(ctx context.Context, fns ...func(context.Context) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			if errs[i] = par.Safely(func() error { return fn(cctx) }); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	var stopped error
	for _, err := range errs {
		switch {
		case err == nil:
		case ctx.Err() == nil && errors.Is(err, context.Canceled):
			stopped = err
		default:
			return err
		}
	}
	return stopped
}

// copyNeed is the bytes a restore writes: its copy entries in scope (links
// cost no space).
func copyNeed(mf *ManifestFile, sel *selection) (int64, error) {
	var n int64
	_, err := mf.Each(func(e *manifest.Entry) error {
		if e.Type == manifest.TypeFile && e.Capture == manifest.CaptureCopy && sel.scope(string(e.Path)) != scopeOut {
			n += e.Size
		}
		return nil
	})
	return n, err
}

// checkRestorableLayout refuses a backups dir nested below a top-level entry
// of the data dir: the swap moves top-level entries and would carry it along.
func (l *Layout) checkRestorableLayout() error {
	if fsutil.Within(l.DataDir, l.BackupsDir) && filepath.Dir(l.BackupsDir) != l.DataDir {
		return fmt.Errorf("%w: the backups dir %s lies inside a folder of the data dir; restore needs it directly in the data dir or outside it", ErrInvalid, l.BackupsDir)
	}
	return nil
}

// reservedNames are the top-level names of the data dir that hotsnap owns.
func (l *Layout) reservedNames() map[string]bool {
	r := map[string]bool{writegate.StateDirName: true}
	if filepath.Dir(l.BackupsDir) == l.DataDir {
		r[filepath.Base(l.BackupsDir)] = true
	}
	return r
}

// reservedTop refuses an entry that would land on hotsnap's own places.
func reservedTop(reserved map[string]bool, e *manifest.Entry) error {
	if top, _, _ := strings.Cut(string(e.Path), "/"); reserved[top] {
		return fmt.Errorf("%w: the snapshot holds %q, which is hotsnap's own place in this data dir; nothing was changed", ErrIncompatible, top)
	}
	return nil
}

// enoughSpace refuses what (which will write need bytes into d's
// filesystem) when that filesystem has less free, before anything is
// written.
func enoughSpace(d *fsutil.Dir, need int64, what string) error {
	var fs unix.Statfs_t
	if need <= 0 || unix.Fstatfs(d.Fd(), &fs) != nil {
		return nil
	}
	if free := int64(fs.Bavail) * int64(fs.Bsize); free < need {
		return fmt.Errorf("%w: %s needs %d bytes in %s, whose filesystem has %d free; free space first; nothing was changed", fsutil.ErrNoSpace, what, need, d.Path(), free)
	}
	return nil
}
