// Command pebblebank is a storage engine nobody here wrote, run as an
// application for hotsnap's tests and examples: a bank of accounts in a
// Pebble LSM store (github.com/cockroachdb/pebble, CockroachDB's storage
// engine), moving money between them in atomic batches. Money is never
// created or destroyed, so any crash-consistent copy of the store,
// reopened, sums to the opening total.
//
//	pebblebank init  --dir D [--accounts 100]
//	pebblebank run   --dir D [--accounts 100] [--pid-file F] [--sync]   # until SIGTERM
//	pebblebank check --dir D [--accounts 100]                          # prints JSON, exit 1 if broken
//
// Pebble's SSTs are immutable (hard links are right for them); its WAL
// (*.log) and MANIFEST-* grow in place and OPTIONS-*, CURRENT and marker.*
// are small: capture those with --copy, as Pebble's own Checkpoint does.
// See examples/engines.md.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
)

const opening = 1000

func key(i int) []byte { return []byte(fmt.Sprintf("acct/%06d", i)) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pebblebank init|run|check --dir D [--accounts N]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "", "the store's directory")
	accounts := fs.Int("accounts", 100, "number of accounts")
	pidFile := fs.String("pid-file", "", "run: write the pid here")
	sync := fs.Bool("sync", false, "run: fsync the WAL at every batch")
	fs.Parse(os.Args[2:])
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "pebblebank: --dir is required")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "init":
		err = initBank(*dir, *accounts)
	case "run":
		err = run(*dir, *accounts, *pidFile, *sync)
	case "check":
		err = check(*dir, *accounts)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pebblebank:", err)
		os.Exit(1)
	}
}

func options() *pebble.Options {
	// Small memtables: SSTs are flushed and compacted often, so snapshots
	// meet every kind of file the engine writes.
	return &pebble.Options{MemTableSize: 256 << 10, L0CompactionThreshold: 2, Logger: quiet{}}
}

// quiet drops Pebble's informational log lines.
type quiet struct{}

func (quiet) Infof(string, ...any) {}
func (quiet) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quiet) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

func enc(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func initBank(dir string, n int) error {
	db, err := pebble.Open(dir, options())
	if err != nil {
		return err
	}
	b := db.NewBatch()
	for i := range n {
		b.Set(key(i), enc(opening), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	return db.Close()
}

func balance(db *pebble.DB, i int) (int64, error) {
	v, c, err := db.Get(key(i))
	if err != nil {
		return 0, fmt.Errorf("account %d: %w", i, err)
	}
	defer c.Close()
	return int64(binary.BigEndian.Uint64(v)), nil
}

func run(dir string, n int, pidFile string, syncEach bool) error {
	db, err := pebble.Open(dir, options())
	if err != nil {
		return err
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	wo := pebble.NoSync
	if syncEach {
		wo = pebble.Sync
	}
	filler := make([]byte, 512)
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return db.Close()
		default:
		}
		from, to := rand.IntN(n), rand.IntN(n)
		amt := int64(rand.IntN(50) + 1)
		bf, err := balance(db, from)
		if err != nil {
			return err
		}
		bt, err := balance(db, to)
		if err != nil {
			return err
		}
		if from == to || bf < amt {
			continue
		}
		b := db.NewBatch()
		b.Set(key(from), enc(bf-amt), nil)
		b.Set(key(to), enc(bt+amt), nil)
		// A log entry per transfer makes the store grow, flush and compact.
		b.Set([]byte(fmt.Sprintf("log/%010d", seq)), filler, nil)
		if err := b.Commit(wo); err != nil {
			return err
		}
	}
}

type report struct {
	Accounts int   `json:"accounts"`
	Total    int64 `json:"total"`
	Want     int64 `json:"want"`
	OK       bool  `json:"ok"`
}

func check(dir string, n int) error {
	o := options()
	o.ErrorIfNotExists = true
	db, err := pebble.Open(dir, o)
	if err != nil {
		return err
	}
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("acct/"), UpperBound: []byte("acct0")})
	if err != nil {
		return err
	}
	r := report{Want: int64(n) * opening}
	for it.First(); it.Valid(); it.Next() {
		r.Accounts++
		r.Total += int64(binary.BigEndian.Uint64(it.Value()))
	}
	if err := it.Close(); err != nil {
		return err
	}
	r.OK = r.Accounts == n && r.Total == r.Want
	json.NewEncoder(os.Stdout).Encode(r)
	if !r.OK {
		return fmt.Errorf("invariant broken: %d accounts (want %d), total %d (want %d)", r.Accounts, n, r.Total, r.Want)
	}
	return nil
}
