package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hotsnap/hotsnap/fsutil"
)

// Publishing a finished snapshot, and the helpers of create it needs
// after the capture: the newest manifest for hash reuse, the --copy hint,
// the foreign-links check.

// writeNew creates rel (which must not exist) in dir with data, mode 0600,
// and fsyncs it; the caller syncs the directory.
func writeNew(dir *fsutil.Dir, rel string, data []byte) error {
	f, err := dir.Create(rel, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		dir.Remove(rel)
	}
	return err
}

// publish moves the finished staging folder stage (of the private state
// dir) into the backups dir as id: one atomic rename, so the snapshot
// exists whole or not at all.
func (s *session) publish(stage, id string) error {
	if err := s.priv.SyncDir(stage); err != nil {
		return err
	}
	if err := s.priv.Rename(stage, s.backups, id, true); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("snapshot %s: %w", id, ErrExists)
		}
		return fmt.Errorf("publish %s: %w", id, err)
	}
	crashPoint("create.published")
	if err := s.backups.Sync(); err != nil {
		return err
	}
	return s.priv.SyncDir(stagingName)
}

// latestManifest opens the newest readable snapshot's manifest, for hash
// reuse; nil when there is none.
func (s *session) latestManifest() *ManifestFile {
	ids, err := s.ids()
	if err != nil {
		return nil
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if s.backups.Exists(ids[i] + "/" + originName) {
			continue // downloaded: its inode numbers are not this filesystem's
		}
		mf, err := s.openManifest(ids[i])
		if err == nil {
			return mf
		}
		s.log.Debug("skipping unreadable manifest for hash reuse", "id", ids[i], "err", err)
	}
	return nil
}

func suggestGlob(rel string) string {
	base := filepath.Base(rel)
	if ext := filepath.Ext(base); ext != "" && ext != base {
		return "*" + ext
	}
	return base
}

// foreignLinks says whether the capture must leave out hard links to files
// of other owners: only where the kernel lets a user hard-link a file it
// cannot read or write (fs.protected_hardlinks is not 1), since such a
// link in the data dir could bring another user's file in from outside.
func foreignLinks(data *fsutil.Dir) (*uint32, string) {
	b, err := os.ReadFile("/proc/sys/fs/protected_hardlinks")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil, ""
	}
	st, err := data.Stat()
	if err != nil {
		return nil, ""
	}
	uid := st.UID
	return &uid, fmt.Sprintf("fs.protected_hardlinks is not 1 on this host: users may hard-link files they cannot read into the data dir; files of owners other than the data dir's (uid %d) with several links are left out", uid)
}
