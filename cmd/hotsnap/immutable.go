package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive"
)

// Immutable archives: the object lock options of archive init, --as-of,
// and how retention is printed.

func asOfFlag() cli.Flag {
	return &cli.StringFlag{Name: "as-of", Usage: "read the archive as it was at this time (RFC 3339, e.g. 2026-12-04T10:00:00Z, or a date): the object versions current then, in a versioned S3 bucket; read-only"}
}

// parseAsOf reads --as-of: RFC 3339, "YYYY-MM-DD HH:MM:SS" or
// "YYYY-MM-DD" (UTC), or @UNIXSECONDS. "" is the present.
func parseAsOf(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutPrefix(s, "@"); ok {
		if v, err := strconv.ParseInt(n, 10, 64); err == nil && v > 0 {
			return time.Unix(v, 0).UTC(), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.After(time.Now().Add(time.Minute)) {
				return time.Time{}, usageError{fmt.Errorf("--as-of %s is in the future", s)}
			}
			return t, nil
		}
	}
	return time.Time{}, usageError{fmt.Errorf("--as-of %q: want RFC 3339 (2026-12-04T10:00:00Z), YYYY-MM-DD HH:MM:SS or YYYY-MM-DD (UTC), or @UNIXSECONDS", s)}
}

// objectLockOption reads archive init's --object-lock-days and -mode.
func objectLockOption(c *cli.Context) (*archive.ObjectLock, error) {
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
	return &archive.ObjectLock{Mode: mode, Days: c.Int("object-lock-days")}, nil
}

func printRetention(w io.Writer, r *archive.RetentionReport) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "  object lock (%s): protected until %s; %d objects of earlier uploads needed (%d packs), %d retention(s) extended\n",
		r.Mode, r.ProtectedUntil.Format(time.RFC3339), r.Needed, r.ReusedPacks, r.Extended)
	if r.Short > 0 {
		fmt.Fprintf(w, "  WARNING: %s\n", r.Warning)
	}
}

func printRetentionCheck(w io.Writer, r *archive.RetentionCheck) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "object lock (%s, %d days): %d needed objects compared; newest snapshot protected until %s, shortest retention of what is needed %s; %d short, %d extended\n",
		r.Mode, r.Days, r.Checked, r.NewestProtectedUntil.UTC().Format(time.RFC3339), r.ShortestUntil.UTC().Format(time.RFC3339), r.Short, r.Repaired)
}
