package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// The target deployment, checked against the snapshot (DESIGN 3.3).
	AppVersion      string
	EncryptionKeyID string
	// Nodes is the target topology; empty means just NodeID (default DefaultNodeID).
	NodeID string
	Nodes  []string
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
	// NoQuiescer. Lock is its retry policy.
	Quiescer Quiescer
	Lock     LockPolicy
	// StopCmd runs (sh -c) before the swap and must succeed; StartCmd runs after it.
	StopCmd, StartCmd string
	// HookTimeout bounds each hook; 0 means 5 minutes.
	HookTimeout time.Duration
	Workers     int
	Logger      *slog.Logger
	Now         func() time.Time
}

// RestorePlan says what a restore changes in the data dir.
type RestorePlan struct {
	Added        []string `json:"added"`
	Removed      []string `json:"removed"`
	Changed      []string `json:"changed"`
	AddedBytes   int64    `json:"addedBytes"`   // bytes of files added or changed
	RemovedBytes int64    `json:"removedBytes"` // bytes of files removed or replaced
}

// RestoreResult reports a restore. The JSON form is the CLI's contract.
type RestoreResult struct {
	ID                      string       `json:"id"`
	DryRun                  bool         `json:"dryRun"`
	Restored                bool         `json:"restored"`
	Verified                string       `json:"verified"` // "full" (re-hashed) or "fast" (stat)
	IgnoredVersion          bool         `json:"ignoredVersion"`
	PotentiallyInconsistent bool         `json:"potentiallyInconsistent"`
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
var ErrHook = errors.New("hook command failed")

// Restore puts snapshot id back as the data dir (DESIGN 3.5). Nothing in the
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
		o.Quiescer = NoQuiescer{}
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
	var op *opLock
	var err error
	if o.DryRun {
		l.recoverIfIdle(ctx, log)
	} else {
		if op, err = l.lockOp(ctx, DefaultOpLockWait); err != nil {
			return nil, err
		}
		defer op.release()
		if _, err := l.recoverLocked(ctx, log); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
	}

	// 1. Prove: seal, compatibility, tree.
	m, err := ReadManifest(l, id)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{ID: id, DryRun: o.DryRun, Verified: "full", IgnoredVersion: o.IgnoreVersion,
		PotentiallyInconsistent: m.PotentiallyInconsistent, Files: m.Totals.Files, Bytes: m.Totals.Bytes, Warnings: []string{}}
	if o.FastVerify {
		res.Verified = "fast"
	}
	target := manifest.Target{AppVersion: o.AppVersion, Nodes: o.Nodes, EncryptionKeyID: o.EncryptionKeyID}
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
	if err := checkRestorableNames(l, m); err != nil {
		return nil, err
	}
	vr, err := manifest.VerifyTree(ctx, l.TreeDir(id), m, manifest.VerifyOptions{Fast: o.FastVerify, Workers: o.Workers})
	if err != nil {
		return nil, err
	}
	if !vr.OK() {
		return nil, fmt.Errorf("restore %s refused, nothing was changed: the snapshot is damaged: %w", id, vr.Err())
	}
	plan, err := planRestore(l, m)
	if err != nil {
		return nil, err
	}
	res.Plan = plan
	if o.DryRun {
		res.DurationMs = ms(time.Since(start))
		return res, nil
	}

	// 2. Build the restored tree beside the data (the data dir is untouched).
	restoring := filepath.Join(l.restoringDir(), id)
	if err := fsutil.MkdirAllSync(l.restoringDir(), 0o755); err != nil {
		return nil, err
	}
	if err := removeTree(restoring); err != nil {
		return nil, err
	}
	cleanup := func() {
		if err := removeTree(restoring); err != nil {
			log.Warn("could not remove the restore tree; the next command will", "path", restoring, "err", err)
		}
	}
	if err := buildRestoreTree(ctx, l.TreeDir(id), restoring, m, o.Workers); err != nil {
		cleanup()
		return nil, fmt.Errorf("build restore tree: %w", err)
	}
	crashPoint("restore.built")

	// 3. Stop the application, then hold its writes for the swap.
	if o.StopCmd != "" {
		if err := runHook(ctx, "stop", o.StopCmd, o.HookTimeout, l.DataDir, log); err != nil {
			cleanup()
			return nil, fmt.Errorf("%w; nothing was changed", err)
		}
	}
	stats, err := Acquire(ctx, o.Quiescer, o.Lock)
	if err != nil {
		cleanup()
		err = fmt.Errorf("restore %s refused, nothing was changed: the write lock could not be held for the swap: %w", id, err)
		if o.StartCmd != "" {
			if serr := runHook(context.WithoutCancel(ctx), "start", o.StartCmd, o.HookTimeout, l.DataDir, log); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		return nil, err
	}
	swapStart := time.Now()
	failsafe, serr := l.swap(id, restoring, o)
	res.SwapMs = ms(time.Since(swapStart))
	rerr := o.Quiescer.Resume(context.WithoutCancel(ctx))
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
		if err := runHook(context.WithoutCancel(ctx), "start", o.StartCmd, o.HookTimeout, l.DataDir, log); err != nil {
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

func checkRestorableNames(l *Layout, m *manifest.Manifest) error {
	reserved := l.reservedNames()
	for _, e := range m.Entries {
		top := strings.SplitN(string(e.Path), "/", 2)[0]
		if reserved[top] {
			return fmt.Errorf("%w: the snapshot holds %q, which is hotsnap's own place in this data dir; nothing was changed", ErrIncompatible, top)
		}
	}
	return nil
}

// swap runs the journaled swap; the caller holds the write lock. It returns
// the failsafe dir holding the previous state.
func (l *Layout) swap(id, restoring string, o RestoreOptions) (string, error) {
	reserved := l.reservedNames()
	var out []string
	ents, err := os.ReadDir(l.DataDir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if !reserved[e.Name()] {
			out = append(out, e.Name())
		}
	}
	var in []string
	if ents, err = os.ReadDir(restoring); err != nil {
		return "", err
	}
	for _, e := range ents {
		in = append(in, e.Name())
	}
	if err := fsutil.MkdirAllSync(l.failsafeDir(), 0o755); err != nil {
		return "", err
	}
	failsafe, err := os.MkdirTemp(l.failsafeDir(), o.Now().UTC().Format(IDTimeLayout)+"_before_"+id+"_")
	if err != nil {
		return "", fmt.Errorf("create failsafe: %w", err)
	}
	j := &journal{ID: id, Failsafe: failsafe, Restoring: restoring, MoveOut: out, MoveIn: in, StartCmd: o.StartCmd}
	if err := l.writeJournal(j); err != nil {
		os.Remove(failsafe)
		return "", fmt.Errorf("write restore journal: %w", err)
	}
	crashPoint("restore.journal")
	if err := l.rollForward(j); err != nil {
		if berr := l.rollBack(j); berr != nil {
			return "", fmt.Errorf("swap failed (%v) and so did the roll back (%w): the journal %s is kept; run `hotsnap recover`", err, berr, l.journalPath())
		}
		os.Remove(l.journalPath())
		os.Remove(failsafe)
		return "", fmt.Errorf("swap failed and was rolled back, the data dir is as before: %w", err)
	}
	crashPoint("restore.swapped")
	if err := os.Remove(l.journalPath()); err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(l.StateDir); err != nil {
		return "", err
	}
	crashPoint("restore.done")
	// Keep only this restore's failsafe (or none).
	olds, _ := os.ReadDir(l.failsafeDir())
	for _, e := range olds {
		p := filepath.Join(l.failsafeDir(), e.Name())
		if p != failsafe || o.NoFailsafe {
			removeTree(p)
		}
	}
	return failsafe, nil
}

// buildRestoreTree recreates the snapshot's tree at dst: linked entries are
// linked (the snapshot's inode, as at create), copied and reflinked entries
// are copied afresh, link groups are kept, then modes, owners (where
// permitted) and mtimes are set. Symlinks are created, never followed.
func buildRestoreTree(ctx context.Context, snap, dst string, m *manifest.Manifest, workers int) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	copies := map[int]string{} // link group -> the first copy's path
	for i := range m.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &m.Entries[i]
		rel := filepath.FromSlash(string(e.Path))
		p := filepath.Join(dst, rel)
		if err := MakeDirOrSymlink(p, e); err != nil {
			return err
		}
		if e.Type == manifest.TypeFile {
			if e.Capture == manifest.CaptureLink {
				if err := os.Link(filepath.Join(snap, rel), p); err != nil {
					return err
				}
				continue
			}
			if first, ok := copies[e.LinkGroup]; ok && e.LinkGroup != 0 {
				if err := os.Link(first, p); err != nil {
					return err
				}
				continue
			}
			if err := CopyEntry(filepath.Join(snap, rel), p, e); err != nil {
				return err
			}
			if e.LinkGroup != 0 {
				copies[e.LinkGroup] = p
			}
		}
	}
	// Directories last: modes that forbid writing, mtimes that creating
	// entries would disturb.
	if err := FinishDirs(dst, m.Entries); err != nil {
		return err
	}
	if err := syncTree(ctx, dst, m.Entries, workers, false); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(dst))
}

