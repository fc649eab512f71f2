package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Client calls one agent's API.
type Client struct {
	Node  string
	URL   string // http(s)://host:port
	token string
	http  *http.Client
}

// call sends a JSON request and decodes the JSON answer into out. Agent
// errors come back as *RemoteError; transport errors name the node.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return fmt.Errorf("node %s: %w", c.Node, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("node %s: %w", c.Node, ctx.Err())
		}
		// url.Error repeats the URL, which never holds a secret here.
		return fmt.Errorf("node %s unreachable: %w", c.Node, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("node %s: read answer: %w", c.Node, err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			if eb.Error.Node == "" {
				eb.Error.Node = c.Node
			}
			return &eb.Error
		}
		return &RemoteError{Node: c.Node, Kind: errs.Error.String(), Message: fmt.Sprintf("HTTP %s: %.200s", resp.Status, b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("node %s: bad answer: %w", c.Node, err)
		}
	}
	return nil
}

// Lock stops writes on the node for at most timeout; the lock lives for lease.
func (c *Client) Lock(ctx context.Context, lockID string, timeout, lease time.Duration, force bool) (*LockResponse, error) {
	var out LockResponse
	err := c.call(ctx, "POST", "/v1/lock", LockRequest{LockID: lockID, TimeoutMs: max(timeout.Milliseconds(), 1), LeaseMs: lease.Milliseconds(), Force: force}, &out)
	return &out, err
}

// Renew extends a held lock's lease; it never takes a new lock.
func (c *Client) Renew(ctx context.Context, lockID string, lease time.Duration) error {
	return c.call(ctx, "POST", "/v1/lock", LockRequest{LockID: lockID, Renew: true, TimeoutMs: 1, LeaseMs: lease.Milliseconds()}, nil)
}

// Unlock releases a lock (not an error when it has ended already).
func (c *Client) Unlock(ctx context.Context, lockID string) (*UnlockResponse, error) {
	var out UnlockResponse
	err := c.call(ctx, "POST", "/v1/unlock", UnlockRequest{LockID: lockID}, &out)
	return &out, err
}

// Create takes the node's piece of a snapshot.
func (c *Client) Create(ctx context.Context, req CreateRequest) (*CreateResponse, error) {
	var out CreateResponse
	err := c.call(ctx, "POST", "/v1/snapshots", req, &out)
	return &out, err
}

// Prepare readies the create of snapshot id (kept for ttl unless renewed).
func (c *Client) Prepare(ctx context.Context, id string, topo *manifest.Topology, ttl time.Duration) error {
	return c.call(ctx, "POST", "/v1/snapshots/"+url.PathEscape(id)+"/prepare", PrepareRequest{Topology: topo, TTLMs: ttl.Milliseconds()}, nil)
}

// RenewPrepared extends a prepared create's life.
func (c *Client) RenewPrepared(ctx context.Context, id string, ttl time.Duration) error {
	return c.call(ctx, "POST", "/v1/snapshots/"+url.PathEscape(id)+"/prepare", PrepareRequest{TTLMs: ttl.Milliseconds(), Renew: true}, nil)
}

// Unprepare drops a prepared create (not found when there is none).
func (c *Client) Unprepare(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/v1/snapshots/"+url.PathEscape(id)+"/prepare", nil, nil)
}

// List lists the node's snapshots.
func (c *Client) List(ctx context.Context) ([]snapshot.Info, error) {
	var out []snapshot.Info
	err := c.call(ctx, "GET", "/v1/snapshots", nil, &out)
	return out, err
}

// Delete deletes the node's piece of snapshot id.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/v1/snapshots/"+url.PathEscape(id), nil, nil)
}

// StartJob starts op (verify, restore, upload, download) on snapshot id.
func (c *Client) StartJob(ctx context.Context, id, op string, req JobRequest) (*Job, error) {
	var out Job
	err := c.call(ctx, "POST", "/v1/snapshots/"+url.PathEscape(id)+"/"+op, req, &out)
	return &out, err
}

// Job reads a job's state.
func (c *Client) Job(ctx context.Context, jobID string) (*Job, error) {
	var out Job
	err := c.call(ctx, "GET", "/v1/jobs/"+url.PathEscape(jobID), nil, &out)
	return &out, err
}

// Abort cancels a job.
func (c *Client) Abort(ctx context.Context, jobID string) (*Job, error) {
	var out Job
	err := c.call(ctx, "POST", "/v1/jobs/"+url.PathEscape(jobID)+"/abort", nil, &out)
	return &out, err
}

// Revert puts a restore's failsafe back.
func (c *Client) Revert(ctx context.Context, failsafe string) (*RevertResponse, error) {
	var out RevertResponse
	err := c.call(ctx, "POST", "/v1/revert", RevertRequest{Failsafe: failsafe}, &out)
	return &out, err
}

// InitArchive initialises the remote archive if it is not yet.
func (c *Client) InitArchive(ctx context.Context, remote string) error {
	return c.call(ctx, "POST", "/v1/archive/init", JobRequest{Remote: remote}, nil)
}
