package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// Layout names the places hotsnap uses for one data dir. The paths are
// what the invoking user gave (and for messages); hotsnap reaches
// everything below them through directory descriptors (see session).
type Layout struct {
	DataDir    string // absolute, symlinks resolved
	BackupsDir string // <data-dir>/backups unless set
	// StateDir is <data-dir>/.hotsnap, shared with the application's
	// writers: the write-gate lock files. Its content is untrusted.
	StateDir string
	// PrivateDir is <state-dir>/private: hotsnap's own state (operation
	// lock, staging, restore trees, failsafe, trash, the restore journal),
	// a directory only the invoking user may write (docs/DESIGN.md, "Trust").
	PrivateDir string
	// AllowSharedBackups accepts a backups dir and snapshot dirs that other
	// users may write. A manifest must still be the invoking user's own.
	AllowSharedBackups bool
	// defaultBackups: BackupsDir is <data-dir>/backups and is reached
	// through the data dir (never following a symlink there).
	defaultBackups bool
}

// Names inside the state dirs and snapshots.
const (
	privateName   = "private"
	stagingName   = "staging"
	trashName     = "trash"
	opLockName    = "op.lock"
	dataName      = "data"
	manifestName  = "manifest.json"
	backupsName   = "backups"
	restoringName = "restoring"
	failsafeName  = "failsafe"
)

// NewLayout resolves and checks a data dir (it must exist and be a
// directory, and must not itself lie inside a backups dir). backupsDir may be
// empty for the default. Nothing is created.
func NewLayout(dataDir, backupsDir string) (*Layout, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("%w: no data dir given (--data-dir or HOTSNAP_DATA_DIR)", ErrInvalid)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data dir %s: %w (does not exist)", abs, ErrNotFound)
		}
		return nil, fmt.Errorf("data dir %s: %w", abs, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", real, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: data dir %s is not a directory", ErrInvalid, real)
	}
	state := filepath.Join(real, writegate.StateDirName)
	l := &Layout{DataDir: real, StateDir: state, PrivateDir: filepath.Join(state, privateName)}
	if backupsDir == "" {
		l.BackupsDir = filepath.Join(real, backupsName)
		l.defaultBackups = true
	} else {
		b, err := filepath.Abs(backupsDir)
		if err != nil {
			return nil, err
		}
		if r, err := filepath.EvalSymlinks(b); err == nil {
			b = r
		}
		l.BackupsDir = b
		l.defaultBackups = b == filepath.Join(real, backupsName)
	}
	if err := l.checkNotInsideBackups(); err != nil {
		return nil, err
	}
	return l, nil
}

// checkNotInsideBackups refuses a data dir that is a snapshot's tree or lies
// inside a backups dir: snapshotting it would capture snapshots of itself.
// (A check of the invoking user's flags, not a security boundary.)
func (l *Layout) checkNotInsideBackups() error {
	if l.BackupsDir == l.DataDir {
		return fmt.Errorf("%w: backups dir %s is the data dir", ErrInvalid, l.BackupsDir)
	}
	if fsutil.Within(l.BackupsDir, l.DataDir) {
		return fmt.Errorf("%w: data dir %s is inside the backups dir %s", ErrInvalid, l.DataDir, l.BackupsDir)
	}
	for child, dir := l.DataDir, filepath.Dir(l.DataDir); dir != child; child, dir = dir, filepath.Dir(dir) {
		if filepath.Base(child) == dataName {
			if _, err := os.Lstat(filepath.Join(dir, manifestName)); err == nil {
				return fmt.Errorf("%w: data dir %s is the tree of a snapshot (%s exists); restore it instead of snapshotting it", ErrInvalid, l.DataDir, filepath.Join(dir, manifestName))
			}
		}
		if filepath.Base(dir) == backupsName {
			if fi, err := os.Lstat(filepath.Join(filepath.Dir(dir), writegate.StateDirName)); err == nil && fi.IsDir() {
				return fmt.Errorf("%w: data dir %s is inside the backups dir %s of the data dir %s", ErrInvalid, l.DataDir, dir, filepath.Dir(dir))
			}
		}
	}
	return nil
}

// SnapshotDir is <backups-dir>/<id>, for messages and results.
func (l *Layout) SnapshotDir(id string) string { return filepath.Join(l.BackupsDir, id) }

// ManifestPath is <backups-dir>/<id>/manifest.json, for messages.
func (l *Layout) ManifestPath(id string) string {
	return filepath.Join(l.BackupsDir, id, manifestName)
}

// TreeDir is <backups-dir>/<id>/data, for messages.
func (l *Layout) TreeDir(id string) string { return filepath.Join(l.BackupsDir, id, dataName) }

func (l *Layout) stagingDir() string   { return filepath.Join(l.PrivateDir, stagingName) }
func (l *Layout) trashDir() string     { return filepath.Join(l.PrivateDir, trashName) }
func (l *Layout) restoringDir() string { return filepath.Join(l.PrivateDir, restoringName) }
func (l *Layout) failsafeDir() string  { return filepath.Join(l.PrivateDir, failsafeName) }

