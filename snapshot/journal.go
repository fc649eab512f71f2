package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

const (
	journalName = "restore.journal"
	// journalVersion is written in every journal and required on reading.
	journalVersion = 2
	// maxJournal bounds the journal read back: it names the top-level
	// entries of a data dir, so even a flat dir of millions fits.
	maxJournal = 256 << 20
)

// journal records a restore's swap so that a crash at any step can be
// finished (rolled forward) or undone (rolled back). Every move is a rename
// of one top-level entry, and each name's progress is derivable from where
// it exists, so replaying either direction is idempotent:
//
//	old name N, not yet moved out:   data/N,            not failsafe/N
//	moved out:                       failsafe/N,        not data/N (unless moved in)
//	new name M, moved in:            data/M,            not source/M
//
// All moves out happen before any move in. A partial restore's journal
// names relative paths instead of top-level names (its units, none below
// another); their parents exist in the data dir, and are made in the
// failsafe as the moves need them. The journal lives in the
// private state dir; every name in it is still checked on reading
// (checkJournal): single path components, in hotsnap's own places only.
type journal struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Failsafe is the folder of <private>/failsafe/ receiving the old entries.
	Failsafe string `json:"failsafe"`
	// Source is where the new entries come from, relative to the private
	// state dir: "restoring/<folder>" (a restore) or "failsafe/<folder>"
	// (a revert).
	Source  string   `json:"source"`
	MoveOut []string `json:"moveOut"` // top-level names of the old state
	MoveIn  []string `json:"moveIn"`  // top-level names of the restored state
	// Partial marks a partial restore: the names are relative paths.
	Partial bool `json:"partial,omitempty"`
	// OutDone is set (journal rewritten) once every old entry is in the
	// failsafe: from then on a name in the data dir can only be a new entry.
	OutDone bool `json:"outDone"`
	// StartCmd is remembered so recover can tell the user to start the
	// application if a crash prevented it.
	StartCmd string `json:"startCmd,omitempty"`
}

func (j *journal) failsafe() string { return failsafeName + "/" + j.Failsafe }

func (s *session) journalPath() string { return s.priv.Join(journalName) }

func (s *session) writeJournal(j *journal) error {
	j.Version = journalVersion
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.priv.WriteFileAtomic(journalName, b, 0o600)
}

// readJournal reads and checks the journal; a missing one is an error
// wrapping fs.ErrNotExist.
func (s *session) readJournal() (*journal, error) {
	f, st, err := s.priv.OpenRegular(journalName)
	if err != nil {
		if isNotExist(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: restore journal: %v", ErrUntrusted, err)
	}
	defer f.Close()
	if err := checkTrusted(st, "restore journal", s.journalPath()); err != nil {
		return nil, err
	}
	if st.Nlink != 1 {
		return nil, fmt.Errorf("%w: restore journal %s has %d links: hotsnap writes it with one", ErrUntrusted, s.journalPath(), st.Nlink)
	}
	b, err := readSmall(f, maxJournal)
	if err != nil {
		return nil, fmt.Errorf("%w: restore journal %s: %v", ErrUntrusted, s.journalPath(), err)
	}
	var j journal
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: restore journal %s is unreadable: %v", ErrUntrusted, s.journalPath(), err)
	}
	if err := s.checkJournal(&j); err != nil {
		return nil, fmt.Errorf("%w: restore journal %s refused, nothing was moved: %v", ErrUntrusted, s.journalPath(), err)
	}
	return &j, nil
}

// checkJournal refuses a journal that names anything but single entries of
// the data dir's top level and folders of hotsnap's own restoring/ and
// failsafe/ places.
func (s *session) checkJournal(j *journal) error {
	if j.Version != journalVersion {
		return fmt.Errorf("version %d, want %d", j.Version, journalVersion)
	}
	if err := validName(j.Failsafe); err != nil {
		return fmt.Errorf("failsafe: %v", err)
	}
	dir, name, ok := strings.Cut(j.Source, "/")
	if !ok || (dir != restoringName && dir != failsafeName) {
		return fmt.Errorf("source %q is not in %s/ or %s/", j.Source, restoringName, failsafeName)
	}
	if err := validName(name); err != nil {
		return fmt.Errorf("source: %v", err)
	}
	if dir == failsafeName && name == j.Failsafe {
		return fmt.Errorf("source and failsafe are the same folder %q", name)
	}
	reserved := s.l.reservedNames()
	for _, list := range [][]string{j.MoveOut, j.MoveIn} {
		seen := make(map[string]bool, len(list))
		for _, n := range list {
			if err := s.checkJournalName(j, n); err != nil {
				return err
			}
			top, _, _ := strings.Cut(n, "/")
			if reserved[top] {
				return fmt.Errorf("it names %q, which is hotsnap's own", n)
			}
			if seen[n] {
				return fmt.Errorf("it names %q twice", n)
			}
			seen[n] = true
		}
		// A partial restore's units are disjoint: in path order, a path
		// below another would follow it (or its siblings sorting before '/').
		for n := range seen {
			for d := path.Dir(n); d != "."; d = path.Dir(d) {
				if seen[d] {
					return fmt.Errorf("it names %q below %q", n, d)
				}
			}
		}
	}
	return nil
}

// checkJournalName accepts a top-level name, or for a partial restore a
// clean relative path of such names.
func (s *session) checkJournalName(j *journal, n string) error {
	if !j.Partial {
		return validName(n)
	}
	if err := fsutil.ValidRelPath(n); err != nil {
		return err
	}
	for _, c := range strings.Split(n, "/") {
		if err := validName(c); err != nil {
			return err
		}
	}
	return nil
}

