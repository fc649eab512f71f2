package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/remote"
	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/report"
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
func archiveKey(c *cli.Context) (*repo.Key, error) {
	f := c.String("encryption-key-file")
	if f == "" {
		return nil, nil
	}
	b, err := fsutil.ReadSecretFile(f, "encryption key file")
	if err != nil {
		return nil, err
	}
	k, err := repo.ParseKey(b)
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
	asOf, err := remote.ParseAsOf(c.String("as-of"))
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
	return remoteOpener(c, init)(c.Context, c.String("remote"))
}

// remoteOpener opens a remote spec (a policy's) with the remote flags;
// with init, an uninitialised remote is initialised.
func remoteOpener(c *cli.Context, init bool) func(ctx context.Context, spec string) (*archive.Repo, error) {
	return func(ctx context.Context, spec string) (*archive.Repo, error) {
		o, err := remoteOptions(c)
		if err != nil {
			return nil, err
		}
		return remote.Open(ctx, spec, o, init)
	}
}

func uploadCommand() *cli.Command {
	flags := append([]cli.Flag{&cli.IntFlag{Name: "workers", Usage: "files read and compressed at once (default: CPUs)"}}, remoteFlags()...)
	return localCmd("upload", "send a snapshot to the archive (only what the archive does not hold yet)", true, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, id string) error {
			if _, err := snapshot.ReadHeader(l, id); err != nil {
				return err // before the remote is initialised for nothing
			}
			r, err := openRemote(c, true)
			if err != nil {
				return err
			}
			res, err := archive.Upload(c.Context, r, l, id, archive.UploadOptions{Workers: c.Int("workers"), Progress: e.Progress(), Logger: e.log})
			if err == nil && res.Retention != nil && res.Retention.Warning != "" {
				e.log.Warn(res.Retention.Warning)
			}
			return show(e, res, err, func(res *archive.UploadResult) report.Text { return report.Upload(res, r.Store()) })
		})
}

func downloadCommand() *cli.Command {
	flags := append([]cli.Flag{nodeIDFlag("whose piece of the snapshot"),
		&cli.IntFlag{Name: "workers", Usage: "files fetched at once (default 4)"},
		&cli.StringFlag{Name: "target", Usage: "write the snapshot's files (or the --include ones) into this new directory instead of making a local snapshot"},
		&cli.StringSliceFlag{Name: "include", Usage: "with --target: glob of the entries to fetch (the --copy rules; a directory brings its subtree; repeatable)"},
		&cli.BoolFlag{Name: "allow-setid", Usage: "make setuid and setgid files of an unencrypted archive as its manifest says (refused without: only an encrypted archive proves who wrote them)"},
		asOfFlag(),
	}, remoteFlags()...)
	cmd := localCmd("download", "bring a snapshot back from the archive into the backups dir, verifying every chunk and file", true, flags,
		func(c *cli.Context, e *env, l *snapshot.Layout, id string) error {
			r, err := openRemote(c, false)
			if err != nil {
				return err
			}
			res, err := archive.Download(c.Context, r, l, id, archive.DownloadOptions{Node: c.String("node-id"), Workers: c.Int("workers"),
				Progress: e.Progress(), Logger: e.log, AllowSetID: c.Bool("allow-setid")})
			return show(e, res, err, report.Download)
		})
	local := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if !c.IsSet("target") {
			if c.IsSet("include") {
				return usageError{errors.New("--include needs --target DIR: a downloaded snapshot is always whole")}
			}
			return local(c)
		}
		id, err := requireID(c) // --target: no data dir needed
		if err == nil {
			err = noArgs(c)
		}
		if err != nil {
			return err
		}
		rs := remoteReader(c)
		defer rs.Close()
		rd, err := rs.Get()
		if err != nil {
			return err
		}
		res, err := rd.Extract(c.Context, id, c.String("node-id"), c.String("target"), c.StringSlice("include"), c.Bool("allow-setid"))
		return show(getEnv(c), res, err, report.DownloadExtract)
	}
	return cmd
}

// archiveCmd is an archive command: the remote flags, its flags, the
// output flags; action gets the opened archive.
func archiveCmd(name, usage string, flags []cli.Flag, action func(c *cli.Context, e *env, r *archive.Repo) error) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, Flags: withOutput(append(remoteFlags(), flags...)...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			r, err := openRemote(c, false)
			if err != nil {
				return err
			}
			return action(c, getEnv(c), r)
		}}
}