// validID refuses ids that are not <time>_<label>, so no id can name a path
// outside the backups dir.
func validID(id string) error {
	if !manifest.IDPattern.MatchString(id) || len(id) > 255 {
		return fmt.Errorf("%w: snapshot id %q is not of the form YYYY-MM-DDTHH.MM.SSZ_label", ErrInvalid, id)
	}
	return nil
}

// openData opens the data dir. Its path is the invoking user's own flag;
// everything below it is reached through this descriptor.
func (l *Layout) openData() (*fsutil.Dir, error) {
	d, err := fsutil.OpenDir(l.DataDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data dir %s: %w (does not exist)", l.DataDir, ErrNotFound)
		}
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return d, nil
}

// openState opens <data-dir>/.hotsnap (never through a symlink). With
// create, a missing one is made, owned by the invoking user, mode 0755:
// the application's writers only need to open the lock files in it.
func openState(data *fsutil.Dir, create bool) (*fsutil.Dir, error) {
	return quiesce.OpenStateDir(data, create)
}

// PrivateState opens hotsnap's private state dir, creating it: a
// quiesce.StateDir, where a quiescer that stops processes keeps its thaw
// record (the next command of the data dir thaws what a killed one
// stopped).
func (l *Layout) PrivateState() (*fsutil.Dir, error) {
	data, err := l.openData()
	if err != nil {
		return nil, err
	}
	defer data.Close()
	return l.openPrivate(data, true)
}

// NewQuiescer builds the quiescer c asks for over l's data dir
// (quiesce.New), its thaw records in l's private state dir.
func (l *Layout) NewQuiescer(ctx context.Context, c quiesce.Config, force bool) (quiesce.Quiescer, func(), error) {
	return quiesce.New(ctx, l.DataDir, l.PrivateState, c, force)
}

