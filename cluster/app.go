package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hotsnap/hotsnap/snapshot"
	"github.com/hotsnap/hotsnap/snapshot/quiesce"
)

// Stopping and starting the application around a cluster restore: each
// agent runs the stop and start commands it was configured with
// (--stop-cmd, --start-cmd); a coordinator only says which, never sends a
// command.

// AppRequest asks an agent to stop or start its application.
type AppRequest struct {
	Action string `json:"action"` // "stop" or "start"
}

// AppResponse says what the agent did: Configured is false when it has no
// such command (nothing ran).
type AppResponse struct {
	Node       string  `json:"node"`
	Action     string  `json:"action"`
	Configured bool    `json:"configured"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	DurationMs float64 `json:"durationMs"`
}

func (a *Agent) handleApp(w http.ResponseWriter, r *http.Request) {
	var req AppRequest
	if err := decode(r, &req); err != nil {
		a.failErr(w, err)
		return
	}
	cmd := ""
	switch req.Action {
	case "stop":
		cmd = a.cfg.StopCmd
	case "start":
		cmd = a.cfg.StartCmd
	default:
		a.failErr(w, fmt.Errorf("%w: action %q: want stop or start", snapshot.ErrInvalid, req.Action))
		return
	}
	resp := AppResponse{Node: a.cfg.NodeID, Action: req.Action, Configured: cmd != "", OK: true}
	if cmd != "" {
		start := time.Now()
		// A start runs to its end even when the coordinator goes away: an
		// application left stopped is worse than a start nobody hears of.
		ctx := r.Context()
		if req.Action == "start" {
			ctx = context.WithoutCancel(ctx)
		}
		if err := quiesce.RunHook(ctx, req.Action, cmd, a.cfg.HookTimeout, a.cfg.Layout.DataDir, a.log); err != nil {
			resp.OK, resp.Error = false, err.Error()
		}
		resp.DurationMs = ms(time.Since(start))
	}
	a.reply(w, http.StatusOK, resp)
}

// App asks the agent to stop or start its application.
func (c *Client) App(ctx context.Context, action string) (*AppResponse, error) {
	var out AppResponse
	err := c.call(ctx, "POST", "/v1/app", AppRequest{Action: action}, &out)
	return &out, err
}

// appAll runs action on every node at once; it returns each node's answer
// (nil where the call failed) and the failures.
func appAll(ctx context.Context, cls []*Client, action string) ([]*AppResponse, error) {
	out := make([]*AppResponse, len(cls))
	errs := each(cls, func(i int, cl *Client) error {
		r, err := cl.App(ctx, action)
		if err != nil {
			return fmt.Errorf("node %s: %s: %w", cl.Node, action, err)
		}
		out[i] = r
		if !r.OK {
			return fmt.Errorf("node %s: %s", cl.Node, r.Error)
		}
		return nil
	})
	return out, errors.Join(errs...)
}
