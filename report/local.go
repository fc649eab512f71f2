package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/snapshot"
)

// The text forms of one node's commands.

// Create is create's text.
func Create(res *snapshot.CreateResult) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "created %s\n", res.ID)
		fmt.Fprintf(w, "  %d files, %d dirs, %d symlinks, %s\n", res.Files, res.Dirs, res.Symlinks, Bytes(res.Bytes))
		fmt.Fprintf(w, "  writes paused %.1f ms (%d lock attempt(s)); took %.0f ms; hashed %s, reused %d hashes\n",
			res.LockHeldMs, res.LockAttempts, res.DurationMs, Bytes(res.HashedBytes), res.ReusedHashes)
		if q := res.Quiesced; q != nil {
			fmt.Fprintf(w, "  quiesced: %s, %d process(es) held", q.Mode, q.Processes)
			if q.Target != "" {
				fmt.Fprintf(w, " (%s)", fsutil.Quote(q.Target))
			}
			fmt.Fprintln(w)
		}
		if res.PotentiallyInconsistent {
			fmt.Fprintln(w, "  WARNING: potentiallyInconsistent: writes were not stopped")
		}
		for _, warn := range res.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", fsutil.QuoteText(warn))
		}
	}
}

// ListItem is one snapshot of a listing: the same shape for list and
// cluster list (docs/json.md). For a local snapshot nodes is its
// topology, its one piece is present, available means its seal holds.
type ListItem struct {
	ID                      string    `json:"id"`
	CreatedAt               time.Time `json:"createdAt"`
	AppVersion              string    `json:"appVersion"`
	Nodes                   []string  `json:"nodes"`
	Files                   int64     `json:"files"`
	Bytes                   int64     `json:"bytes"`
	PotentiallyInconsistent bool      `json:"potentiallyInconsistent"`
	LockHeldMs              float64   `json:"lockHeldMs"`
	Seal                    string    `json:"seal"`
	Available               bool      `json:"available"`
	Partial                 bool      `json:"partial"`
	NrPiecesPresent         int       `json:"nrPiecesPresent"`
	Missing                 []string  `json:"missing"`
	Problems                []string  `json:"problems"`
	PlanRevision            int64     `json:"planRevision"`
}

// LocalItems are list's items.
func LocalItems(infos []snapshot.Info) []ListItem {
	items := make([]ListItem, len(infos))
	for n, i := range infos {
		it := ListItem{ID: i.ID, CreatedAt: i.CreatedAt, AppVersion: i.AppVersion, Nodes: i.Topology, Files: i.Files, Bytes: i.Bytes,
			PotentiallyInconsistent: i.PotentiallyInconsistent, LockHeldMs: i.LockHeldMs, Seal: i.Seal, Available: i.Error == "",
			NrPiecesPresent: 1, Missing: []string{}, Problems: []string{}, PlanRevision: i.PlanRevision}
		if i.Error != "" {
			it.Problems, it.NrPiecesPresent = []string{i.Error}, 0
		}
		if it.Nodes == nil {
			it.Nodes = []string{}
		}
		items[n] = it
	}
	return items
}

// ClusterItems are cluster list's items.
func ClusterItems(snaps []cluster.ClusterSnapshot) []ListItem {
	items := make([]ListItem, len(snaps))
	for n, s := range snaps {
		items[n] = ListItem{ID: s.ID, CreatedAt: s.CreatedAt, AppVersion: s.AppVersion, Nodes: s.Nodes, Files: s.Files, Bytes: s.Bytes,
			PotentiallyInconsistent: s.PotentiallyInconsistent, LockHeldMs: s.LockHeldMs, Seal: s.Seal, Available: s.Available, Partial: s.Partial,
			NrPiecesPresent: s.NrPiecesPresent, Missing: s.Missing, Problems: s.Problems, PlanRevision: s.PlanRevision}
	}
	return items
}

