package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hotsnap/hotsnap/fsutil"
)

const journalName = "restore.journal"

// journal records a restore's swap so that a crash at any step can be
// finished (rolled forward) or undone (rolled back). Every move is a rename
// of one top-level entry, and each name's progress is derivable from where
// it exists, so replaying either direction is idempotent:
//
//	old name N, not yet moved out:   data/N,            not failsafe/N
//	moved out:                       failsafe/N,        not data/N (unless moved in)
//	new name M, moved in:            data/M,            not restoring/M
//
// All moves out happen before any move in.
type journal struct {
	ID        string   `json:"id"`
	Failsafe  string   `json:"failsafe"`  // dir receiving the old entries
	Restoring string   `json:"restoring"` // dir holding the new entries
	MoveOut   []string `json:"moveOut"`   // top-level names of the old state
	MoveIn    []string `json:"moveIn"`    // top-level names of the restored state
	// OutDone is set (journal rewritten) once every old entry is in the
	// failsafe: from then on a name in the data dir can only be a new entry.
	OutDone bool `json:"outDone"`
	// StartCmd is remembered so recover can tell the user to start the
	// application if a crash prevented it.
	StartCmd string `json:"startCmd,omitempty"`
}

func (l *Layout) journalPath() string { return filepath.Join(l.StateDir, journalName) }

func (l *Layout) writeJournal(j *journal) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(l.journalPath(), b, 0o644)
}

func (l *Layout) readJournal() (*journal, error) {
	b, err := os.ReadFile(l.journalPath())
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("restore journal %s is unreadable: %w", l.journalPath(), err)
	}
	for _, n := range append(append([]string{}, j.MoveOut...), j.MoveIn...) {
		if n == "" || n == "." || n == ".." || filepath.Base(n) != n {
			return nil, fmt.Errorf("restore journal %s names a bad entry %q", l.journalPath(), n)
		}
	}
	if !fsutil.Within(l.StateDir, j.Failsafe) || !fsutil.Within(l.StateDir, j.Restoring) {
		return nil, fmt.Errorf("restore journal %s points outside %s", l.journalPath(), l.StateDir)
	}
	return &j, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// rollForward finishes the swap. It needs every new entry to be either
// still in restoring/ or already in the data dir.
func (l *Layout) rollForward(j *journal) error {
	for _, n := range j.MoveIn {
		if !exists(filepath.Join(j.Restoring, n)) && !exists(filepath.Join(l.DataDir, n)) {
			return fmt.Errorf("restored entry %q is neither in %s nor in the data dir", n, j.Restoring)
		}
	}
	if !j.OutDone {
		for i, n := range j.MoveOut {
			src, dst := filepath.Join(l.DataDir, n), filepath.Join(j.Failsafe, n)
			if exists(dst) || !exists(src) {
				continue
			}
			if err := os.Rename(src, dst); err != nil {
				return fmt.Errorf("move %s to the failsafe: %w", src, err)
			}
			crashPoint(fmt.Sprintf("restore.out.%d", i))
		}
		if err := syncDirs(l.DataDir, j.Failsafe); err != nil {
			return err
		}
		j.OutDone = true
		if err := l.writeJournal(j); err != nil {
			return err
		}
		crashPoint("restore.out.done")
	}
	for i, n := range j.MoveIn {
		src, dst := filepath.Join(j.Restoring, n), filepath.Join(l.DataDir, n)
		if !exists(src) {
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("move %s into the data dir: %w", n, err)
		}
		crashPoint(fmt.Sprintf("restore.in.%d", i))
	}
	return syncDirs(l.DataDir, j.Restoring)
}

// rollBack undoes the swap: new entries go back to restoring/, old ones
// come back from the failsafe.
func (l *Layout) rollBack(j *journal) error {
	for _, n := range j.MoveIn {
		src, dst := filepath.Join(l.DataDir, n), filepath.Join(j.Restoring, n)
		if exists(dst) || !exists(src) {
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("move %s back out of the data dir: %w", n, err)
		}
	}
	if err := syncDirs(l.DataDir, j.Restoring); err != nil {
		return err
	}
	for _, n := range j.MoveOut {
		src, dst := filepath.Join(j.Failsafe, n), filepath.Join(l.DataDir, n)
		if !exists(src) || exists(dst) {
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("move %s back from the failsafe: %w", n, err)
		}
	}
	return syncDirs(l.DataDir, j.Failsafe)
}

// recoverJournal settles an interrupted restore: forward when the restored
// tree is whole (it was verified and fsynced before the journal was
// written), back otherwise. It returns a sentence for the user.
func (l *Layout) recoverJournal(log *slog.Logger) (string, error) {
	j, err := l.readJournal()
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	msg := ""
	if ferr := l.rollForward(j); ferr != nil {
		logger(log).Warn("cannot finish the interrupted restore; rolling it back", "id", j.ID, "err", ferr)
		if berr := l.rollBack(j); berr != nil {
			return "", fmt.Errorf("interrupted restore of %s: cannot roll forward (%v) nor back (%w); the journal %s and the failsafe %s are kept for manual repair", j.ID, ferr, berr, l.journalPath(), j.Failsafe)
		}
		msg = fmt.Sprintf("rolled back the interrupted restore of %s: the data dir holds its state from before the restore", j.ID)
	} else {
		msg = fmt.Sprintf("rolled forward the interrupted restore of %s: the data dir holds the snapshot; the previous state is in %s", j.ID, j.Failsafe)
	}
	if j.StartCmd != "" {
		msg += fmt.Sprintf("; the application was stopped for the restore and is not started again by recover: run the start command (%s)", j.StartCmd)
	}
	if err := os.Remove(l.journalPath()); err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(l.StateDir); err != nil {
		return "", err
	}
	logger(log).Warn(msg)
	return msg, nil
}

func syncDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := fsutil.SyncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
