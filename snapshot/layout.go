package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// Layout names the places hotsnap uses for one data dir.
type Layout struct {
	DataDir    string // absolute, symlinks resolved
	BackupsDir string // <data-dir>/backups unless set
	StateDir   string // <data-dir>/.hotsnap
}

// Names inside the state dir.
const (
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
	l := &Layout{DataDir: real, StateDir: filepath.Join(real, writegate.StateDirName)}
	if backupsDir == "" {
		l.BackupsDir = filepath.Join(real, backupsName)
	} else {
		b, err := filepath.Abs(backupsDir)
		if err != nil {
			return nil, err
		}
		if r, err := filepath.EvalSymlinks(b); err == nil {
			b = r
		}
		l.BackupsDir = b
	}
	if err := l.checkNotInsideBackups(); err != nil {
		return nil, err
	}
	return l, nil
}

// checkNotInsideBackups refuses a data dir that is a snapshot's tree or lies
// inside a backups dir: snapshotting it would capture snapshots of itself.
func (l *Layout) checkNotInsideBackups() error {
	if l.BackupsDir == l.DataDir {
		return fmt.Errorf("%w: backups dir %s is the data dir", ErrInvalid, l.BackupsDir)
	}
	if fsutil.Within(l.BackupsDir, l.DataDir) {
		return fmt.Errorf("%w: data dir %s is inside the backups dir %s", ErrInvalid, l.DataDir, l.BackupsDir)
	}
	for child, dir := l.DataDir, filepath.Dir(l.DataDir); dir != child; child, dir = dir, filepath.Dir(dir) {
		if filepath.Base(child) == dataName {
			if _, err := os.Stat(filepath.Join(dir, manifestName)); err == nil {
				return fmt.Errorf("%w: data dir %s is the tree of a snapshot (%s exists); restore it instead of snapshotting it", ErrInvalid, l.DataDir, filepath.Join(dir, manifestName))
			}
		}
		if filepath.Base(dir) == backupsName {
			if fi, err := os.Stat(filepath.Join(filepath.Dir(dir), writegate.StateDirName)); err == nil && fi.IsDir() {
				return fmt.Errorf("%w: data dir %s is inside the backups dir %s of the data dir %s", ErrInvalid, l.DataDir, dir, filepath.Dir(dir))
			}
		}
	}
	return nil
}

// SnapshotDir is <backups-dir>/<id>.
func (l *Layout) SnapshotDir(id string) string { return filepath.Join(l.BackupsDir, id) }

// ManifestPath is <backups-dir>/<id>/manifest.json.
func (l *Layout) ManifestPath(id string) string {
	return filepath.Join(l.BackupsDir, id, manifestName)
}

// TreeDir is <backups-dir>/<id>/data.
func (l *Layout) TreeDir(id string) string { return filepath.Join(l.BackupsDir, id, dataName) }

func (l *Layout) stagingDir() string   { return filepath.Join(l.StateDir, stagingName) }
func (l *Layout) trashDir() string     { return filepath.Join(l.StateDir, trashName) }
func (l *Layout) restoringDir() string { return filepath.Join(l.StateDir, restoringName) }
func (l *Layout) failsafeDir() string  { return filepath.Join(l.StateDir, failsafeName) }

// checkFilesystems makes sure the backups dir (or, when it does not exist
// yet, its nearest existing ancestor) and the state dir are on the data
// dir's filesystem. It writes nothing.
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
	if _, err := os.Lstat(l.StateDir); err == nil {
		if err := fsutil.SameFilesystem(l.DataDir, l.StateDir); err != nil {
			return fmt.Errorf("%w: %s must be on the data dir's filesystem: %v", ErrInvalid, l.StateDir, err)
		}
	}
	return nil
}

// validID refuses ids that are not <time>_<label>, so no id can name a path
// outside the backups dir.
func validID(id string) error {
	if !manifest.IDPattern.MatchString(id) || len(id) > 255 {
		return fmt.Errorf("%w: snapshot id %q is not of the form YYYY-MM-DDTHH.MM.SSZ_label", ErrInvalid, id)
	}
	return nil
}