// validName accepts a single path component.
func validName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") || len(n) > 255 {
		return fmt.Errorf("%q is not a single file name", n)
	}
	return nil
}

// rollForward finishes the swap. It needs every new entry to be either
// still in the source or already in the data dir.
func (s *session) rollForward(j *journal) error {
	for _, n := range j.MoveIn {
		if !s.priv.Exists(j.Source+"/"+n) && !s.data.Exists(n) {
			return fmt.Errorf("restored entry %q is neither in %s nor in the data dir", n, s.priv.Join(j.Source))
		}
	}
	if !j.OutDone {
		for i, n := range j.MoveOut {
			dst := j.failsafe() + "/" + n
			if s.priv.Exists(dst) || !s.data.Exists(n) {
				continue
			}
			if err := s.mkdirsPriv(j.failsafe(), path.Dir(n)); err != nil {
				return err
			}
			if err := s.data.Rename(n, s.priv, dst, true); err != nil {
				return fmt.Errorf("move %s to the failsafe: %w", n, err)
			}
			crashPoint(fmt.Sprintf("restore.out.%d", i))
		}
		if err := s.syncMoved(j.failsafe(), j.MoveOut); err != nil {
			return err
		}
		j.OutDone = true
		if err := s.writeJournal(j); err != nil {
			return err
		}
		crashPoint("restore.out.done")
	}
	for i, n := range j.MoveIn {
		src := j.Source + "/" + n
		if !s.priv.Exists(src) {
			continue
		}
		if err := s.priv.Rename(src, s.data, n, true); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("move %s into the data dir: %w: %s appeared in the data dir during the swap, so a process is still writing there (one that does not take the write gate, which the default quiescer waits for); stop the application first (--stop-cmd) or hold it with --quiesce freeze (or signal, exec, http)",
					fsutil.Quote(n), err, fsutil.Quote(n))
			}
			return fmt.Errorf("move %s into the data dir: %w", n, err)
		}
		crashPoint(fmt.Sprintf("restore.in.%d", i))
	}
	return s.syncMoved(j.Source, j.MoveIn)
}

// rollBack undoes the swap: new entries go back to the source, old ones
// come back from the failsafe.
func (s *session) rollBack(j *journal) error {
	for _, n := range j.MoveIn {
		dst := j.Source + "/" + n
		if s.priv.Exists(dst) || !s.data.Exists(n) {
			continue
		}
		if err := s.data.Rename(n, s.priv, dst, true); err != nil {
			return fmt.Errorf("move %s back out of the data dir: %w", n, err)
		}
	}
	if err := s.syncMoved(j.Source, j.MoveIn); err != nil {
		return err
	}
	for _, n := range j.MoveOut {
		src := j.failsafe() + "/" + n
		if !s.priv.Exists(src) || s.data.Exists(n) {
			continue
		}
		if err := s.priv.Rename(src, s.data, n, true); err != nil {
			return fmt.Errorf("move %s back from the failsafe: %w", n, err)
		}
	}
	return s.syncMoved(j.failsafe(), j.MoveOut)
}

// syncMoved fsyncs the directories that moving names between the data dir
// and rel (a folder of the private state dir) changed: the data dir and
// rel, and for a partial restore the parents of its paths on both sides
// (a missing one is fine: nothing moved there).
func (s *session) syncMoved(rel string, names []string) error {
	dirs := parentDirs(names)
	if !slices.Contains(dirs, ".") {
		dirs = append([]string{"."}, dirs...)
	}
	for _, d := range dirs {
		for _, side := range []struct {
			root *fsutil.Dir
			dir  string
		}{{s.data, d}, {s.priv, path.Join(rel, d)}} {
			if err := side.root.SyncDir(side.dir); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	return nil
}

// mkdirsPriv makes rel/dir and the folders between them in the private
// state dir (a partial restore's failsafe mirrors the paths it holds).
func (s *session) mkdirsPriv(rel, dir string) error {
	if dir == "." {
		return nil
	}
	p := rel
	for _, c := range strings.Split(dir, "/") {
		p += "/" + c
		if err := mkdirSync(s.priv, p, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// recoverJournal settles an interrupted restore: forward when the restored
// tree is whole (it was verified and fsynced before the journal was
// written), back otherwise. It returns a sentence for the user.
func (s *session) recoverJournal() (string, error) {
	j, err := s.readJournal()
	if isNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	msg := ""
	if ferr := s.rollForward(j); ferr != nil {
		s.log.Warn("cannot finish the interrupted restore; rolling it back", "id", j.ID, "err", ferr)
		if berr := s.rollBack(j); berr != nil {
			return "", fmt.Errorf("interrupted restore of %s: cannot roll forward (%v) nor back (%w); the journal %s and the failsafe %s are kept for manual repair", j.ID, ferr, berr, s.journalPath(), s.priv.Join(j.failsafe()))
		}
		msg = fmt.Sprintf("rolled back the interrupted restore of %s: the data dir holds its state from before the restore", j.ID)
	} else {
		msg = fmt.Sprintf("rolled forward the interrupted restore of %s: the data dir holds the snapshot; the previous state is in %s", j.ID, s.priv.Join(j.failsafe()))
	}
	if j.StartCmd != "" {
		msg += fmt.Sprintf("; the application was stopped for the restore and is not started again by recover: run the start command (%s)", j.StartCmd)
	}
	if err := s.priv.Remove(journalName); err != nil && !errors.Is(err, unix.ENOENT) {
		return "", err
	}
	if err := s.priv.Sync(); err != nil {
		return "", err
	}
	s.log.Warn(msg)
	return msg, nil
}