func archiveCommand() *cli.Command {
	return &cli.Command{
		Name:  "archive",
		Usage: "manage the archive: keygen, key, init, ls, check, forget, gc",
		Subcommands: []*cli.Command{keyCommand(), keygenCommand(), archiveInitCommand(),
			archiveCmd("ls", "list the snapshots in the archive", []cli.Flag{asOfFlag()}, func(c *cli.Context, e *env, r *archive.Repo) error {
				list, err := r.List(c.Context)
				if err != nil {
					return err
				}
				e.Result(map[string]any{"snapshots": list}, report.ArchiveList(list))
				return nil
			}),
			archiveCmd("forget", "remove snapshots from the archive that no keep rule keeps (their data goes at the next gc)", keepFlags(),
				func(c *cli.Context, e *env, r *archive.Repo) error {
					res, err := r.Forget(c.Context, keepPolicy(c), c.Bool("dry-run"), time.Now())
					return show(e, res, err, report.Forget)
				}),
			archiveCmd("gc", "delete the data no archived snapshot needs (exclusive lock; repacks partly used packs)",
				[]cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "say what would be freed; delete nothing"}},
				func(c *cli.Context, e *env, r *archive.Repo) error {
					res, err := r.GC(c.Context, c.Bool("dry-run"), e.Progress())
					return show(e, res, err, report.GC)
				}),
			archiveCmd("unlock", "remove the archive's stale locks (their holder on this host is gone, or they expired); --force removes every lock",
				[]cli.Flag{&cli.BoolFlag{Name: "force", Usage: "remove live locks too (after saying whose): only when you know their holders are gone"}},
				func(c *cli.Context, e *env, r *archive.Repo) error {
					removed, kept, err := r.Unlock(c.Context, c.Bool("force"))
					if err != nil {
						return err
					}
					e.Result(map[string]any{"removed": removed, "kept": kept}, report.Unlock(removed, kept))
					return nil
				}),
			archiveCheckCommand(),
		},
	}
}

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "write a new random archive key (64 hex digits) to a new file, mode 0600: hotsnap archive keygen --output archive.key",
		Flags: withOutput(&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the key file to create (it must not exist; written 0600); - prints the key to stdout"}),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			e, out := getEnv(c), c.String("output")
			if out == "" {
				return usageError{errors.New("--output FILE is required (the key is written there, mode 0600; --output - prints it)")}
			}
			k := repo.GenerateKey()
			line := []byte(fmt.Sprintf("%x\n", k[:]))
			if out == "-" {
				e.Stdout.Write(line)
				return nil
			}
			if err := fsutil.WriteSecretFile(out, line); errors.Is(err, fs.ErrExist) {
				return usageError{fmt.Errorf("key file %s already exists: hotsnap never overwrites a key", out)}
			} else if err != nil {
				return fmt.Errorf("write key: %w", err)
			}
			e.Result(map[string]any{"keyFile": out, "keyId": k.ID()}, report.Line("wrote a new archive key to %s (mode 0600), key id %s", out, k.ID()))
			return nil
		},
	}
}

func archiveInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "initialise an empty remote (upload does it on first use)",
		Flags: withOutput(append(remoteFlags(), &cli.IntFlag{Name: "pack-size", Usage: "target pack size in bytes (default 16 MiB; at least 1 MiB)"},
			&cli.IntFlag{Name: "object-lock-days", Usage: "S3 Object Lock: protect every snapshot for this many days after its upload (the bucket is made with object locking, or must have it)"},
			&cli.StringFlag{Name: "object-lock-mode", Value: "governance", Usage: "with --object-lock-days: governance (the bypass permission can lift it) or compliance (nobody can, until the date)"})...),
		Action: func(c *cli.Context) error {
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
			r, err := archive.Init(c.Context, st, repo.InitOptions{PackSize: c.Int("pack-size"), Key: o.Key, ObjectLock: lock})
			if err != nil {
				return err
			}
			cfg, keyFile := r.Config(), ""
			if o.Key != nil {
				keyFile = o.Key.ID()
			}
			getEnv(c).Result(map[string]any{"remote": st.String(), "id": cfg.ID, "packSize": cfg.PackSize, "chunker": cfg.Chunker, "keyId": r.KeyID(), "keyFile": keyFile, "objectLock": cfg.ObjectLock},
				report.Init(cfg, st, keyFile))
			return nil
		},
	}
}

func archiveCheckCommand() *cli.Command {
	return archiveCmd("check", "verify the archive's structure, and with --read-data its data", []cli.Flag{
		&cli.BoolFlag{Name: "read-data", Usage: "download and verify every pack"},
		&cli.StringFlag{Name: "read-data-subset", Usage: "download and verify a share of the packs, e.g. 10%"},
		&cli.BoolFlag{Name: "repair-retention", Usage: "object lock: extend the retention of every object that ends before a snapshot needing it is protected"},
		asOfFlag()},
		func(c *cli.Context, e *env, r *archive.Repo) error {
			var subset float64
			if s := c.String("read-data-subset"); s != "" {
				v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
				if err != nil || v <= 0 || v > 100 {
					return usageError{fmt.Errorf("--read-data-subset %q: want a percentage in (0, 100], e.g. 10%%", s)}
				}
				subset = v / 100
			}
			res, err := r.Check(c.Context, archive.CheckOptions{ReadData: c.Bool("read-data"), ReadDataSubset: subset, RepairRetention: c.Bool("repair-retention"), Progress: e.Progress()})
			if err != nil {
				return err
			}
			e.Result(res, report.Check(res))
			if res.OK() {
				return nil
			}
			err = fmt.Errorf("%w: %d problem(s) found", repo.ErrCorrupt, len(res.Problems))
			if e.JSON {
				return silentError{err}
			}
			return err
		})
}
