package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive/repo"
)

// Immutable archives: the object lock options of archive init, --as-of,
// and how retention is printed.

func asOfFlag() cli.Flag {
	return &cli.StringFlag{Name: "as-of", Usage: "read the archive as it was at this time (RFC 3339, e.g. 2026-12-04T10:00:00Z, or a date): the object versions current then, in a versioned S3 bucket; read-only"}
}

// objectLockOption reads archive init's --object-lock-days and -mode.
func objectLockOption(c *cli.Context) (*repo.ObjectLock, error) {
	if !c.IsSet("object-lock-days") {
		if c.IsSet("object-lock-mode") {
			return nil, usageError{fmt.Errorf("--object-lock-mode needs --object-lock-days N")}
		}
		return nil, nil
	}
	mode := strings.ToLower(c.String("object-lock-mode"))
	if mode != "governance" && mode != "compliance" {
		return nil, usageError{fmt.Errorf("--object-lock-mode %q: want governance or compliance", c.String("object-lock-mode"))}
	}
	if d := c.Int("object-lock-days"); d < 1 {
		return nil, usageError{fmt.Errorf("--object-lock-days %d: want at least 1", d)}
	}
	return &repo.ObjectLock{Mode: mode, Days: c.Int("object-lock-days")}, nil
}