// CopyEntry makes dst a private copy of src (a clone where the filesystem
// can) with the entry's mode, owner (where permitted) and mtime.
func CopyEntry(src, dst string, e *manifest.Entry) error {
	if err := fsutil.Reflink(src, dst, 0o600); err != nil {
		if !errors.Is(err, fsutil.ErrReflinkUnsupported) {
			return err
		}
		if _, err := fsutil.CopyFile(src, dst, 0o600); err != nil {
			return err
		}
	}
	_ = os.Lchown(dst, int(e.UID), int(e.GID))
	if err := unix.Chmod(dst, e.Mode); err != nil {
		return err
	}
	return fsutil.SetMtime(dst, e.MtimeNs)
}

// planRestore compares the live data dir with the manifest.
func planRestore(l *Layout, m *manifest.Manifest) (*RestorePlan, error) {
	plan := &RestorePlan{Added: []string{}, Removed: []string{}, Changed: []string{}}
	reserved := l.reservedNames()
	live := map[string]fsutil.Stat{}
	// The application may still be writing (the plan is made before the
	// lock): entries that vanish during the walk are simply not counted.
	err := filepath.WalkDir(l.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != l.DataDir {
				return nil
			}
			return err
		}
		if p == l.DataDir {
			return nil
		}
		rel, _ := filepath.Rel(l.DataDir, p)
		rel = filepath.ToSlash(rel)
		if reserved[rel] {
			return filepath.SkipDir
		}
		st, err := fsutil.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		live[rel] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range m.Entries {
		p := string(e.Path)
		st, ok := live[p]
		if !ok {
			plan.Added = append(plan.Added, p)
			if e.Type == manifest.TypeFile {
				plan.AddedBytes += e.Size
			}
			continue
		}
		delete(live, p)
		changed := st.TypeName() != e.Type
		if !changed {
			switch e.Type {
			case manifest.TypeFile:
				sameInode := st.Dev == e.Inode.Dev && st.Ino == e.Inode.Ino
				changed = !sameInode && (st.Size != e.Size || st.MtimeNs != e.MtimeNs)
			case manifest.TypeSymlink:
				t, _ := os.Readlink(filepath.Join(l.DataDir, filepath.FromSlash(p)))
				changed = manifest.Name(t) != e.Target
			case manifest.TypeDir:
				changed = st.Perm() != e.Mode
			}
		}
		if changed {
			plan.Changed = append(plan.Changed, p)
			if e.Type == manifest.TypeFile {
				plan.AddedBytes += e.Size
			}
			if st.IsRegular() {
				plan.RemovedBytes += st.Size
			}
		}
	}
	for p, st := range live {
		plan.Removed = append(plan.Removed, p)
		if st.IsRegular() {
			plan.RemovedBytes += st.Size
		}
	}
	sort.Strings(plan.Removed)
	return plan, nil
}

