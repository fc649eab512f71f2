package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// ls, diff and cat: looking into snapshots, local or archived, from their
// manifests, without restoring or downloading them.

// remoteSide opens --remote once, on first need, for reading
// (archive.OpenReader: a shared lock, the index loaded).
type remoteSide struct {
	c  *cli.Context
	rd *archive.Reader
}

func (r *remoteSide) open() (*archive.Reader, error) {
	if r.rd != nil {
		return r.rd, nil
	}
	if r.c.String("remote") == "" {
		return nil, usageError{errors.New("an archived snapshot needs --remote")}
	}
	repo, err := openRemote(r.c, false)
	if err != nil {
		return nil, err
	}
	r.rd, err = archive.OpenReader(r.c.Context, repo, "browse")
	return r.rd, err
}

func (r *remoteSide) close() {
	if r.rd != nil {
		r.rd.Close()
	}
}

// openEntries opens the manifest of ref (archive.OpenEntries): local
// first, then --remote when one is given.
func openEntries(c *cli.Context, l *snapshot.Layout, rs *remoteSide, ref string) (archive.Entries, func(), string, error) {
	var open func() (*archive.Reader, error)
	if c.String("remote") != "" {
		open = rs.open
	}
	return archive.OpenEntries(c.Context, l, open, ref, c.String("node-id"))
}

func nodeFlag() cli.Flag {
	return nodeIDFlag("with --remote: whose piece of the snapshot")
}

