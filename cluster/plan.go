package cluster

// The plan: the live members at a revision, the expected ones, changes.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hotsnap/hotsnap/cluster/ca"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Plan is the cluster's topology as read at one etcd revision.
type Plan struct {
	Cluster string          `json:"cluster"`
	Nodes   []Member        `json:"nodes"` // sorted by node id
	User    json.RawMessage `json:"user,omitempty"`
	// Expected are the node ids a cluster snapshot must hold, as declared
	// (cluster plan --expect) or recorded by the first cluster create; nil
	// when none is yet.
	Expected []string `json:"expected,omitempty"`
	Revision int64    `json:"-"`
	// mods fingerprints the plan: each key with its create and mod revision.
	mods map[string][2]int64
}

// NodeIDs lists the plan's node ids, sorted.
func (p *Plan) NodeIDs() []string {
	ids := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		ids[i] = n.NodeID
	}
	return ids
}

// Node finds a member by id.
func (p *Plan) Node(id string) (Member, bool) {
	for _, n := range p.Nodes {
		if n.NodeID == id {
			return n, true
		}
	}
	return Member{}, false
}

// ReadPlan reads the membership and the user plan in one transaction, so
// both come from the same revision. A member whose agent ran on this host
// and is gone (its pid, and start time) is no member: its lease is ended
// at once rather than waited out.
func (a *Agency) ReadPlan(ctx context.Context) (*Plan, error) {
	resp, err := a.cli.Txn(ctx).Then(
		clientv3.OpGet(a.prefix+"members/", clientv3.WithPrefix()),
		clientv3.OpGet(a.prefix+"plan"),
		clientv3.OpGet(a.prefix+"expected"),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd: read the plan: %w", err)
	}
	p := &Plan{Cluster: a.cluster, Nodes: []Member{}, Revision: resp.Header.Revision, mods: map[string][2]int64{}}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("etcd: member %s is unreadable: %w", kv.Key, err)
		}
		if m.Dead() {
			// Its agent ran on this host and is gone: not a member, though
			// its lease has not ended yet. End it (best effort).
			a.cli.Revoke(ctx, clientv3.LeaseID(kv.Lease))
			continue
		}
		p.Nodes = append(p.Nodes, m)
		p.mods[string(kv.Key)] = [2]int64{kv.CreateRevision, kv.ModRevision}
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		p.User = json.RawMessage(kvs[0].Value)
		p.mods[string(kvs[0].Key)] = [2]int64{kvs[0].CreateRevision, kvs[0].ModRevision}
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		var e expected
		if err := json.Unmarshal(kvs[0].Value, &e); err != nil || len(e.Nodes) == 0 {
			return nil, fmt.Errorf("etcd: the expected nodes (%s) are unreadable: %v; set them again with cluster plan --expect", kvs[0].Key, err)
		}
		p.Expected = e.Nodes
	}
	sort.Slice(p.Nodes, func(i, j int) bool { return p.Nodes[i].NodeID < p.Nodes[j].NodeID })
	return p, nil
}

// expected is the value of the expected key.
type expected struct {
	Nodes []string  `json:"nodes"`
	Since time.Time `json:"since"`
	By    string    `json:"by"` // "operator" (cluster plan --expect) or "first create"
}

// Missing lists the expected nodes that have no live agent, sorted.
func (p *Plan) Missing() []string {
	var out []string
	for _, n := range p.Expected {
		if _, ok := p.Node(n); !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// SetExpected declares the node ids every cluster snapshot must hold
// (nil forgets them: the next create records its own). With onlyIfNone it
// records them only when none are declared yet, and reports whether it did.
func (a *Agency) SetExpected(ctx context.Context, nodes []string, by string, onlyIfNone bool) (bool, error) {
	key := a.prefix + "expected"
	if nodes == nil {
		_, err := a.cli.Delete(ctx, key)
		return err == nil, err
	}
	for _, n := range nodes {
		if !ca.ValidName(n) {
			return false, fmt.Errorf("%w: node id %q: want 1 to 64 of letters, digits, '.', '_', '-'", snapshot.ErrInvalid, n)
		}
	}
	nodes = slices.Sorted(slices.Values(nodes))
	b, _ := json.Marshal(expected{Nodes: slices.Compact(nodes), Since: time.Now().UTC(), By: by})
	if !onlyIfNone {
		_, err := a.cli.Put(ctx, key, string(b))
		return err == nil, err
	}
	resp, err := a.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Changes re-reads the plan and describes how it differs from p (nil when
// it is the same: same keys, none rewritten).
func (a *Agency) Changes(ctx context.Context, p *Plan) ([]string, error) {
	now, err := a.ReadPlan(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	name := func(k string) string {
		if k == a.prefix+"plan" {
			return "the user plan"
		}
		return "node " + strings.TrimPrefix(k, a.prefix+"members/")
	}
	for k, v := range p.mods {
		w, ok := now.mods[k]
		switch {
		case !ok:
			out = append(out, name(k)+" left")
		case w != v:
			out = append(out, name(k)+" changed")
		}
	}
	for k := range now.mods {
		if _, ok := p.mods[k]; !ok {
			out = append(out, name(k)+" joined")
		}
	}
	sort.Strings(out)
	return out, nil
}

// SetPlan stores user JSON as the cluster's plan (nil deletes it).
func (a *Agency) SetPlan(ctx context.Context, user json.RawMessage) error {
	if user == nil {
		_, err := a.cli.Delete(ctx, a.prefix+"plan")
		return err
	}
	if !json.Valid(user) {
		return fmt.Errorf("%w: the plan is not valid JSON", snapshot.ErrInvalid)
	}
	_, err := a.cli.Put(ctx, a.prefix+"plan", string(user))
	return err
}
