package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// Info is one snapshot in a listing. The JSON form is the CLI's
// `list --json` contract.
type Info struct {
	ID                      string    `json:"id"`
	CreatedAt               time.Time `json:"createdAt"`
	AppVersion              string    `json:"appVersion"`
	Files                   int64     `json:"files"`
	Bytes                   int64     `json:"bytes"`
	Nodes                   int       `json:"nodes"`
	NodeID                  string    `json:"nodeId"`
	PotentiallyInconsistent bool      `json:"potentiallyInconsistent"`
	LockHeldMs              float64   `json:"lockHeldMs"`
	// Topology is the node ids of the deployment the snapshot was taken in;
	// PlanRevision the etcd revision of a cluster snapshot's plan.
	Topology     []string `json:"topology"`
	PlanRevision int64    `json:"planRevision,omitempty"`
	// Seal says whether the manifest's seal holds: "recorded" (unchanged
	// since hotsnap wrote and proved it), "proven" (read whole by this
	// listing), or "damaged" (it does not hold: Error says why, and the
	// snapshot is not one to use).
	Seal string `json:"seal"`
	// Error is set when the snapshot's manifest cannot be read, is corrupt
	// or cannot be trusted; the other fields are then empty, but for a
	// damaged seal, where they are what the header claims.
	Error string `json:"error,omitempty"`
}

// ids lists the names in the backups dir that are snapshot ids, sorted
// (ids start with their UTC time, so this is oldest first).
func (s *session) ids() ([]string, error) {
	if s.backups == nil {
		return nil, nil
	}
	names, err := s.backups.Names(".")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range names {
		if validID(n) == nil {
			ids = append(ids, n)
		}
	}
	return ids, nil
}

// List returns the snapshots in the backups dir, oldest first, from their
// manifests' headers (a listing reads no entries and proves no seal: verify
// and restore do). A snapshot whose manifest is missing, unreadable or
// untrusted is listed with Error set. List writes nothing.
func List(ctx context.Context, l *Layout, log *slog.Logger) ([]Info, error) {
	s, err := l.openSession(ctx, log, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.list(ctx)
}

func (s *session) list(ctx context.Context) ([]Info, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, s.info(id))
	}
	return out, nil
}

// info lists snapshot id: its header, and whether its seal holds.
func (s *session) info(id string) Info {
	mf, err := s.openManifest(id)
	if err != nil {
		return Info{ID: id, Seal: SealDamaged, Error: err.Error()}
	}
	defer mf.Close()
	m, err := mf.Header()
	if err != nil {
		return Info{ID: id, Seal: SealDamaged, Error: err.Error()}
	}
	i := infoOf(m)
	st, err := mf.Stat()
	if err == nil {
		i.Seal, err = s.sealState(id, mf, st)
	}
	if err != nil {
		i.Seal, i.Error = SealDamaged, "damaged: "+err.Error()
	}
	return i
}

func infoOf(m *manifest.Manifest) Info {
	return Info{
		ID: m.ID, CreatedAt: m.CreatedAt, AppVersion: m.AppVersion,
		Files: m.Totals.Files, Bytes: m.Totals.Bytes, Nodes: len(m.Topology.Nodes),
		NodeID: m.Node.ID, PotentiallyInconsistent: m.PotentiallyInconsistent,
		LockHeldMs: m.LockHeldMs, Topology: m.Topology.Nodes, PlanRevision: m.Topology.PlanRevision,
	}
}

// openSnapshot opens the snapshot dir of id, refusing one that another
// user may write (unless the layout allows shared backups).
func (s *session) openSnapshot(id string) (*fsutil.Dir, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if s.backups == nil {
		return nil, errNoSnapshot(id)
	}
	d, err := s.backups.OpenDir(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoSnapshot(id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %s: %v", ErrUntrusted, id, err)
	}
	if !s.l.AllowSharedBackups {
		st, err := d.Stat()
		if err == nil {
			err = checkTrusted(st, "snapshot dir", d.Path())
		}
		if err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// openTree opens the data tree of snapshot id.
func (s *session) openTree(id string) (*fsutil.Dir, error) {
	snap, err := s.openSnapshot(id)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	t, err := snap.OpenDir(dataName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errorf(ErrCorrupt, "snapshot %s has no data tree", id)
		}
		return nil, fmt.Errorf("%w: snapshot %s: %v", ErrUntrusted, id, err)
	}
	return t, nil
}

// OpenTree opens the data tree of snapshot id for reading (an upload reads
// its files through it), marked as hotsnap's own (one open a file) unless
// the backups dir is shared (--allow-shared-backups). Close it.
func (l *Layout) OpenTree(id string) (*fsutil.Dir, error) {
	s, err := l.openSession(context.Background(), nil, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	t, err := s.openTree(id)
	if err == nil && !l.AllowSharedBackups {
		t.Own()
	}
	return t, err
}