// modeString is ls -l's mode column: type, then rwx with s, S, t, T.
func modeString(e *manifest.Entry) string {
	b := []byte("----------")
	switch e.Type {
	case manifest.TypeDir:
		b[0] = 'd'
	case manifest.TypeSymlink:
		b[0] = 'l'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if e.Mode&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(bit uint32, at int, set, unset byte) {
		if e.Mode&bit != 0 {
			if b[at] == '-' {
				b[at] = unset
			} else {
				b[at] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// lsEntry is one line of `ls --json`.
type lsEntry struct {
	Path    string `json:"path"`
	Type    string `json:"type"`
	Mode    string `json:"mode"` // octal permission bits, setuid, setgid and sticky included
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtimeNs"`
	BLAKE3  string `json:"blake3,omitempty"`
	Target  string `json:"target,omitempty"`
}

// underAny reports whether p is one of the prefixes or lies below one,
// and marks in seen (when not nil) each prefix it is.
func underAny(p string, prefixes []string, seen []bool) bool {
	if len(prefixes) == 0 {
		return true
	}
	for i, q := range prefixes {
		if p == q || strings.HasPrefix(p, q+"/") {
			if seen != nil && p == q {
				seen[i] = true
			}
			return true
		}
	}
	return false
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

// relPath is a PATH argument as a clean path relative to the data dir
// ("" for the data dir itself).
func relPath(arg string) string { return path.Clean("/" + arg)[1:] }

// cleanPaths are ls's PATH arguments; nil (everything) when one of them
// is the data dir itself.
func cleanPaths(args []string) []string {
	var out []string
	for _, a := range args {
		p := relPath(a)
		if p == "" {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// browseFlags are ls's and cat's: a snapshot, local or archived.
func browseFlags() []cli.Flag {
	return withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(), nodeFlag(), asOfFlag()}, remoteFlags()...)...)
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
			prefixes := cleanPaths(c.Args().Slice())
			seen := make([]bool, len(prefixes))
			entries := 0
			rs := &remoteSide{c: c}
			defer rs.close()
			ref := id
			if c.IsSet("remote") && !strings.Contains(id, ":") {
				ref = "remote:" + id
			}
			es, closeES, _, err := openEntries(c, l, rs, ref)
			if err != nil {
				return err
			}
			defer closeES()
			w := bufio.NewWriterSize(e.stdout, 256<<10)
			defer w.Flush()
			for {
				m, err := es.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					w.Flush()
					return fmt.Errorf("%w (the listing above is not to be trusted)", err)
				}
				if !underAny(string(m.Path), prefixes, seen) {
					continue
				}
				entries++
				switch {
				case e.json:
					writeEvent(w, evItem, lsEntry{Path: string(m.Path), Type: m.Type, Mode: fmt.Sprintf("%04o", m.Mode), UID: m.UID, GID: m.GID,
						Size: m.Size, MtimeNs: m.MtimeNs, BLAKE3: m.BLAKE3, Target: string(m.Target)})
				case !e.quiet:
					name := fsutil.Quote(string(m.Path))
					if m.Type == manifest.TypeSymlink {
						name += " -> " + fsutil.Quote(string(m.Target))
					}
					fmt.Fprintf(w, "%s %5d:%-5d %12d %s %s\n", modeString(m), m.UID, m.GID, m.Size,
						time.Unix(0, m.MtimeNs).UTC().Format("2006-01-02 15:04:05"), name)
				}
			}
			for i, ok := range seen {
				if !ok {
					w.Flush()
					return fmt.Errorf("%s is not in snapshot %s: %w", fsutil.Quote(prefixes[i]), id, snapshot.ErrNotFound)
				}
			}
			if e.json {
				writeEvent(w, evResult, map[string]any{"id": id, "entries": entries})
			}
			return nil
		},
	}
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "what changed between two snapshots (local or archived), or a snapshot and the live data (--live), from manifests alone",
		ArgsUsage: "FROM TO | --live ID   (an id, or local:ID or remote:ID)",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), nodeFlag(),
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
			w := bufio.NewWriterSize(e.stdout, 256<<10)
			defer w.Flush()
			emit := func(ch manifest.Change) error {
				switch {
				case e.json:
					writeEvent(w, evItem, ch)
				case !e.quiet:
					mark := map[string]string{manifest.Added: "+", manifest.Removed: "-", manifest.Modified: "M"}[ch.Kind]
					what := ""
					if len(ch.What) > 0 {
						what = " (" + strings.Join(ch.What, ", ") + ")"
					}
					fmt.Fprintf(w, "%s %-7s %s%s\n", mark, ch.Type, fsutil.Quote(ch.Path), what)
				}
				return nil
			}
			var n manifest.DiffCounts
			from, to := args[0], "live"
			if live {
				if strings.HasPrefix(from, "remote:") {
					return usageError{errors.New("diff --live compares a local snapshot with the live data dir")}
				}
				n, err = snapshot.LiveDiff(c.Context, l, strings.TrimPrefix(from, "local:"), c.Bool("hash"), emit)
			} else {
				to = args[1]
				rs := &remoteSide{c: c}
				defer rs.close()
				a, closeA, _, err := openEntries(c, l, rs, from)
				if err != nil {
					return err
				}
				defer closeA()
				b, closeB, _, err := openEntries(c, l, rs, to)
				if err != nil {
					return err
				}
				defer closeB()
				n, err = manifest.Diff(c.Context, a, b, emit)
				if err != nil {
					w.Flush()
					return fmt.Errorf("%w (the changes above are not to be trusted)", err)
				}
			}
			if err != nil {
				return err
			}
			if e.json {
				writeEvent(w, evResult, struct {
					From string `json:"from"`
					To   string `json:"to"`
					manifest.DiffCounts
				}{from, to, n})
			} else if !e.quiet {
				fmt.Fprintf(w, "%s -> %s: %d added, %d removed, %d modified\n", from, to, n.Added, n.Removed, n.Modified)
			}
			return nil
		},
	}
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
			p := relPath(c.Args().First())
			if p == "" {
				return usageError{errors.New("cat needs a file's path, not the data dir")}
			}
			l, err := layout(c)
			if err != nil {
				return err
			}
			if c.String("remote") == "" {
				_, err = snapshot.Cat(c.Context, l, id, p, e.stdout)
				return err
			}
			rs := &remoteSide{c: c}
			defer rs.close()
			rd, err := rs.open()
			if err != nil {
				return err
			}
			_, err = rd.Cat(c.Context, id, c.String("node-id"), p, e.stdout)
			return err
		},
	}
}
