package snapshot

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"time"

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
	// Error is set when the snapshot's manifest cannot be read or is
	// corrupt; the other fields are then empty.
	Error string `json:"error,omitempty"`
}

// ids lists the names in the backups dir that are snapshot ids, sorted
// (ids start with their UTC time, so this is oldest first).
func (l *Layout) ids() ([]string, error) {
	ents, err := os.ReadDir(l.BackupsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && validID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// List returns the snapshots in the backups dir, oldest first. A snapshot
// whose manifest is missing or corrupt is listed with Error set. List writes
// nothing (beyond cleaning leftovers of a crashed command when idle).
func List(ctx context.Context, l *Layout, log *slog.Logger) ([]Info, error) {
	l.recoverIfIdle(ctx, log)
	ids, err := l.ids()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := manifest.Read(l.ManifestPath(id))
		if err != nil {
			out = append(out, Info{ID: id, Error: err.Error()})
			continue
		}
		out = append(out, infoOf(m))
	}
	return out, nil
}

func infoOf(m *manifest.Manifest) Info {
	return Info{
		ID: m.ID, CreatedAt: m.CreatedAt, AppVersion: m.AppVersion,
		Files: m.Totals.Files, Bytes: m.Totals.Bytes, Nodes: len(m.Topology.Nodes),
		NodeID: m.Node.ID, PotentiallyInconsistent: m.PotentiallyInconsistent,
		LockHeldMs: m.LockHeldMs, Topology: m.Topology.Nodes, PlanRevision: m.Topology.PlanRevision,
	}
}

// ReadManifest reads and checks the manifest of snapshot id. It returns
// ErrNotFound when there is no such snapshot and an error wrapping
// ErrCorrupt when the manifest is damaged.
func ReadManifest(l *Layout, id string) (*manifest.Manifest, error) {
	m, _, err := ReadManifestBytes(l, id)
	return m, err
}

// ReadManifestBytes is ReadManifest that also returns manifest.json's bytes.
func ReadManifestBytes(l *Layout, id string) (*manifest.Manifest, []byte, error) {
	if err := validID(id); err != nil {
		return nil, nil, err
	}
	if _, err := os.Lstat(l.SnapshotDir(id)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errNoSnapshot(id)
	}
	m, data, err := manifest.ReadBytes(l.ManifestPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errorf(ErrCorrupt, "snapshot %s has no manifest.json", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if m.ID != id {
		return nil, nil, errorf(ErrCorrupt, "snapshot folder %s holds the manifest of %s", id, m.ID)
	}
	return m, data, nil
}
