package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// Target describes the deployment a snapshot is about to be restored onto.
type Target struct {
	AppVersion      string   // "" when the target does not say
	AppEngine       string   // the target's storage engine; "" when it does not say
	Nodes           []string // node ids of the target topology
	EncryptionKeyID string
}

// Version is a parsed major.minor.patch application version. The patch part
// may carry a suffix ("1-rc2"); only major and minor take part in the rules.
type Version struct {
	Major, Minor int
	Patch        string
}

// ParseVersion parses "major.minor.patch" (patch optional).
func ParseVersion(s string) (Version, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("version %q is not major.minor.patch", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return Version{}, fmt.Errorf("version %q is not major.minor.patch", s)
	}
	v := Version{Major: major, Minor: minor}
	if len(parts) == 3 {
		v.Patch = parts[2]
	}
	return v, nil
}

// ValidVersion checks a version given at create: major.minor.patch,
// each a number (the patch may carry a suffix, as 1-rc2).
func ValidVersion(s string) error {
	v, err := ParseVersion(s)
	if err != nil || v.Patch == "" || v.Patch[0] < '0' || v.Patch[0] > '9' {
		return fmt.Errorf("app version %q: want major.minor.patch, such as 3.11.2", s)
	}
	return nil
}

// CheckEngine applies the engine rule: a snapshot that names its storage
// engine is restored only under the same one. A snapshot that names none
// (taken by an older hotsnap, or without --app-engine) is accepted.
func CheckEngine(snapshot, target string) error {
	if snapshot == "" || snapshot == target {
		return nil
	}
	if target == "" {
		return fmt.Errorf("%w: the snapshot was written by storage engine %s; say the target's engine with --app-engine", ErrIncompatible, snapshot)
	}
	return fmt.Errorf("%w: the snapshot was written by storage engine %s, the target runs %s: a snapshot of one engine is never restored under another", ErrIncompatible, snapshot, target)
}

// CheckVersion applies the version rule: same major, target minor >= the
// snapshot's, any patch. Both empty is fine; one empty is refused.
func CheckVersion(snapshot, target string) error {
	if snapshot == "" && target == "" {
		return nil
	}
	if snapshot == "" {
		return fmt.Errorf("%w: the snapshot records no app version but the target is %s (pass --ignore-version to restore anyway)", ErrIncompatible, target)
	}
	if target == "" {
		return fmt.Errorf("%w: the snapshot was taken with app version %s; say the target's version with --app-version (or pass --ignore-version)", ErrIncompatible, snapshot)
	}
	sv, err := ParseVersion(snapshot)
	if err != nil {
		return fmt.Errorf("%w: snapshot app %v", ErrIncompatible, err)
	}
	tv, err := ParseVersion(target)
	if err != nil {
		return fmt.Errorf("%w: target app %v", ErrIncompatible, err)
	}
	if sv.Major != tv.Major {
		return fmt.Errorf("%w: snapshot app version %s and target %s differ in major version (%d != %d)", ErrIncompatible, snapshot, target, sv.Major, tv.Major)
	}
	if tv.Minor < sv.Minor {
		return fmt.Errorf("%w: target app version %s is older than the snapshot's %s (minor %d < %d; only upgrades of the minor version are allowed)", ErrIncompatible, target, snapshot, tv.Minor, sv.Minor)
	}
	return nil
}

// CheckTopology requires the same node ids, in any order.
func CheckTopology(snapshot, target []string) error {
	if len(snapshot) != len(target) {
		return fmt.Errorf("%w: the snapshot has %d node(s) %v, the target %d %v (topology must be identical)", ErrIncompatible, len(snapshot), snapshot, len(target), target)
	}
	have := map[string]bool{}
	for _, n := range target {
		have[n] = true
	}
	for _, n := range snapshot {
		if !have[n] {
			return fmt.Errorf("%w: snapshot node %q is not in the target topology %v", ErrIncompatible, n, target)
		}
	}
	return nil
}

// CheckCompatible applies every rule; ignoreVersion skips only the version rule.
func CheckCompatible(m *Manifest, t Target, ignoreVersion bool) error {
	if !ignoreVersion {
		if err := CheckVersion(m.AppVersion, t.AppVersion); err != nil {
			return err
		}
	}
	if err := CheckTopology(m.Topology.Nodes, t.Nodes); err != nil {
		return err
	}
	if err := CheckEngine(m.AppEngine, t.AppEngine); err != nil {
		return err
	}
	if m.EncryptionKeyID != t.EncryptionKeyID {
		return fmt.Errorf("%w: the snapshot's data is encrypted with key id %q, the target uses %q", ErrIncompatible, m.EncryptionKeyID, t.EncryptionKeyID)
	}
	return nil
}