// List is list's text.
func List(infos []snapshot.Info) Text {
	return func(w io.Writer) {
		if len(infos) == 0 {
			fmt.Fprintln(w, "no snapshots")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tAPP\tFILES\tSIZE\tNODES\tINCONSISTENT")
		for _, i := range infos {
			if i.Seal == snapshot.SealDamaged {
				fmt.Fprintf(tw, "%s\tDAMAGED (%s)\t\t\t\t\t\n", i.ID, fsutil.QuoteText(i.Error))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%v\n", i.ID, i.CreatedAt.Format("2006-01-02 15:04:05Z"),
				dash(i.AppVersion), i.Files, Bytes(i.Bytes), len(i.Topology), i.PotentiallyInconsistent)
		}
		tw.Flush()
	}
}

// Line is a text of one line.
func Line(format string, args ...any) Text {
	return func(w io.Writer) { fmt.Fprintf(w, format+"\n", args...) }
}

// VerifyResult is verify's result: the snapshot's id and whether it
// matches its manifest, with what differs.
type VerifyResult struct {
	ID string `json:"id"`
	OK bool   `json:"ok"`
	*manifest.VerifyResult
}

// NewVerifyResult is verify's result for snapshot id.
func NewVerifyResult(id string, res *manifest.VerifyResult) VerifyResult {
	if res.Problems == nil {
		res.Problems = []manifest.Problem{}
	}
	return VerifyResult{id, res.OK(), res}
}

// Verify is verify's text.
func Verify(res VerifyResult) Text {
	return func(w io.Writer) {
		for _, p := range res.Problems {
			fmt.Fprintf(w, "%s\n", p)
		}
		if res.OK {
			fmt.Fprintf(w, "ok: %s matches its manifest (%d entries, %s hashed)\n", res.ID, res.Entries, Bytes(res.BytesHashed))
		}
	}
}

// Restore is restore's text.
func Restore(res *snapshot.RestoreResult) Text {
	return func(w io.Writer) {
		p := res.Plan
		for _, warn := range res.Warnings {
			fmt.Fprintf(w, "warning: %s\n", fsutil.QuoteText(warn))
		}
		if res.DryRun {
			fmt.Fprintf(w, "dry run: restoring %s (verified: %s) would add %d, remove %d and change %d entries (+%s, -%s); nothing was changed\n",
				res.ID, res.Verified, len(p.Added), len(p.Removed), len(p.Changed), Bytes(p.AddedBytes), Bytes(p.RemovedBytes))
			list := func(sign string, paths []string) {
				for i, path := range paths {
					if i == 20 {
						fmt.Fprintf(w, "  %s ... %d more\n", sign, len(paths)-20)
						return
					}
					fmt.Fprintf(w, "  %s %s\n", sign, fsutil.Quote(path))
				}
			}
			list("+", p.Added)
			list("-", p.Removed)
			list("~", p.Changed)
			return
		}
		what := res.ID
		if len(res.Include) > 0 {
			what = fmt.Sprintf("the entries of %s matching %s", res.ID, strings.Join(res.Include, " "))
		}
		fmt.Fprintf(w, "restored %s (verified: %s): %d files, %s\n", what, res.Verified, res.Files, Bytes(res.Bytes))
		fmt.Fprintf(w, "  %d added, %d removed, %d changed; swap %.1f ms, writes held %.1f ms, took %.0f ms\n",
			len(p.Added), len(p.Removed), len(p.Changed), res.SwapMs, res.LockHeldMs, res.DurationMs)
		if res.Failsafe != "" {
			fmt.Fprintf(w, "  the previous state is kept in %s until the next restore\n", res.Failsafe)
		}
	}
}

// Extract is restore --target's text.
func Extract(res *snapshot.ExtractResult) Text {
	return Line("restored %d files, %d dirs, %d symlinks (%s) of %s into %s, every file re-hashed; took %.0f ms",
		res.Files, res.Dirs, res.Symlinks, Bytes(res.Bytes), res.ID, res.Target, res.DurationMs)
}

// Usage is usage's text.
func Usage(u *snapshot.UsageResult) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "live data:                   %s\n", Bytes(u.LiveBytes))
		fmt.Fprintf(w, "pinned by snapshots only:    %s (freed if every snapshot were deleted)\n", Bytes(u.PinnedBytes))
		if u.StateBytes > 0 {
			fmt.Fprintf(w, "held by .hotsnap (failsafe): %s\n", Bytes(u.StateBytes))
		}
		if u.ExternalBytes > 0 {
			fmt.Fprintf(w, "linked from outside too:     %s (not freed by deleting snapshots)\n", Bytes(u.ExternalBytes))
		}
		fmt.Fprintf(w, "filesystem free:             %s of %s\n", Bytes(int64(u.Filesystem.FreeBytes)), Bytes(int64(u.Filesystem.TotalBytes)))
		for _, fi := range u.Failsafes {
			fmt.Fprintf(w, "failsafe %s: %s (the state restore of %s replaced; hotsnap failsafe drop frees it)\n", fi.Name, Bytes(fi.Bytes), fi.Restored)
		}
		if len(u.Snapshots) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tONLY IT HOLDS\tREFERENCES")
			for _, s := range u.Snapshots {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.ID, Bytes(s.ExclusiveBytes), Bytes(s.TotalBytes))
			}
			tw.Flush()
		}
	}
}

