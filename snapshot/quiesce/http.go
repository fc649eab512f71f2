package quiesce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hotsnap/hotsnap/errs"
)

// HTTP asks the application itself to stop and resume writes over
// HTTP. Lock: POST LockURL with {"timeoutMs": period, "force": bool,
// "dataDir": path}; 200 means writes are stopped, 409, 423 or 503 mean
// "could not drain in time, retry with a longer period" (hotsnap posts the
// unlock URL first), anything else is a failure. Resume: POST UnlockURL;
// it must answer 200. A request still running after the period counts as a
// retry. A bearer token is sent when set.
type HTTP struct {
	LockURL, UnlockURL string
	Token              string
	DataDir            string
	Force              bool
	// UnlockTimeout bounds the unlock request; 0 means 30s.
	UnlockTimeout time.Duration
	Client        *http.Client
}

var _ Quiescer = (*HTTP)(nil)

func (q *HTTP) post(ctx context.Context, url string, timeout time.Duration) (int, string, error) {
	body, _ := json.Marshal(map[string]any{"timeoutMs": timeout.Milliseconds(), "force": q.Force, "dataDir": q.DataDir})
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if q.Token != "" {
		req.Header.Set("Authorization", "Bearer "+q.Token)
	}
	c := q.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return 0, "", context.DeadlineExceeded
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	return resp.StatusCode, strings.TrimSpace(string(msg)), nil
}

// Quiesce implements Quiescer.
func (q *HTTP) Quiesce(ctx context.Context, wait time.Duration) error {
	code, msg, err := q.post(ctx, q.LockURL, wait)
	switch {
	case errors.Is(err, context.DeadlineExceeded), code == http.StatusConflict, code == http.StatusLocked, code == http.StatusServiceUnavailable:
		q.post(context.WithoutCancel(ctx), q.UnlockURL, q.unlockTimeout())
		return errs.ErrLockTimeout
	case err != nil:
		return fmt.Errorf("%w: lock request to %s: %v", ErrFailed, q.LockURL, err)
	case code != http.StatusOK:
		return fmt.Errorf("%w: lock request to %s answered %d: %s", ErrFailed, q.LockURL, code, msg)
	}
	return nil
}

func (q *HTTP) unlockTimeout() time.Duration {
	if q.UnlockTimeout > 0 {
		return q.UnlockTimeout
	}
	return 30 * time.Second
}

// Resume implements Quiescer.
func (q *HTTP) Resume(ctx context.Context) error {
	code, msg, err := q.post(ctx, q.UnlockURL, q.unlockTimeout())
	if err != nil {
		return fmt.Errorf("%w: unlock request to %s: %v", ErrFailed, q.UnlockURL, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("%w: unlock request to %s answered %d: %s", ErrFailed, q.UnlockURL, code, msg)
	}
	return nil
}
