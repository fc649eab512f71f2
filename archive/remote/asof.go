package remote

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/errs"
)

// ParseAsOf reads an --as-of time (Options.AsOf): RFC 3339,
// "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD" (UTC), or @UNIXSECONDS; "" is the
// present (the zero time). A time in the future is refused. Errors are
// usage errors.
func ParseAsOf(s string) (time.Time, error) {
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
				return time.Time{}, errs.New(errs.Usage, fmt.Sprintf("--as-of %s is in the future", s))
			}
			return t, nil
		}
	}
	return time.Time{}, errs.New(errs.Usage, fmt.Sprintf("--as-of %q: want RFC 3339 (2026-12-04T10:00:00Z), YYYY-MM-DD HH:MM:SS or YYYY-MM-DD (UTC), or @UNIXSECONDS", s))
}
