package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/report"
)

// archive key add|list|remove: the key files of an encrypted archive.

// readKeyFile reads a key file named by flag.
func readKeyFile(c *cli.Context, flag string) (repo.Key, error) {
	f := c.String(flag)
	if f == "" {
		return repo.Key{}, usageError{fmt.Errorf("--%s FILE is required", flag)}
	}
	b, err := fsutil.ReadSecretFile(f, "key file")
	if err != nil {
		return repo.Key{}, err
	}
	k, err := repo.ParseKey(b)
	if err != nil {
		return repo.Key{}, usageError{fmt.Errorf("key file %s: %w", f, err)}
	}
	return k, nil
}

// keyCmd is an archive key command: an archive command that needs
// --encryption-key-file, a key file that opens the archive now.
func keyCmd(name, usage string, flags []cli.Flag, action func(c *cli.Context, e *env, r *archive.Repo) error) *cli.Command {
	cmd := archiveCmd(name, usage, flags, action)
	open := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if c.String("encryption-key-file") == "" {
			return usageError{errors.New("--encryption-key-file (a key file that opens the archive now) is required")}
		}
		return open(c)
	}
	return cmd
}

// keyCommand: archive key add|list|remove (key rotation).
func keyCommand() *cli.Command {
	return &cli.Command{
		Name:  "key",
		Usage: "the key files that open an encrypted archive: add, list, remove (rotation without re-encrypting)",
		Subcommands: []*cli.Command{
			keyCmd("add", "let another key file open the archive (made with archive keygen): --new-key-file F",
				[]cli.Flag{&cli.StringFlag{Name: "new-key-file", Usage: "the key file to add"}},
				func(c *cli.Context, e *env, r *archive.Repo) error {
					k, err := readKeyFile(c, "new-key-file")
					if err != nil {
						return err
					}
					if err := r.AddKeyFile(c.Context, k); err != nil {
						return err
					}
					e.Result(map[string]string{"added": k.ID()}, report.Line("key file %s now opens the archive too", k.ID()))
					return nil
				}),
			keyCmd("list", "list the ids of the key files that open the archive", nil, func(c *cli.Context, e *env, r *archive.Repo) error {
				ids, legacy, err := r.KeyFiles(c.Context)
				if err != nil {
					return err
				}
				e.Result(map[string]any{"keyFiles": append([]string{}, ids...), "dataKeyFile": legacy}, report.KeyFiles(ids, legacy))
				return nil
			}),
			keyCmd("remove", "revoke a key file: it no longer opens the archive (--key-id ID, from archive key list)",
				[]cli.Flag{&cli.StringFlag{Name: "key-id", Usage: "the id of the key file to revoke"}},
				func(c *cli.Context, e *env, r *archive.Repo) error {
					id := c.String("key-id")
					if id == "" {
						return usageError{errors.New("--key-id is required (archive key list shows them)")}
					}
					if err := r.RemoveKeyFile(c.Context, id); err != nil {
						return err
					}
					e.Result(map[string]string{"removed": id}, report.Line("key file %s no longer opens the archive", id))
					return nil
				}),
		},
	}
}
