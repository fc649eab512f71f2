package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
)

// A manifest's seal covers its header and every entry, so proving it
// means reading them all (about 1.3 s a million entries). list must stay
// fast and still never show a manifest whose seal does not hold as a
// normal snapshot. So when hotsnap writes a manifest (create, download) it
// records beside it, in seal.json, the manifest's inode, size, mtime and
// ctime: a manifest whose stat still matches its record is the one hotsnap
// wrote and proved (any write or replacement moves its ctime or inode),
// and list takes it as sealed by that record; any other is read whole and
// its seal proven there and then.

const sealName = "seal.json"

type sealRecord struct {
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtimeNs"`
	CtimeNs int64  `json:"ctimeNs"`
}

func recordOf(st fsutil.Stat) sealRecord {
	return sealRecord{Ino: st.Ino, Size: st.Size, MtimeNs: st.MtimeNs, CtimeNs: st.CtimeNs}
}

// writeSeal records, in the staging snapshot dir stage (of the private
// dir), the stat of the manifest just written and synced there.
func (s *session) writeSeal(stage string) error {
	st, err := s.priv.Lstat(stage + "/" + manifestName)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(recordOf(st))
	return writeNew(s.priv, stage+"/"+sealName, b)
}

// Seal states in a listing.
const (
	SealRecorded = "recorded" // unchanged since hotsnap wrote and proved it (its seal record matches)
	SealProven   = "proven"   // read whole and its seal proven by this listing
	SealDamaged  = "damaged"  // its seal does not hold: listed, never as a normal snapshot
)

// sealState says whether snapshot id's manifest mf (of stat st) is sealed:
// by its record when that matches, else by reading it whole.
func (s *session) sealState(id string, mf *ManifestFile, st fsutil.Stat) (string, error) {
	if f, rst, err := s.backups.OpenRegular(id + "/" + sealName); err == nil {
		var rec sealRecord
		b, rerr := io.ReadAll(io.LimitReader(f, 4<<10))
		f.Close()
		trusted := checkTrusted(rst, "seal record", f.Name()) == nil && rst.Nlink == 1
		if rerr == nil && trusted && json.NewDecoder(bytes.NewReader(b)).Decode(&rec) == nil && rec == recordOf(st) {
			return SealRecorded, nil
		}
	}
	if _, err := mf.Each(func(*manifest.Entry) error { return nil }); err != nil {
		return SealDamaged, fmt.Errorf("manifest of %s: %w", id, err)
	}
	return SealProven, nil
}
