package manifest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/internal/par"
)

// Problem kinds reported by VerifyTree.
const (
	ProblemMissing  = "missing"  // in the manifest, not in the tree
	ProblemExtra    = "extra"    // in the tree, not in the manifest
	ProblemType     = "type"     // different file type
	ProblemSize     = "size"     // different size
	ProblemModified = "modified" // size or mtime changed: modified in place
	ProblemHash     = "hash"     // content differs from the recorded BLAKE3
	ProblemMode     = "mode"     // permission bits differ (setuid, setgid and sticky included)
	ProblemOwner    = "owner"    // uid or gid differ
	ProblemTarget   = "target"   // symlink target differs
	ProblemRead     = "read"     // could not be read
)

// Problem is one difference between a tree and its manifest.
type Problem struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Path, p.Kind, p.Detail) }

// VerifyOptions tune VerifyTree.
type VerifyOptions struct {
	// Fast compares stat only (type, size, mtime, mode, target); the default
	// also re-hashes every file.
	Fast bool
	// Workers bounds parallel hashing; 0 means par.DefaultWorkers.
	Workers int
	// OnHashed, when set, is called after each file is hashed with its size.
	OnHashed func(bytes int64)
}

// VerifyResult is what VerifyTree found.
type VerifyResult struct {
	Entries     int       `json:"entries"`
	BytesHashed int64     `json:"bytesHashed"`
	Problems    []Problem `json:"problems"`
}

// OK reports whether the tree matched.
func (r *VerifyResult) OK() bool { return len(r.Problems) == 0 }

// Err returns nil when the tree matched, else an error wrapping ErrVerifyFailed
// that counts the problems and names the first few.
func (r *VerifyResult) Err() error {
	if r.OK() {
		return nil
	}
	msg := fmt.Sprintf("%d difference(s)", len(r.Problems))
	for i, p := range r.Problems {
		if i == 5 {
			msg += "; ..."
			break
		}
		msg += "; " + p.String()
	}
	return fmt.Errorf("%w: %s", ErrVerifyFailed, msg)
}

// VerifyTree compares the tree below root with m and reports every
// difference, sorted by path. It never follows symlinks (every entry is
// reached through directory descriptors) and never writes. The error is
// for failures to run at all (ctx cancelled); differences are in the result.
func VerifyTree(ctx context.Context, root *fsutil.Dir, m *Manifest, opts VerifyOptions) (*VerifyResult, error) {
	res := &VerifyResult{Entries: len(m.Entries)}
	actual := map[string]fsutil.Stat{}
	err := root.Walk(ctx, func(rel string, st fsutil.Stat) error {
		actual[rel] = st
		return nil
	}, func(rel string, err error) error {
		res.Problems = append(res.Problems, Problem{Path: rel, Kind: ProblemRead, Detail: err.Error()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root.Path(), err)
	}
	var mu sync.Mutex
	add := func(p Problem) {
		mu.Lock()
		res.Problems = append(res.Problems, p)
		mu.Unlock()
	}
	var toHash []int
	for i := range m.Entries {
		e := &m.Entries[i]
		p := string(e.Path)
		st, ok := actual[p]
		if !ok {
			add(Problem{p, ProblemMissing, fmt.Sprintf("%s is in the manifest but not in the tree", e.Type)})
			continue
		}
		delete(actual, p)
		if got := st.TypeName(); got != e.Type {
			add(Problem{p, ProblemType, fmt.Sprintf("manifest says %s, tree has %s", e.Type, got)})
			continue
		}
		if st.Perm() != e.Mode && e.Type != TypeSymlink {
			add(Problem{p, ProblemMode, fmt.Sprintf("mode %04o, manifest says %04o", st.Perm(), e.Mode)})
		}
		if st.UID != e.UID || st.GID != e.GID {
			add(Problem{p, ProblemOwner, fmt.Sprintf("owner %d:%d, manifest says %d:%d", st.UID, st.GID, e.UID, e.GID)})
		}
		switch e.Type {
		case TypeSymlink:
			target, err := root.Readlink(p)
			if err != nil {
				add(Problem{p, ProblemRead, err.Error()})
			} else if Name(target) != e.Target {
				add(Problem{p, ProblemTarget, fmt.Sprintf("points to %q, manifest says %q", target, string(e.Target))})
			}
		case TypeFile:
			if st.Size != e.Size {
				add(Problem{p, ProblemSize, fmt.Sprintf("%d bytes, manifest says %d", st.Size, e.Size)})
			} else if st.MtimeNs != e.MtimeNs {
				add(Problem{p, ProblemModified, fmt.Sprintf("mtime %d, manifest says %d: modified in place", st.MtimeNs, e.MtimeNs)})
			}
			if !opts.Fast {
				toHash = append(toHash, i)
			}
		}
	}
	for p, st := range actual {
		add(Problem{p, ProblemExtra, fmt.Sprintf("%s is in the tree but not in the manifest", st.TypeName())})
	}
	var hashed int64
	err = par.ForEach(ctx, len(toHash), opts.Workers, func(ctx context.Context, k int) error {
		e := &m.Entries[toHash[k]]
		sum, n, err := HashFileAt(root, string(e.Path))
		mu.Lock()
		hashed += n
		mu.Unlock()
		if opts.OnHashed != nil {
			opts.OnHashed(n)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			add(Problem{string(e.Path), ProblemRead, err.Error()})
			return nil
		}
		if sum != e.BLAKE3 {
			add(Problem{string(e.Path), ProblemHash, fmt.Sprintf("blake3 %s, manifest says %s", sum, e.BLAKE3)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.BytesHashed = hashed
	sort.SliceStable(res.Problems, func(a, b int) bool { return res.Problems[a].Path < res.Problems[b].Path })
	return res, nil
}
