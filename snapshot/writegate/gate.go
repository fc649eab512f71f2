// Package writegate is the writer's side of hotsnap's default quiesce
// protocol ("flock"). An application imports it and brackets every write
// transaction with Begin and End; a snapshot can then stop writes for a
// moment by taking the same locks exclusively.
//
// The protocol, for writers in any language (flock(2) on Linux):
//
//  1. take a shared lock on <data-dir>/.hotsnap/gate.lock
//  2. take a shared lock on <data-dir>/.hotsnap/write.lock
//  3. release gate.lock
//  4. run the write transaction
//  5. release write.lock
//
// A snapshot takes gate.lock exclusively (new writers wait at step 1), then
// waits for write.lock exclusively (in-flight transactions drain); if that
// does not happen within the current period it releases both and retries.
// Each transaction needs its own open file description (flock locks belong
// to it, not to the process), which Gate handles with a small pool.
//
// Writers that rewrite files in place (instead of writing a new file and
// renaming it over the old one) must have those files captured with
// `hotsnap create --copy GLOB`: a hard link shares the bytes.
package writegate

import (
	"context"
	"os"
	"sync"

	"github.com/hotsnap/hotsnap/fsutil/flock"
)

// Names of the protocol's files, relative to the data dir.
const (
	StateDirName  = ".hotsnap"
	GateLockName  = "gate.lock"
	WriteLockName = "write.lock"
	// ForceName exists while a snapshot run with --force is waiting for
	// writers: a long transaction may check Tx.AbortRequested and give up.
	ForceName = "force-requested"
)

// Gate hands out write transactions for one data dir. It is safe for
// concurrent use by many goroutines.
type Gate struct {
	dir  string
	mu   sync.Mutex
	free []*pair
}

type pair struct {
	gate, write *flock.File
}

// Open prepares a gate for the data dir, creating the state dir and lock
// files when missing.
func Open(dataDir string) (*Gate, error) {
	dir := join(dataDir, StateDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Gate{dir: dir}, nil
}

func (g *Gate) get() (*pair, error) {
	g.mu.Lock()
	if n := len(g.free); n > 0 {
		p := g.free[n-1]
		g.free = g.free[:n-1]
		g.mu.Unlock()
		return p, nil
	}
	g.mu.Unlock()
	gl, err := flock.Open(join(g.dir, GateLockName))
	if err != nil {
		return nil, err
	}
	wl, err := flock.Open(join(g.dir, WriteLockName))
	if err != nil {
		gl.Close()
		return nil, err
	}
	return &pair{gate: gl, write: wl}, nil
}

func (g *Gate) put(p *pair) {
	g.mu.Lock()
	g.free = append(g.free, p)
	g.mu.Unlock()
}

// Tx is one write transaction holding the shared write lock.
type Tx struct {
	g *Gate
	p *pair
}

// Begin waits at the gate (while a snapshot holds it) and returns a
// transaction holding write.lock shared. It returns ctx.Err() if ctx ends first.
func (g *Gate) Begin(ctx context.Context) (*Tx, error) {
	p, err := g.get()
	if err != nil {
		return nil, err
	}
	if err := p.gate.Lock(ctx, false); err != nil {
		g.put(p)
		return nil, err
	}
	err = p.write.Lock(ctx, false)
	p.gate.Unlock()
	if err != nil {
		g.put(p)
		return nil, err
	}
	return &Tx{g: g, p: p}, nil
}

// ErrWouldBlock is TryBegin's answer while a snapshot holds the gate.
var ErrWouldBlock = flock.ErrWouldBlock

// TryBegin is Begin without waiting: it returns ErrWouldBlock while a
// snapshot holds the gate. A transaction spanning several data dirs (nodes
// of a cluster) should Begin on the first and TryBegin on the others,
// ending all and retrying on ErrWouldBlock: waiting at one gate while
// holding another node's write lock would keep that node's snapshot from
// draining writes.
func (g *Gate) TryBegin() (*Tx, error) {
	p, err := g.get()
	if err != nil {
		return nil, err
	}
	if err := p.gate.TryLock(false); err != nil {
		g.put(p)
		return nil, err
	}
	err = p.write.TryLock(false)
	p.gate.Unlock()
	if err != nil {
		g.put(p)
		return nil, err
	}
	return &Tx{g: g, p: p}, nil
}

// End releases the transaction's write lock. Call it exactly once.
func (t *Tx) End() error {
	err := t.p.write.Unlock()
	t.g.put(t.p)
	return err
}

// AbortRequested reports whether a snapshot run with --force is waiting for
// writers to drain: a long transaction may abort early to let it in.
func (t *Tx) AbortRequested() bool {
	_, err := os.Stat(join(t.g.dir, ForceName))
	return err == nil
}

// Close closes the pooled lock files. Transactions must have ended.
func (g *Gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.free {
		p.gate.Close()
		p.write.Close()
	}
	g.free = nil
	return nil
}

// join is dir/name without path/filepath: the gate stays a leaf with the
// fewest dependencies for the applications that import it.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	if dir[len(dir)-1] == '/' {
		return dir + name
	}
	return dir + "/" + name
}
