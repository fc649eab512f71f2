// Package bank is the consistency workload of the tests and the demo: a
// "bank" of account files in a data dir, and writers that move money between
// accounts in transactions that follow the write-gate protocol. Money is
// never created or destroyed, so every consistent snapshot sums to the
// opening total.
package bank

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotsnap/hotsnap/snapshot/writegate"
)

// Dir is the accounts' folder inside the data dir.
const Dir = "accounts"

// Init creates n accounts holding each balance.
func Init(dataDir string, n int, balance int64) error {
	if err := os.MkdirAll(filepath.Join(dataDir, Dir), 0o755); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := os.WriteFile(accountPath(dataDir, i), []byte(strconv.FormatInt(balance, 10)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func accountPath(dataDir string, i int) string {
	return filepath.Join(dataDir, Dir, fmt.Sprintf("acct-%03d.bal", i))
}

// Sum adds up every account under root (a data dir or a snapshot's tree).
func Sum(root string) (total int64, accounts int, err error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, "acct-*.bal"))
	if err != nil {
		return 0, 0, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, 0, err
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", f, err)
		}
		total += v
	}
	return total, len(files), nil
}

// Writer moves money between accounts until its context ends.
type Writer struct {
	DataDir  string
	Accounts int
	// InPlace rewrites account files in place (O_TRUNC + write) instead of
	// writing a new file and renaming it over the old one.
	InPlace bool
	// Think is the longest pause inside a transaction (between the two
	// writes), so snapshots meet transactions in flight.
	Think time.Duration
	// Transfers counts committed transactions.
	Transfers atomic.Int64

	rows []sync.Mutex // row locks: write.lock is shared among writers
}

// Run starts n writer goroutines on one gate and returns a function that
// stops them and reports the first error.
func (w *Writer) Run(ctx context.Context, n int) (stop func() error, err error) {
	g, err := writegate.Open(w.DataDir)
	if err != nil {
		return nil, err
	}
	w.rows = make([]sync.Mutex, w.Accounts)
	return runWorkers(ctx, n, func(ctx context.Context, r *rand.Rand, k int) error {
		return w.transfer(ctx, g, r, k)
	}, g.Close), nil
}

// runWorkers runs n goroutines calling step until ctx ends or a step fails;
// the returned stop cancels them, waits, calls closers and reports the first
// error.
func runWorkers(ctx context.Context, n int, step func(ctx context.Context, r *rand.Rand, k int) error, closers ...func() error) func() error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(k), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if err := step(ctx, r, k); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
			}
		}(k)
	}
	// stop may be called twice (once by the test, once by its cleanup).
	return sync.OnceValue(func() error {
		cancel()
		wg.Wait()
		for _, c := range closers {
			c()
		}
		select {
		case err := <-errs:
			return err
		default:
			return nil
		}
	})
}

func (w *Writer) transfer(ctx context.Context, g *writegate.Gate, r *rand.Rand, k int) error {
	from := r.IntN(w.Accounts)
	to := (from + 1 + r.IntN(w.Accounts-1)) % w.Accounts
	amount := int64(r.IntN(100))
	tx, err := g.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.End()
	// Row locks in index order (no deadlock between writers); a snapshot
	// waits only for write.lock, which every holder releases soon.
	lo, hi := min(from, to), max(from, to)
	w.rows[lo].Lock()
	defer w.rows[lo].Unlock()
	w.rows[hi].Lock()
	defer w.rows[hi].Unlock()
	a, err := w.read(from)
	if err != nil {
		return err
	}
	b, err := w.read(to)
	if err != nil {
		return err
	}
	if err := w.write(from, a-amount, k); err != nil {
		return err
	}
	if w.Think > 0 {
		time.Sleep(time.Duration(r.Int64N(int64(w.Think))))
	}
	if err := w.write(to, b+amount, k); err != nil {
		return err
	}
	w.Transfers.Add(1)
	return nil
}

func (w *Writer) read(i int) (int64, error) { return readAccount(w.DataDir, i) }

