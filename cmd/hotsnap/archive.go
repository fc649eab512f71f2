package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/snapshot"
)

func remoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "remote", EnvVars: []string{"HOTSNAP_REMOTE"}, Usage: "file:///abs/path, s3://bucket/prefix or NAME:bucket/prefix"},
		&cli.StringFlag{Name: "s3-endpoint", EnvVars: []string{"HOTSNAP_S3_ENDPOINT"}, Usage: "S3 endpoint: host:port, http://host:port or https://host:port (credentials: the AWS chain, see docs/archive.md)"},
		&cli.StringFlag{Name: "s3-region", EnvVars: []string{"HOTSNAP_S3_REGION"}, Usage: "S3 region"},
		&cli.BoolFlag{Name: "s3-insecure", EnvVars: []string{"HOTSNAP_S3_INSECURE"}, Usage: "plain HTTP to the S3 endpoint"},
		&cli.StringFlag{Name: "remote-config", EnvVars: []string{"HOTSNAP_REMOTE_CONFIG"}, Usage: "JSON file of named remotes (for NAME:bucket/prefix)"},
		&cli.DurationFlag{Name: "io-timeout", Value: defaults.IOTimeout, EnvVars: []string{"HOTSNAP_IO_TIMEOUT"}, Usage: "a remote call that moves no byte for this long is cancelled and retried once; then the command fails"},
		&cli.StringFlag{Name: "encryption-key-file", EnvVars: []string{"HOTSNAP_ENCRYPTION_KEY_FILE"}, Usage: "file holding the archive's key (made by hotsnap archive keygen); required for an encrypted archive"},
	}
}

// archiveKey reads --encryption-key-file; nil when none is given.
func archiveKey(c *cli.Context) (*archive.Key, error) {
	f := c.String("encryption-key-file")
	if f == "" {
		return nil, nil
	}
	b, err := fsutil.ReadSecretFile(f, "encryption key file")
	if err != nil {
		return nil, err
	}
	k, err := archive.ParseKey(b)
	if err != nil {
		return nil, usageError{fmt.Errorf("encryption key %s: %w", f, err)}
	}
	return &k, nil
}

// remoteOptions reads the remote flags and the archive key.
func remoteOptions(c *cli.Context) (remote.Options, error) {
	key, err := archiveKey(c)
	if err != nil {
		return remote.Options{}, err
	}
	if c.Duration("io-timeout") <= 0 {
		return remote.Options{}, usageError{errors.New("--io-timeout must be above 0")}
	}
	asOf, err := parseAsOf(c.String("as-of"))
	if err != nil {
		return remote.Options{}, err
	}
	return remote.Options{S3Endpoint: c.String("s3-endpoint"), S3Region: c.String("s3-region"), S3Insecure: c.Bool("s3-insecure"),
		ConfigFile: c.String("remote-config"), Key: key, IOTimeout: c.Duration("io-timeout"), AsOf: asOf}, nil
}

// openRemote opens --remote; with init, an uninitialised remote is
// initialised (and a missing bucket created).
func openRemote(c *cli.Context, init bool) (*archive.Repo, error) {
	if c.String("remote") == "" {
		return nil, usageError{errors.New("--remote (or HOTSNAP_REMOTE) is required")}
	}
	o, err := remoteOptions(c)
	if err != nil {
		return nil, err
	}
	return remote.Open(c.Context, c.String("remote"), o, init)
}

func uploadCommand() *cli.Command {
	return &cli.Command{
		Name:  "upload",
		Usage: "send a snapshot to the archive (only what the archive does not hold yet)",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(),
			&cli.IntFlag{Name: "workers", Usage: "files read and compressed at once (default: CPUs)"}}, remoteFlags()...)...),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			if _, err := snapshot.ReadHeader(l, id); err != nil {
				return err
			}
			r, err := openRemote(c, true)
			if err != nil {
				return err
			}
			res, err := archive.Upload(c.Context, r, l, id, archive.UploadOptions{Workers: c.Int("workers"), Progress: e.progressFor(), Logger: e.log})
			if err != nil {
				return err
			}
			if rt := res.Retention; rt != nil && rt.Warning != "" {
				e.log.Warn(rt.Warning)
			}
			e.result(res, func(w io.Writer) {
				fmt.Fprintf(w, "uploaded %s (node %s) to %s\n", res.ID, res.Node, r.Store())
				fmt.Fprintf(w, "  %d files: %d read (%s), %d already archived; %d new chunks, %d reused; %d packs, %s sent; %.0f ms\n",
					res.Files, res.FilesRead, humanBytes(res.BytesRead), res.FilesReused, res.ChunksNew, res.ChunksReused,
					res.PacksWritten, humanBytes(res.BytesSent), res.DurationMs)
				if res.OrphanPacksReused > 0 {
					fmt.Fprintf(w, "  resumed: reused %d pack(s) of an interrupted upload\n", res.OrphanPacksReused)
				}
				printRetention(w, res.Retention)
			})

			return nil
		},
	}
}

func downloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "download",
		Usage: "bring a snapshot back from the archive into the backups dir, verifying every chunk and file",
		Flags: withOutput(append([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(), idFlag(),
			nodeIDFlag("whose piece of the snapshot"),
			&cli.IntFlag{Name: "workers", Usage: "files fetched at once (default 4)"},
			&cli.StringFlag{Name: "target", Usage: "write the snapshot's files (or the --include ones) into this new directory instead of making a local snapshot"},
			&cli.StringSliceFlag{Name: "include", Usage: "with --target: glob of the entries to fetch (the --copy rules; a directory brings its subtree; repeatable)"},
			&cli.BoolFlag{Name: "allow-setid", Usage: "make setuid and setgid files of an unencrypted archive as its manifest says (refused without: only an encrypted archive proves who wrote them)"},
			asOfFlag(),
		}, remoteFlags()...)...),
		Action: func(c *cli.Context) error {
			if c.IsSet("include") && !c.IsSet("target") {
				return usageError{errors.New("--include needs --target DIR: a downloaded snapshot is always whole")}
			}
			if c.IsSet("target") { // no data dir needed
				e := getEnv(c)
				if err := noArgs(c); err != nil {
					return err
				}
				id, err := requireID(c)
				if err != nil {
					return err
				}
				rs := &remoteSide{c: c}
				defer rs.close()
				rd, err := rs.open()
				if err != nil {
					return err
				}
				res, err := rd.Extract(c.Context, id, c.String("node-id"), c.String("target"), c.StringSlice("include"), c.Bool("allow-setid"))
				if err != nil {
					return err
				}
				e.result(res, func(w io.Writer) {
					fmt.Fprintf(w, "wrote %d files, %d dirs, %d symlinks (%s) of %s (node %s) into %s: %d chunks fetched, every file checked; took %.0f ms\n",
						res.Files, res.Dirs, res.Symlinks, humanBytes(res.Bytes), res.ID, res.Node, res.Target, res.ChunksFetched, res.DurationMs)
				})
				return nil
			}
			e, l, id, err := prologue(c, true)
			if err != nil {
				return err
			}
			r, err := openRemote(c, false)
			if err != nil {
				return err
			}
			res, err := archive.Download(c.Context, r, l, id, archive.DownloadOptions{Node: c.String("node-id"), Workers: c.Int("workers"), Progress: e.progressFor(), Logger: e.log, AllowSetID: c.Bool("allow-setid")})
			if err != nil {
				return err
			}
			e.result(res, func(w io.Writer) {
				fmt.Fprintf(w, "downloaded %s (node %s) into %s\n", res.ID, res.Node, res.Path)
				fmt.Fprintf(w, "  %d files, %s: %d fetched (%s in %d requests), %d taken from local snapshots; %.0f ms\n",
					res.Files, humanBytes(res.Bytes), res.FilesFetched, humanBytes(res.BytesFetched), res.RequestsFetched, res.FilesLocal, res.DurationMs)
			})
			return nil
		},
	}
}

