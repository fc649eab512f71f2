package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/fsutil"
)

// archive key add|list|remove: the key files of an encrypted archive.

// readKeyFile reads a key file named by flag.
func readKeyFile(c *cli.Context, flag string) (archive.Key, error) {
	f := c.String(flag)
	if f == "" {
		return archive.Key{}, usageError{fmt.Errorf("--%s FILE is required", flag)}
	}
	b, err := fsutil.ReadSecretFile(f, "key file")
	if err != nil {
		return archive.Key{}, err
	}
	k, err := archive.ParseKey(b)
	if err != nil {
		return archive.Key{}, usageError{fmt.Errorf("key file %s: %w", f, err)}
	}
	return k, nil
}

// keyCommand: archive key add|list|remove (key rotation).
func keyCommand() *cli.Command {
	open := func(c *cli.Context) (*env, *archive.Repo, error) {
		if err := noArgs(c); err != nil {
			return nil, nil, err
		}
		if c.String("encryption-key-file") == "" {
			return nil, nil, usageError{errors.New("--encryption-key-file (a key file that opens the archive now) is required")}
		}
		r, err := openRemote(c, false)
		return getEnv(c), r, err
	}
	return &cli.Command{
		Name:  "key",
		Usage: "the key files that open an encrypted archive: add, list, remove (rotation without re-encrypting)",
		Subcommands: []*cli.Command{
			{
				Name:  "add",
				Usage: "let another key file open the archive (made with archive keygen): --new-key-file F",
				Flags: withOutput(append([]cli.Flag{&cli.StringFlag{Name: "new-key-file", Usage: "the key file to add"}}, remoteFlags()...)...),
				Action: func(c *cli.Context) error {
					e, r, err := open(c)
					if err != nil {
						return err
					}
					k, err := readKeyFile(c, "new-key-file")
					if err != nil {
						return err
					}
					if err := r.AddKeyFile(c.Context, k); err != nil {
						return err
					}
					e.result(map[string]string{"added": k.ID()}, func(w io.Writer) {
						fmt.Fprintf(w, "key file %s now opens the archive too\n", k.ID())
					})
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list the ids of the key files that open the archive",
				Flags: withOutput(remoteFlags()...),
				Action: func(c *cli.Context) error {
					e, r, err := open(c)
					if err != nil {
						return err
					}
					ids, legacy, err := r.KeyFiles(c.Context)
					if err != nil {
						return err
					}
					e.result(map[string]any{"keyFiles": append([]string{}, ids...), "dataKeyFile": legacy}, func(w io.Writer) {
						for _, id := range ids {
							fmt.Fprintln(w, id)
						}
						if legacy != "" {
							fmt.Fprintf(w, "%s (the data key itself: an archive of hotsnap 0.2; cannot be removed)\n", legacy)
						}
					})
					return nil
				},
			},
			{
				Name:  "remove",
				Usage: "revoke a key file: it no longer opens the archive (--key-id ID, from archive key list)",
				Flags: withOutput(append([]cli.Flag{&cli.StringFlag{Name: "key-id", Usage: "the id of the key file to revoke"}}, remoteFlags()...)...),
				Action: func(c *cli.Context) error {
					e, r, err := open(c)
					if err != nil {
						return err
					}
					id := c.String("key-id")
					if id == "" {
						return usageError{errors.New("--key-id is required (archive key list shows them)")}
					}
					if err := r.RemoveKeyFile(c.Context, id); err != nil {
						return err
					}
					e.result(map[string]string{"removed": id}, func(w io.Writer) {
						fmt.Fprintf(w, "key file %s no longer opens the archive\n", id)
					})
					return nil
				},
			},
		},
	}
}
