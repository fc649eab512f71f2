package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

// ls, diff and cat: looking into snapshots, local or archived, from their
// manifests, without restoring or downloading them.

// remoteReader opens --remote for reading on first need (archive.LazyReader).
func remoteReader(c *cli.Context) *archive.LazyReader {
	return archive.NewLazyReader(c.Context, "browse", func() (*archive.Repo, error) {
		if c.String("remote") == "" {
			return nil, usageError{errors.New("an archived snapshot needs --remote")}
		}
		return openRemote(c, false)
	})
}

// openEntries opens the manifest of ref (archive.OpenEntries): local
// first, then --remote when one is given.
func openEntries(c *cli.Context, l *snapshot.Layout, rs *archive.LazyReader, ref string) (archive.Entries, func(), string, error) {
	var open func() (*archive.Reader, error)
	if c.String("remote") != "" {
		open = rs.Get
	}
	return archive.OpenEntries(c.Context, l, open, ref, c.String("node-id"))
}

// flagsFirst refuses a flag given after the positional arguments, which
// would otherwise be taken as a path.
func flagsFirst(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") && a != "-" {
			return usageError{fmt.Errorf("%s after the arguments: give flags before them (hotsnap %s [flags] ARGS)", a, c.Command.Name)}
		}
	}
	return nil
}

// browseFlags are ls's and cat's: a snapshot, local or archived.
func browseFlags() []cli.Flag {
	return withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(), nodeIDFlag("with --remote: whose piece of the snapshot"), asOfFlag()}, remoteFlags()...)...)
}

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list a snapshot's entries (local, or archived with --remote) from its manifest, reading no data",
		ArgsUsage: "[PATH...]",
		Flags:     browseFlags(),
		Action: func(c *cli.Context) error {
			e := getEnv(c)
			id, err := requireID(c)
			if err != nil {
				return err
			}
			l, err := layout(c)
			if err != nil {
				return err
			}
			if err := flagsFirst(c); err != nil {
				return err
			}
			sel := manifest.Select(c.Args().Slice())
			rs := remoteReader(c)
			defer rs.Close()
			ref := id
			if c.IsSet("remote") && !strings.Contains(id, ":") {
				ref = "remote:" + id
			}
			es, closeES, _, err := openEntries(c, l, rs, ref)
			if err != nil {
				return err
			}
			defer closeES()
			w := bufio.NewWriterSize(e.Stdout, 256<<10)
			defer w.Flush()
			entries, err := sel.Walk(es.Next, func(m *manifest.Entry) { e.Entry(w, m) })
			if err != nil {
				w.Flush()
				return fmt.Errorf("%w (the listing above is not to be trusted)", err)
			}
			if p, unmet := sel.Unmet(); unmet {
				w.Flush()
				return fmt.Errorf("%s is not in snapshot %s: %w", fsutil.Quote(p), id, snapshot.ErrNotFound)
			}
			w.Flush() // the items, then the result
			e.Result(map[string]any{"id": id, "entries": entries}, func(io.Writer) {})
			return nil
		},
	}
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "what changed between two snapshots (local or archived), or a snapshot and the live data (--live), from manifests alone",
		ArgsUsage: "FROM TO | --live ID   (an id, or local:ID or remote:ID)",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), nodeIDFlag("with --remote: whose piece of the snapshot"),
			&cli.BoolFlag{Name: "live", Usage: "compare the snapshot with the live data dir (stat only: content means size or mtime moved)"},
			&cli.BoolFlag{Name: "hash", Usage: "with --live: also re-hash files of equal size and mtime"},
		}, remoteFlags()...)...),
		Action: func(c *cli.Context) error {
			e := getEnv(c)
			if err := flagsFirst(c); err != nil {
				return err
			}
			args := c.Args().Slice()
			live := c.Bool("live")
			switch {
			case live && len(args) != 1:
				return usageError{errors.New("diff --live takes one snapshot id")}
			case !live && len(args) != 2:
				return usageError{errors.New("diff takes two snapshot ids (FROM TO), or --live ID")}
			case c.Bool("hash") && !live:
				return usageError{errors.New("--hash goes with --live (two snapshots are compared by their recorded hashes)")}
			}
			l, err := layout(c)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(e.Stdout, 256<<10)
			defer w.Flush()
			emit := func(ch manifest.Change) error { e.Change(w, ch); return nil }
			var n manifest.DiffCounts
			from, to := args[0], "live"
			if live {
				if strings.HasPrefix(from, "remote:") {
					return usageError{errors.New("diff --live compares a local snapshot with the live data dir")}
				}
				n, err = snapshot.LiveDiff(c.Context, l, strings.TrimPrefix(from, "local:"), c.Bool("hash"), emit)
			} else {
				to = args[1]
				n, err = diffSnapshots(c, l, from, to, emit)
			}
			if err != nil {
				return err
			}
			w.Flush() // the items, then the result
			res := report.DiffResult{From: from, To: to, DiffCounts: n}
			e.Result(res, report.Diff(res))
			return nil
		},
	}
}

// diffSnapshots emits the changes from snapshot from to snapshot to,
// each local or archived.
func diffSnapshots(c *cli.Context, l *snapshot.Layout, from, to string, emit func(manifest.Change) error) (manifest.DiffCounts, error) {
	rs := remoteReader(c)
	defer rs.Close()
	a, closeA, _, err := openEntries(c, l, rs, from)
	if err != nil {
		return manifest.DiffCounts{}, err
	}
	defer closeA()
	b, closeB, _, err := openEntries(c, l, rs, to)
	if err != nil {
		return manifest.DiffCounts{}, err
	}
	defer closeB()
	n, err := manifest.Diff(c.Context, a, b, emit)
	if err != nil {
		return n, fmt.Errorf("%w (the changes above are not to be trusted)", err)
	}
	return n, nil
}

func catCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "write one file of a snapshot (local, or archived with --remote) to stdout, checked against its recorded BLAKE3",
		ArgsUsage: "PATH",
		Flags:     browseFlags(),
		Action: func(c *cli.Context) error {
			e := getEnv(c)
			id, err := requireID(c)
			if err != nil {
				return err
			}
			if err := flagsFirst(c); err != nil {
				return err
			}
			if c.Args().Len() != 1 {
				return usageError{errors.New("cat takes one PATH, relative to the data dir")}
			}
			p := manifest.RelPath(c.Args().First())
			if p == "" {
				return usageError{errors.New("cat needs a file's path, not the data dir")}
			}
			l, err := layout(c)
			if err != nil {
				return err
			}
			if c.String("remote") == "" {
				_, err = snapshot.Cat(c.Context, l, id, p, e.Stdout)
				return err
			}
			rs := remoteReader(c)
			defer rs.Close()
			rd, err := rs.Get()
			if err != nil {
				return err
			}
			_, err = rd.Cat(c.Context, id, c.String("node-id"), p, e.Stdout)
			return err
		},
	}
}