func archiveCommand() *cli.Command {
	return &cli.Command{
		Name:  "archive",
		Usage: "manage the archive: keygen, key, init, ls, check, forget, gc",
		Subcommands: []*cli.Command{
			keyCommand(),
			{
				Name:  "keygen",
				Usage: "write a new random archive key (64 hex digits) to a new file, mode 0600: hotsnap archive keygen --output archive.key",
				Flags: withOutput(&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the key file to create (it must not exist; written 0600); - prints the key to stdout"}),
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					e := getEnv(c)
					out := c.String("output")
					if out == "" {
						return usageError{errors.New("--output FILE is required (the key is written there, mode 0600; --output - prints it)")}
					}
					k := archive.GenerateKey()
					line := []byte(fmt.Sprintf("%x\n", k[:]))
					if out == "-" {
						e.stdout.Write(line)
						return nil
					}
					if err := fsutil.WriteSecretFile(out, line); err != nil {
						if errors.Is(err, fs.ErrExist) {
							return usageError{fmt.Errorf("key file %s already exists: hotsnap never overwrites a key", out)}
						}
						return fmt.Errorf("write key: %w", err)
					}
					e.result(map[string]any{"keyFile": out, "keyId": k.ID()}, func(w io.Writer) {
						fmt.Fprintf(w, "wrote a new archive key to %s (mode 0600), key id %s\n", out, k.ID())
					})
					return nil
				},
			},
			{
				Name:  "init",
				Usage: "initialise an empty remote (upload does it on first use)",
				Flags: withOutput(append(remoteFlags(), &cli.IntFlag{Name: "pack-size", Usage: "target pack size in bytes (default 16 MiB; at least 1 MiB)"},
					&cli.IntFlag{Name: "object-lock-days", Usage: "S3 Object Lock: protect every snapshot for this many days after its upload (the bucket is made with object locking, or must have it)"},
					&cli.StringFlag{Name: "object-lock-mode", Value: "governance", Usage: "with --object-lock-days: governance (the bypass permission can lift it) or compliance (nobody can, until the date)"})...),
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					if c.String("remote") == "" {
						return usageError{errors.New("--remote (or HOTSNAP_REMOTE) is required")}
					}
					o, err := remoteOptions(c)
					if err != nil {
						return err
					}
					lock, err := objectLockOption(c)
					if err != nil {
						return err
					}
					// A locked archive's bucket is made by Init, with object
					// locking (it cannot be turned on later).
					st, err := remote.Store(c.Context, c.String("remote"), o, lock == nil)
					if err != nil {
						return err
					}
					r, err := archive.Init(c.Context, st, archive.InitOptions{PackSize: c.Int("pack-size"), Key: o.Key, ObjectLock: lock})
					if err != nil {
						return err
					}
					cfg := r.Config()
					keyFile := ""
					if o.Key != nil {
						keyFile = o.Key.ID()
					}
					e.result(map[string]any{"remote": st.String(), "id": cfg.ID, "packSize": cfg.PackSize, "chunker": cfg.Chunker, "keyId": r.KeyID(), "keyFile": keyFile, "objectLock": cfg.ObjectLock},
						func(w io.Writer) {
							fmt.Fprintf(w, "initialised archive %s at %s\n", cfg.ID, st)
							if ol := cfg.ObjectLock; ol != nil {
								fmt.Fprintf(w, "  object lock: %s mode; every snapshot protected %d days after its upload (the bucket retains new objects %d days)\n", ol.Mode, ol.Days, ol.BucketDays())
							}
							if keyFile != "" {
								fmt.Fprintf(w, "  encrypted (%s) with a random data key, opened by key file %s: keep a key file safe (add a second one with archive key add), the data cannot be read without one\n", archive.Algorithm, keyFile)
							}
						})
					return nil
				},
			},
			{
				Name:  "ls",
				Usage: "list the snapshots in the archive",
				Flags: withOutput(append(remoteFlags(), asOfFlag())...),
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					r, err := openRemote(c, false)
					if err != nil {
						return err
					}
					list, err := r.List(c.Context)
					if err != nil {
						return err
					}
					e.result(map[string]any{"snapshots": list}, func(w io.Writer) {
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
							fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\n", s.ID, s.Node, s.CreatedAt.Format("2006-01-02 15:04:05Z"), s.Files, humanBytes(s.Bytes), s.PotentiallyInconsistent)
						}
						tw.Flush()
					})
					return nil
				},
			},
			{
				Name:  "forget",
				Usage: "remove snapshots from the archive that no keep rule keeps (their data goes at the next gc)",
				Flags: withOutput(append(remoteFlags(), keepFlags()...)...),
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					r, err := openRemote(c, false)
					if err != nil {
						return err
					}
					res, err := r.Forget(c.Context, keepPolicy(c), c.Bool("dry-run"), time.Now())
					if err != nil {
						return err
					}
					e.result(res, func(w io.Writer) {
						printPrune(w, &snapshot.PruneResult{DryRun: res.DryRun, Keep: res.Keep, Remove: res.Remove})
					})
					return nil
				},
			},
			{
				Name:  "gc",
				Usage: "delete the data no archived snapshot needs (exclusive lock; repacks partly used packs)",
				Flags: withOutput(append(remoteFlags(), &cli.BoolFlag{Name: "dry-run", Usage: "say what would be freed; delete nothing"})...),
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					r, err := openRemote(c, false)
					if err != nil {
						return err
					}
					res, err := r.GC(c.Context, c.Bool("dry-run"), e.progressFor())
					if err != nil {
						return err
					}
					e.result(res, func(w io.Writer) {
						for _, s := range res.StaleLocks {
							fmt.Fprintln(w, s)
						}
						verb := "freed"
						if res.DryRun {
							verb = "would free"
						}
						fmt.Fprintf(w, "%d snapshot piece(s) use %d chunks; %d pack(s) deleted (%d repacked into %d), %d indexes merged\n",
							res.Snapshots, res.ChunksUsed, res.PacksDeleted, res.PacksRepacked, res.PacksWritten, res.IndexesMerged)
						fmt.Fprintf(w, "%s %s: %s -> %s; %.0f ms\n", verb, humanBytes(res.BytesBefore-res.BytesAfter),
							humanBytes(res.BytesBefore), humanBytes(res.BytesAfter), res.DurationMs)
					})
					return nil
				},
			},
			{
				Name:  "unlock",
				Usage: "remove the archive's stale locks (their holder on this host is gone, or they expired); --force removes every lock",
				Flags: withOutput(append(remoteFlags(), &cli.BoolFlag{Name: "force", Usage: "remove live locks too (after saying whose): only when you know their holders are gone"})...),
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					r, err := openRemote(c, false)
					if err != nil {
						return err
					}
					removed, kept, err := r.Unlock(c.Context, c.Bool("force"))
					if err != nil {
						return err
					}
					e.result(map[string]any{"removed": removed, "kept": kept}, func(w io.Writer) {
						for _, l := range removed { // a lock names what its writer put there: quoted
							fmt.Fprintf(w, "removed %s\n", fsutil.QuoteText(l))
						}
						for _, l := range kept {
							fmt.Fprintf(w, "kept %s (live; --force removes it)\n", fsutil.QuoteText(l))
						}
						if len(removed)+len(kept) == 0 {
							fmt.Fprintln(w, "no locks")
						}
					})
					return nil
				},
			},
			{
				Name:  "check",
				Usage: "verify the archive's structure, and with --read-data its data",
				Flags: withOutput(append(remoteFlags(),
					&cli.BoolFlag{Name: "read-data", Usage: "download and verify every pack"},
					&cli.StringFlag{Name: "read-data-subset", Usage: "download and verify a share of the packs, e.g. 10%"},
					&cli.BoolFlag{Name: "repair-retention", Usage: "object lock: extend the retention of every object that ends before a snapshot needing it is protected"},
					asOfFlag())...),
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					var subset float64
					if s := c.String("read-data-subset"); s != "" {
						v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
						if err != nil || v <= 0 || v > 100 {
							return usageError{fmt.Errorf("--read-data-subset %q: want a percentage in (0, 100], e.g. 10%%", s)}
						}
						subset = v / 100
					}
					r, err := openRemote(c, false)
					if err != nil {
						return err
					}
					res, err := r.Check(c.Context, archive.CheckOptions{ReadData: c.Bool("read-data"), ReadDataSubset: subset, RepairRetention: c.Bool("repair-retention"), Progress: e.progressFor()})
					if err != nil {
						return err
					}
					e.result(res, func(w io.Writer) {
						for _, p := range res.Problems {
							fmt.Fprintln(w, p)
						}
						fmt.Fprintf(w, "%d snapshot piece(s), %d packs, %d chunks; %d packs read", res.Snapshots, res.Packs, res.Chunks, res.PacksRead)
						if res.OrphanPacks > 0 {
							fmt.Fprintf(w, "; %d unreferenced pack(s) from an interrupted upload (the next upload reuses them)", res.OrphanPacks)
						}
						fmt.Fprintln(w)
						printRetentionCheck(w, res.Retention)
						if res.OK() {
							fmt.Fprintln(w, "ok: no problems found")
						}
					})
					if !res.OK() {
						err := fmt.Errorf("%w: %d problem(s) found", archive.ErrCorrupt, len(res.Problems))
						if e.json {
							return silentError{err}
						}
						return err
					}
					return nil
				},
			},
		},
	}
}
