package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
)

func errNoSnapshot(id string) error {
	return fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// Delete removes snapshot id. It first moves the snapshot out of the backups
// dir into the private trash in one rename (so it leaves listings at once,
// whole), then removes it; a crash in between leaves trash that the next
// command removes. Deleting links never touches live data.
func Delete(ctx context.Context, l *Layout, id string, log *slog.Logger) error {
	if err := validID(id); err != nil {
		return err
	}
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return err
	}
	defer s.close()
	return s.delete(id)
}

func (s *session) delete(id string) error {
	if _, err := s.backups.Lstat(id); errors.Is(err, fs.ErrNotExist) {
		return errNoSnapshot(id)
	}
	if err := s.mkdirPriv(trashName); err != nil {
		return err
	}
	dst := trashName + "/" + id
	if err := s.backups.Rename(id, s.priv, dst, true); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := s.backups.Sync(); err != nil {
		return err
	}
	crashPoint("delete.trashed")
	if err := s.priv.RemoveAll(dst); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	s.log.Info("snapshot deleted", "id", id)
	return nil
}

// mkdirPriv makes the folder name of the private state dir if missing
// (and fsyncs the private state dir when it did).
func (s *session) mkdirPriv(name string) error { return mkdirSync(s.priv, name, 0o700) }
