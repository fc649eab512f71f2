package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the data dir's snapshots",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag()),
		Action: func(c *cli.Context) error {
			e, l, _, err := prologue(c, false)
			if err != nil {
				return err
			}
			infos, err := snapshot.List(c.Context, l, e.log)
			if err != nil {
				return err
			}
			items := make([]listItem, len(infos))
			for i, info := range infos {
				items[i] = localItem(info)
			}
			e.result(map[string]any{"snapshots": items}, func(w io.Writer) {
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
						dash(i.AppVersion), i.Files, humanBytes(i.Bytes), len(i.Topology), i.PotentiallyInconsistent)
				}
				tw.Flush()
			})
			return nil
		},
	}
}

// listItem is one snapshot of a listing: the same shape for list and
// cluster list (docs/json.md). For a local snapshot nodes is its
// topology, its one piece is present, available means its seal holds.
type listItem struct {
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

func localItem(i snapshot.Info) listItem {
	it := listItem{ID: i.ID, CreatedAt: i.CreatedAt, AppVersion: i.AppVersion, Nodes: i.Topology, Files: i.Files, Bytes: i.Bytes,
		PotentiallyInconsistent: i.PotentiallyInconsistent, LockHeldMs: i.LockHeldMs, Seal: i.Seal, Available: i.Error == "",
		NrPiecesPresent: 1, Missing: []string{}, Problems: []string{}, PlanRevision: i.PlanRevision}
	if i.Error != "" {
		it.Problems, it.NrPiecesPresent = []string{i.Error}, 0
	}
	if it.Nodes == nil {
		it.Nodes = []string{}
	}
	return it
}

func clusterItem(s cluster.ClusterSnapshot) listItem {
	return listItem{ID: s.ID, CreatedAt: s.CreatedAt, AppVersion: s.AppVersion, Nodes: s.Nodes, Files: s.Files, Bytes: s.Bytes,
		PotentiallyInconsistent: s.PotentiallyInconsistent, LockHeldMs: s.LockHeldMs, Seal: s.Seal, Available: s.Available, Partial: s.Partial,
		NrPiecesPresent: s.NrPiecesPresent, Missing: s.Missing, Problems: s.Problems, PlanRevision: s.PlanRevision}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "delete one snapshot",
		Flags: withOutput(dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag()),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			node := snapshot.DefaultNodeID // the node whose piece this is, as cluster delete says it
			if h, err := snapshot.ReadHeader(l, id); err == nil && h.Node.ID != "" {
				node = h.Node.ID
			}
			if err := snapshot.Delete(c.Context, l, id, e.log); err != nil {
				return err
			}
			e.result(map[string]any{"id": id, "deleted": []string{node}, "absent": []string{}}, func(w io.Writer) { fmt.Fprintf(w, "deleted %s\n", id) })
			return nil
		},
	}
}