// runHook runs a stop or start command through sh -c with a timeout.
func runHook(ctx context.Context, what, cmdline string, timeout time.Duration, dataDir string, log *slog.Logger) error {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	r, err := runShell(ctx, cmdline, timeout, []string{"HOTSNAP_DATA_DIR=" + dataDir}, true)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s command %q: %v", ErrHook, what, cmdline, err)
	case r.TimedOut:
		return fmt.Errorf("%w: %s command %q did not finish within %s", ErrHook, what, cmdline, timeout)
	case r.Code != 0 && r.Output != "":
		return fmt.Errorf("%w: %s command %q exited with status %d: %s", ErrHook, what, cmdline, r.Code, r.Output)
	case r.Code != 0:
		return fmt.Errorf("%w: %s command %q exited with status %d", ErrHook, what, cmdline, r.Code)
	}
	logger(log).Info(what+" command ran", "cmd", cmdline)
	return nil
}

// RevertOptions tune Revert.
type RevertOptions struct {
	Quiescer Quiescer
	Lock     LockPolicy
	Logger   *slog.Logger
	Now      func() time.Time
}

// Revert puts the state a restore moved aside (its failsafe, as returned in
// RestoreResult.Failsafe) back as the data dir, with the same journaled swap
// under the write lock. A cluster restore uses it when another node failed,
// so no node is left restored alone. The state being replaced goes to a new
// failsafe, whose path is returned.
func Revert(ctx context.Context, l *Layout, failsafe string, o RevertOptions) (string, error) {
	log := logger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Quiescer == nil {
		o.Quiescer = NoQuiescer{}
	}
	if !filepath.IsAbs(failsafe) || filepath.Dir(filepath.Clean(failsafe)) != l.failsafeDir() {
		return "", fmt.Errorf("%w: %q is not a failsafe of this data dir (want a folder of %s)", ErrInvalid, failsafe, l.failsafeDir())
	}
	failsafe = filepath.Clean(failsafe)
	op, err := l.lockOp(ctx, DefaultOpLockWait)
	if err != nil {
		return "", err
	}
	defer op.release()
	if _, err := l.recoverLocked(ctx, log); err != nil {
		return "", fmt.Errorf("recover: %w", err)
	}
	if fi, err := os.Lstat(failsafe); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("failsafe %s: %w", failsafe, ErrNotFound)
	}
	stats, err := Acquire(ctx, o.Quiescer, o.Lock)
	if err != nil {
		return "", fmt.Errorf("revert refused, nothing was changed: the write lock could not be held for the swap: %w", err)
	}
	next, serr := l.swap("revert", failsafe, RestoreOptions{Now: o.Now})
	rerr := o.Quiescer.Resume(context.WithoutCancel(ctx))
	if serr != nil {
		return "", serr
	}
	log.Info("restore reverted", "failsafe", failsafe, "lockHeldMs", ms(time.Since(stats.Acquired)))
	if rerr != nil {
		return next, fmt.Errorf("resume writes: %w", rerr)
	}
	return next, nil
}