// openPrivate opens hotsnap's private state dir, <state-dir>/private,
// creating it (0700) with create. It refuses one that another user owns or
// may write: whatever is in it would then be another user's say-so.
func (l *Layout) openPrivate(data *fsutil.Dir, create bool) (*fsutil.Dir, error) {
	state, err := openState(data, create)
	if err != nil {
		return nil, err
	}
	defer state.Close()
	if create {
		if err := mkdirSync(state, privateName, 0o700); err != nil {
			return nil, fmt.Errorf("create private state dir: %w", err)
		}
	}
	d, err := state.OpenDir(privateName)
	if err != nil {
		return nil, fmt.Errorf("private state dir: %w", err)
	}
	st, err := d.Stat()
	if err == nil {
		err = checkPrivate(st, l.PrivateDir)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	if create {
		markDir(d, "private state dir")
	}
	return d, nil
}

// openBackups opens the backups dir: through the data dir for the default
// one (never following a symlink there), by its path otherwise (the
// invoking user's flag). With create, a missing one is made 0700. Unless
// AllowSharedBackups, one that others may write is refused. A missing
// backups dir without create is an error wrapping fs.ErrNotExist.
func (l *Layout) openBackups(data *fsutil.Dir, create bool) (*fsutil.Dir, error) {
	var d *fsutil.Dir
	var err error
	if l.defaultBackups {
		if create {
			if err := mkdirSync(data, backupsName, 0o700); err != nil {
				return nil, fmt.Errorf("create backups dir: %w", err)
			}
		}
		d, err = data.OpenDir(backupsName)
	} else {
		if create {
			if err := fsutil.MkdirAllSync(l.BackupsDir, 0o700); err != nil {
				return nil, fmt.Errorf("create backups dir: %w", err)
			}
		}
		d, err = fsutil.OpenDir(l.BackupsDir)
	}
	if err != nil {
		return nil, fmt.Errorf("backups dir: %w", err)
	}
	st, err := d.Stat()
	if err == nil && l.defaultBackups {
		err = foreignBackups(d, st, l.BackupsDir)
	}
	if err == nil && !l.AllowSharedBackups {
		err = checkTrusted(st, "backups dir", l.BackupsDir)
	}
	if err == nil {
		err = sameFilesystem(data, d, "the backups dir")
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	if create {
		markDir(d, "backups dir")
	}
	return d, nil
}

// The marker: an extended attribute hotsnap sets on the directories it
// owns (the backups dir, the private state dir). A capture or a restore
// that finds a marked directory inside the data dir knows such a directory
// was moved there, and refuses; a default backups dir without it was not
// made by hotsnap. As root the attribute is trusted.hotsnap, which only
// root can set, so the application cannot forge it; as another user it is
// user.hotsnap, on directories that user owns.
func markerAttr() string {
	if os.Geteuid() == 0 {
		return "trusted.hotsnap"
	}
	return "user.hotsnap"
}

// markerName is the attribute's name as messages show it.
var markerName = markerAttr()

// marked reports whether the directory rel of data (of stat st) carries
// hotsnap's marker and is the invoking user's or root's.
func marked(data *fsutil.Dir, rel string, st fsutil.Stat) bool {
	if !st.IsDir() || (st.UID != 0 && st.UID != uint32(os.Geteuid())) {
		return false
	}
	_, ok := data.Xattr(rel, markerName)
	return ok
}

// markDir marks d, one of hotsnap's directories, unless it is marked. A
// marker that cannot be set (a filesystem without extended attributes, a
// shared backups dir of another user's) is not an error: it only helps to
// tell a moved directory.
func markDir(d *fsutil.Dir, what string) {
	if _, ok := d.Xattr(".", markerName); ok {
		return
	}
	d.SetXattr(markerName, what)
}

// foreignBackups refuses a default backups dir that exists but that
// hotsnap did not make: no marker, and another owner than the invoking
// user or root, or entries that are not snapshots. It may be the
// application's own directory of that name, which hotsnap would otherwise
// leave out of every snapshot.
func foreignBackups(d *fsutil.Dir, st fsutil.Stat, path string) error {
	if _, ok := d.Xattr(".", markerName); ok {
		return nil
	}
	euid := uint32(os.Geteuid())
	why := ""
	if st.UID != euid && st.UID != 0 {
		why = fmt.Sprintf("it is owned by uid %d", st.UID)
	} else if names, err := d.Names("."); err != nil {
		return fmt.Errorf("backups dir: %w", err)
	} else {
		for _, n := range names {
			if validID(n) != nil && n != ".stage" && !strings.HasPrefix(n, ".") {
				why = fmt.Sprintf("it holds %s, which is no snapshot", fsutil.Quote(n))
				break
			}
		}
	}
	if why == "" {
		return nil // an older hotsnap's: adopted (marked by a mutating command)
	}
	return fmt.Errorf("%w: %s exists and is not hotsnap's (no attribute %s; %s): it may be the application's own directory, which hotsnap would leave out of every snapshot; give hotsnap another place with --backups-dir, or move it away",
		ErrInvalid, path, markerName, why)
}

// mkdirSync makes the directory name in parent unless it exists, and then
// fsyncs parent, so the new directory survives a crash.
func mkdirSync(parent *fsutil.Dir, name string, perm uint32) error {
	if err := parent.Mkdir(name, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return parent.Sync()
}

// sameFilesystem refuses b unless it is on a's filesystem (hard links and
// atomic renames need one).
func sameFilesystem(a, b *fsutil.Dir, what string) error {
	sa, err := a.Stat()
	if err != nil {
		return err
	}
	sb, err := b.Stat()
	if err != nil {
		return err
	}
	if sa.Dev != sb.Dev {
		return fmt.Errorf("%w: %s %s must be on the data dir's filesystem (st_dev %d != %d): hard links and atomic renames need one filesystem", ErrInvalid, what, b.Path(), sb.Dev, sa.Dev)
	}
	return nil
}

// checkFilesystems makes sure the backups dir (or, when it does not exist
// yet, its nearest existing ancestor) is on the data dir's filesystem. It
// writes nothing: it runs before anything is created.
func (l *Layout) checkFilesystems() error {
	p := l.BackupsDir
	for {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if err := fsutil.SameFilesystem(l.DataDir, p); err != nil {
		return fmt.Errorf("%w: the backups dir must be on the data dir's filesystem: %v", ErrInvalid, err)
	}
	return nil
}

// checkTrusted refuses what another user could have written: st (of what
// at path) must be owned by the invoking user or root and writable by no
// one else, as ssh's StrictModes asks of a user's own files.
func checkTrusted(st fsutil.Stat, what, path string) error {
	euid := uint32(os.Geteuid())
	if st.UID != euid && st.UID != 0 {
		return fmt.Errorf("%w: %s %s is owned by uid %d, not by uid %d (who runs hotsnap) or root: another user could have forged what it holds; fix: chown %d %s (after checking it)",
			ErrUntrusted, what, path, st.UID, euid, euid, path)
	}
	if w := st.Perm() & 0o022; w != 0 {
		who := "its group and others"
		switch w {
		case 0o020:
			who = "its group"
		case 0o002:
			who = "every user"
		}
		return fmt.Errorf("%w: %s %s has mode %04o: %s may write it and could forge what it holds; fix: chmod go-w %s (after checking it)",
			ErrUntrusted, what, path, st.Perm(), who, path)
	}
	return nil
}

// checkPrivate is checkTrusted for hotsnap's private state dir, which must
// be the invoking user's own (root's would not be writable by another).
func checkPrivate(st fsutil.Stat, path string) error {
	if !st.IsDir() {
		return fmt.Errorf("%w: private state dir %s is a %s", ErrUntrusted, path, st.TypeName())
	}
	if euid := uint32(os.Geteuid()); st.UID != euid {
		return fmt.Errorf("%w: private state dir %s is owned by uid %d, not by uid %d (who runs hotsnap): its content could be another user's; fix: move it away (it holds hotsnap's state: staging, failsafe, journal) and run hotsnap again",
			ErrUntrusted, path, st.UID, euid)
	}
	return checkTrusted(st, "private state dir", path)
}

// isNotExist reports a missing entry, whether from the os package or a
// raw errno.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT)
}
