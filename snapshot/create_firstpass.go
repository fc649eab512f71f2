package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hotsnap/hotsnap/hardlink"
	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// firstPassCapture builds the link tree in staging while writes go on
// (docs/DESIGN.md, Create): the locked pass in Capture then only brings
// up to date what changed since.
func (p *Pending) firstPassCapture(ctx context.Context) error {
	l, s := p.l, p.s
	treeRel := p.stage + "/" + dataName
	if err := s.priv.Mkdir(treeRel, 0o700); err != nil {
		return err
	}
	tree, err := s.priv.OpenDir(treeRel)
	if err != nil {
		return err
	}
	p.tree = tree
	backupsTop := ""
	if filepath.Dir(l.BackupsDir) == l.DataDir {
		backupsTop = filepath.Base(l.BackupsDir)
	}
	foreign, warning := foreignLinks(s.data)
	if warning != "" {
		p.log.Warn(warning)
		p.warnings = append(p.warnings, warning)
	}
	start := time.Now()
	prog := progressOr(p.o.Progress)
	prog.Start("capture", 0, 0) // the first pass: totals unknown until it ends
	p.pass, err = hardlink.Pre(ctx, s.data, tree, hardlink.Options{
		OnEntries:      func(n int, bytes int64) { prog.Add(int64(n), bytes) },
		ForeignLinksOf: foreign,
		Skip: func(rel string, isDir bool) bool {
			if rel == writegate.StateDirName || (backupsTop != "" && rel == backupsTop) {
				return true
			}
			return p.excludeGlobs.match(rel)
		},
		Copy:     func(rel string) bool { return p.copyGlobs.match(rel) },
		LinkMode: p.o.LinkMode,
		Workers:  p.o.Workers,
		Marker:   markerName,
	})
	prog.Done()
	if errors.Is(err, hardlink.ErrMarked) {
		return fmt.Errorf("%w: capture tree: %v", ErrUntrusted, err)
	}
	if err != nil {
		return fmt.Errorf("capture tree: %w", err)
	}
	p.firstPass = time.Since(start)
	crashPoint("create.prelinked")
	return nil
}