func (w *Writer) write(i int, v int64, k int) error {
	if !w.InPlace {
		return writeAccount(w.DataDir, i, v, k)
	}
	f, err := os.OpenFile(accountPath(w.DataDir, i), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(strconv.FormatInt(v, 10) + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ClusterWriter moves money between accounts on different nodes: each data
// dir holds Accounts accounts, and every transfer takes money from an
// account on one node and gives it to an account on another, holding the
// write gate of both nodes for the whole transaction. Only a snapshot that
// stopped writes on every node at one instant sums to the opening total.
type ClusterWriter struct {
	DataDirs []string
	Accounts int // per node
	Think    time.Duration
	// Transfers counts committed transactions; Retries counts the times a
	// transaction found the second node's gate closed and started over.
	Transfers, Retries atomic.Int64

	rows [][]sync.Mutex
}

// Run starts n writer goroutines and returns a function that stops them
// and reports the first error.
func (w *ClusterWriter) Run(ctx context.Context, n int) (stop func() error, err error) {
	if len(w.DataDirs) < 2 || w.Accounts < 1 {
		return nil, fmt.Errorf("bank: a cluster writer needs two nodes or more and accounts")
	}
	gates := make([]*writegate.Gate, len(w.DataDirs))
	closers := make([]func() error, len(w.DataDirs))
	w.rows = make([][]sync.Mutex, len(w.DataDirs))
	for i, d := range w.DataDirs {
		if gates[i], err = writegate.Open(d); err != nil {
			return nil, err
		}
		closers[i] = gates[i].Close
		w.rows[i] = make([]sync.Mutex, w.Accounts)
	}
	return runWorkers(ctx, n, func(ctx context.Context, r *rand.Rand, k int) error {
		return w.transfer(ctx, gates, r, k)
	}, closers...), nil
}

func (w *ClusterWriter) transfer(ctx context.Context, gates []*writegate.Gate, r *rand.Rand, k int) error {
	na := r.IntN(len(w.DataDirs))
	nb := (na + 1 + r.IntN(len(w.DataDirs)-1)) % len(w.DataDirs)
	ia, ib := r.IntN(w.Accounts), r.IntN(w.Accounts)
	amount := int64(r.IntN(100))
	lo, hi := min(na, nb), max(na, nb)
	// Wait at one gate only, holding nothing: Begin on the first node, then
	// TryBegin on the second, starting over if its gate is closed.
	var t1, t2 *writegate.Tx
	for {
		var err error
		if t1, err = gates[lo].Begin(ctx); err != nil {
			return err
		}
		if t2, err = gates[hi].TryBegin(); err == nil {
			break
		}
		t1.End()
		if err != writegate.ErrWouldBlock {
			return err
		}
		w.Retries.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(1+r.IntN(3)) * time.Millisecond):
		}
	}
	defer t1.End()
	defer t2.End()
	// Row locks in (node, account) order: no deadlock between writers.
	first, second := &w.rows[na][ia], &w.rows[nb][ib]
	if nb < na {
		first, second = second, first
	}
	first.Lock()
	defer first.Unlock()
	second.Lock()
	defer second.Unlock()
	da, db := w.DataDirs[na], w.DataDirs[nb]
	a, err := readAccount(da, ia)
	if err != nil {
		return err
	}
	b, err := readAccount(db, ib)
	if err != nil {
		return err
	}
	if err := writeAccount(da, ia, a-amount, k); err != nil {
		return err
	}
	if w.Think > 0 {
		time.Sleep(time.Duration(r.Int64N(int64(w.Think))))
	}
	if err := writeAccount(db, ib, b+amount, k); err != nil {
		return err
	}
	w.Transfers.Add(1)
	return nil
}

func readAccount(dataDir string, i int) (int64, error) {
	b, err := os.ReadFile(accountPath(dataDir, i))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// writeAccount writes a new file and renames it over the account (writer k
// has its own temp name), so snapshots sharing the old inode keep it.
func writeAccount(dataDir string, i int, v int64, k int) error {
	p := accountPath(dataDir, i)
	tmp := fmt.Sprintf("%s.tx%d.tmp", p, k)
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(v, 10)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// GateOpen reports whether a writer gets through dir's write gate now
// (a TryBegin that succeeds, then ends at once).
func GateOpen(dir string) (bool, error) {
	g, err := writegate.Open(dir)
	if err != nil {
		return false, err
	}
	defer g.Close()
	tx, err := g.TryBegin()
	if err != nil {
		return false, nil
	}
	tx.End()
	return true, nil
}
