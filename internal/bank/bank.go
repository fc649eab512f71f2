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
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(k), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if err := w.transfer(ctx, g, r, k); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
			}
		}(k)
	}
	return func() error {
		cancel()
		wg.Wait()
		g.Close()
		select {
		case err := <-errs:
			return err
		default:
			return nil
		}
	}, nil
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

func (w *Writer) read(i int) (int64, error) {
	b, err := os.ReadFile(accountPath(w.DataDir, i))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func (w *Writer) write(i int, v int64, k int) error {
	p := accountPath(w.DataDir, i)
	data := []byte(strconv.FormatInt(v, 10) + "\n")
	if w.InPlace {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	tmp := fmt.Sprintf("%s.tx%d.tmp", p, k)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