// Recover is recover's text.
func Recover(res *snapshot.RecoverResult) Text {
	return func(w io.Writer) {
		if len(res.Removed) == 0 && res.Restore == "" && len(res.Thawed) == 0 {
			fmt.Fprintln(w, "nothing to recover")
		}
		for _, t := range res.Thawed {
			fmt.Fprintf(w, "resumed processes a killed hotsnap had stopped: %s\n", t)
		}
		for _, p := range res.Removed {
			fmt.Fprintf(w, "removed %s\n", p)
		}
		if res.Restore != "" {
			fmt.Fprintf(w, "restore: %s\n", res.Restore)
		}
	}
}

// Prune is prune's and archive forget's text.
func Prune(res *snapshot.PruneResult) Text {
	return func(w io.Writer) {
		verb := "removed"
		if res.DryRun {
			verb = "would remove"
		}
		for _, d := range res.Keep {
			fmt.Fprintf(w, "keep    %s (%s)\n", d.ID, strings.Join(d.Reasons, ", "))
		}
		for _, fi := range res.FailsafesDropped {
			fmt.Fprintf(w, "%s failsafe %s (%s)\n", verb, fi.Name, Bytes(fi.Bytes))
		}
		for _, d := range res.Remove {
			fmt.Fprintf(w, "%s %s\n", verb, d.ID)
		}
		fmt.Fprintf(w, "%d kept, %d %s\n", len(res.Keep), len(res.Remove), verb)
	}
}

// Failsafes is failsafe list's text.
func Failsafes(all []snapshot.FailsafeInfo) Text {
	return func(w io.Writer) {
		if len(all) == 0 {
			fmt.Fprintln(w, "no failsafes")
		}
		for _, fi := range all {
			fmt.Fprintf(w, "%s\t%s\t(replaced by the restore of %s)\n", fi.Name, Bytes(fi.Bytes), fi.Restored)
		}
	}
}

// FailsafesDropped is failsafe drop's text.
func FailsafesDropped(dropped []snapshot.FailsafeInfo) Text {
	return func(w io.Writer) {
		for _, fi := range dropped {
			fmt.Fprintf(w, "dropped failsafe %s (%s)\n", fi.Name, Bytes(fi.Bytes))
		}
		if len(dropped) == 0 {
			fmt.Fprintln(w, "no failsafe dropped")
		}
	}
}

// Policy is run's and cluster run's text: one line per step.
func Policy(res *pipeline.Result) Text {
	return func(w io.Writer) {
		for _, s := range res.Steps {
			status := "ok"
			if !s.OK {
				status = "FAILED: " + s.Error
			}
			detail := s.ID
			if len(s.Removed) > 0 {
				detail = "removed " + strings.Join(s.Removed, ", ")
			}
			fmt.Fprintf(w, "%-7s %-6s %.0f ms %s\n", s.Step, status, s.DurationMs, detail)
		}
	}
}
