package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/fsutil"
)

// A restore keeps what it replaced in <state-dir>/private/failsafe/<name>
// until the next restore (or drops it with --no-failsafe). Those trees pin
// disk: these functions show and drop them.

// FailsafeInfo is the saved state of one restore. The JSON form is the
// CLI's contract (failsafe list, usage).
type FailsafeInfo struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// Restored is the snapshot the restore put in place of this state.
	Restored string `json:"restored"`
	Partial  bool   `json:"partial"`
	// Bytes is the space of the files only the failsafe holds (one link):
	// freed when it is dropped.
	Bytes int64 `json:"bytes"`
}

// parseFailsafe reads a failsafe's name: TIME[_partial]_before_ID_HEX.
func parseFailsafe(name string) (FailsafeInfo, bool) {
	fi := FailsafeInfo{Name: name}
	if len(name) < len(IDTimeLayout) {
		return fi, false
	}
	t, err := time.Parse(IDTimeLayout, name[:len(IDTimeLayout)])
	if err != nil {
		return fi, false
	}
	fi.CreatedAt = t
	rest := name[len(IDTimeLayout):]
	if r, ok := strings.CutPrefix(rest, partialMarker); ok {
		fi.Partial, rest = true, r
	}
	rest, ok := strings.CutPrefix(rest, "_before_")
	if !ok || len(rest) < 10 || rest[len(rest)-9] != '_' {
		return fi, false
	}
	fi.Restored = rest[:len(rest)-9]
	return fi, true
}

// failsafes lists the failsafes in priv, with the bytes each pins.
func failsafes(ctx context.Context, priv *fsutil.Dir) ([]FailsafeInfo, error) {
	names, err := priv.Names(failsafeName)
	if errors.Is(err, fs.ErrNotExist) {
		return []FailsafeInfo{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []FailsafeInfo{}
	for _, n := range names {
		fi, _ := parseFailsafe(n)
		d, err := priv.OpenDir(failsafeName + "/" + n)
		if err != nil {
			return nil, err
		}
		err = d.Walk(ctx, func(_ string, st fsutil.Stat) error {
			if st.IsRegular() && st.Nlink == 1 {
				fi.Bytes += st.Blocks * 512
			}
			return nil
		}, nil)
		d.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Failsafes lists the failsafes of the data dir (none when hotsnap has no
// private state yet). It writes nothing.
func Failsafes(ctx context.Context, l *Layout, log *slog.Logger) ([]FailsafeInfo, error) {
	s, err := l.openSession(ctx, log, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	priv, err := l.openPrivate(s.data, false)
	if errors.Is(err, fs.ErrNotExist) {
		return []FailsafeInfo{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer priv.Close()
	return failsafes(ctx, priv)
}

// DropFailsafes removes the failsafes drop chooses, under the operation
// lock (never while a restore runs), and returns them.
func DropFailsafes(ctx context.Context, l *Layout, drop func(FailsafeInfo) bool, log *slog.Logger) ([]FailsafeInfo, error) {
	s, err := l.openSession(ctx, log, true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	all, err := failsafes(ctx, s.priv)
	if err != nil {
		return nil, err
	}
	dropped := []FailsafeInfo{}
	for _, fi := range all {
		if !drop(fi) {
			continue
		}
		if err := s.priv.RemoveAll(failsafeName + "/" + fi.Name); err != nil {
			return dropped, fmt.Errorf("drop failsafe %s: %w", fi.Name, err)
		}
		s.log.Info("failsafe dropped", "name", fi.Name, "bytes", fi.Bytes)
		dropped = append(dropped, fi)
	}
	return dropped, nil
}
