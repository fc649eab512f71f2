package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot"
)

// The text forms of the archive's commands.

// Upload is upload's text; store names the archive.
func Upload(res *archive.UploadResult, store fmt.Stringer) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "uploaded %s (node %s) to %s\n", res.ID, res.Node, store)
		fmt.Fprintf(w, "  %d files: %d read (%s), %d already archived; %d new chunks, %d reused; %d packs, %s sent; %.0f ms\n",
			res.Files, res.FilesRead, Bytes(res.BytesRead), res.FilesReused, res.ChunksNew, res.ChunksReused,
			res.PacksWritten, Bytes(res.BytesSent), res.DurationMs)
		if res.OrphanPacksReused > 0 {
			fmt.Fprintf(w, "  resumed: reused %d pack(s) of an interrupted upload\n", res.OrphanPacksReused)
		}
		if r := res.Retention; r != nil {
			fmt.Fprintf(w, "  object lock (%s): protected until %s; %d objects of earlier uploads needed (%d packs), %d retention(s) extended\n",
				r.Mode, r.ProtectedUntil.Format(time.RFC3339), r.Needed, r.ReusedPacks, r.Extended)
			if r.Short > 0 {
				fmt.Fprintf(w, "  WARNING: %s\n", r.Warning)
			}
		}
	}
}

// Download is download's text.
func Download(res *archive.DownloadResult) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "downloaded %s (node %s) into %s\n", res.ID, res.Node, res.Path)
		fmt.Fprintf(w, "  %d files, %s: %d fetched (%s in %d requests), %d taken from local snapshots; %.0f ms\n",
			res.Files, Bytes(res.Bytes), res.FilesFetched, Bytes(res.BytesFetched), res.RequestsFetched, res.FilesLocal, res.DurationMs)
	}
}

// DownloadExtract is download --target's text.
func DownloadExtract(res *archive.ExtractResult) Text {
	return Line("wrote %d files, %d dirs, %d symlinks (%s) of %s (node %s) into %s: %d chunks fetched, every file checked; took %.0f ms",
		res.Files, res.Dirs, res.Symlinks, Bytes(res.Bytes), res.ID, res.Node, res.Target, res.ChunksFetched, res.DurationMs)
}

// Init is archive init's text; keyFile is the id of the key file that
// opens an encrypted archive ("" for none).
func Init(cfg repo.Config, store fmt.Stringer, keyFile string) Text {
	return func(w io.Writer) {
		fmt.Fprintf(w, "initialised archive %s at %s\n", cfg.ID, store)
		if ol := cfg.ObjectLock; ol != nil {
			fmt.Fprintf(w, "  object lock: %s mode; every snapshot protected %d days after its upload (the bucket retains new objects %d days)\n", ol.Mode, ol.Days, ol.BucketDays())
		}
		if keyFile != "" {
			fmt.Fprintf(w, "  encrypted (%s) with a random data key, opened by key file %s: keep a key file safe (add a second one with archive key add), the data cannot be read without one\n", repo.Algorithm, keyFile)
		}
	}
}

// ArchiveList is archive ls's text.
func ArchiveList(list []repo.RemoteSnapshot) Text {
	return func(w io.Writer) {
		if len(list) == 0 {
			fmt.Fprintln(w, "no snapshots in the archive")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNODE\tCREATED\tFILES\tSIZE\tINCONSISTENT")
		for _, s := range list {
			if s.Error != "" {
				fmt.Fprintf(tw, "%s\t%s\t(unreadable: %s)\t\t\t\n", s.ID, s.Node, s.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\n", s.ID, s.Node, s.CreatedAt.Format("2006-01-02 15:04:05Z"), s.Files, Bytes(s.Bytes), s.PotentiallyInconsistent)
		}
		tw.Flush()
	}
}

// Forget is archive forget's text.
func Forget(res *archive.ForgetResult) Text {
	return Prune(&snapshot.PruneResult{DryRun: res.DryRun, Keep: res.Keep, Remove: res.Remove})
}

// GC is archive gc's text.
func GC(res *archive.GCResult) Text {
	return func(w io.Writer) {
		for _, s := range res.StaleLocks {
			fmt.Fprintln(w, s)
		}
		verb := "freed"
		if res.DryRun {
			verb = "would free"
		}
		fmt.Fprintf(w, "%d snapshot piece(s) use %d chunks; %d pack(s) deleted (%d repacked into %d), %d indexes merged\n",
			res.Snapshots, res.ChunksUsed, res.PacksDeleted, res.PacksRepacked, res.PacksWritten, res.IndexesMerged)
		fmt.Fprintf(w, "%s %s: %s -> %s; %.0f ms\n", verb, Bytes(res.BytesBefore-res.BytesAfter),
			Bytes(res.BytesBefore), Bytes(res.BytesAfter), res.DurationMs)
	}
}

// Unlock is archive unlock's text.
func Unlock(removed, kept []string) Text {
	return func(w io.Writer) {
		for _, l := range removed { // a lock names what its writer put there: quoted
			fmt.Fprintf(w, "removed %s\n", fsutil.QuoteText(l))
		}
		for _, l := range kept {
			fmt.Fprintf(w, "kept %s (live; --force removes it)\n", fsutil.QuoteText(l))
		}
		if len(removed)+len(kept) == 0 {
			fmt.Fprintln(w, "no locks")
		}
	}
}

// Check is archive check's text.
func Check(res *archive.CheckResult) Text {
	return func(w io.Writer) {
		for _, p := range res.Problems {
			fmt.Fprintln(w, p)
		}
		fmt.Fprintf(w, "%d snapshot piece(s), %d packs, %d chunks; %d packs read", res.Snapshots, res.Packs, res.Chunks, res.PacksRead)
		if res.OrphanPacks > 0 {
			fmt.Fprintf(w, "; %d unreferenced pack(s) from an interrupted upload (the next upload reuses them)", res.OrphanPacks)
		}
		fmt.Fprintln(w)
		if r := res.Retention; r != nil {
			fmt.Fprintf(w, "object lock (%s, %d days): %d needed objects compared; newest snapshot protected until %s, shortest retention of what is needed %s; %d short, %d extended\n",
				r.Mode, r.Days, r.Checked, r.NewestProtectedUntil.UTC().Format(time.RFC3339), r.ShortestUntil.UTC().Format(time.RFC3339), r.Short, r.Repaired)
		}
		if res.OK() {
			fmt.Fprintln(w, "ok: no problems found")
		}
	}
}

// KeyFiles is archive key list's text; legacy is an archive of hotsnap
// 0.2's data key ("" for none).
func KeyFiles(ids []string, legacy string) Text {
	return func(w io.Writer) {
		for _, id := range ids {
			fmt.Fprintln(w, id)
		}
		if legacy != "" {
			fmt.Fprintf(w, "%s (the data key itself: an archive of hotsnap 0.2; cannot be removed)\n", legacy)
		}
	}
}
