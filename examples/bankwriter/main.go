// Command bankwriter is an example application for hotsnap: it keeps a
// "bank" of account files in a data dir and moves money between them in
// write transactions that follow hotsnap's write-gate protocol (package
// snapshot/writegate). Money is never created or destroyed, so any
// consistent snapshot of the data dir sums to the opening total.
//
//	bankwriter run --data-dir D [--accounts 50] [--init] [--writers 4] [--in-place]
//	bankwriter cluster-run --data-dirs D1,D2,D3 [--accounts 20] [--init] [--writers 4]
//	bankwriter sum DIR...     # prints the total of the accounts under the DIRs
//
// cluster-run moves money between accounts in different data dirs (the
// nodes of a cluster), holding the write gate of both for each transfer.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hotsnap/hotsnap/examples/bank"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bankwriter run --data-dir D [--accounts N] [--init] | bankwriter sum DIR")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "sum":
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: bankwriter sum DIR...")
			os.Exit(2)
		}
		var total int64
		var n int
		for _, d := range os.Args[2:] {
			t, k, err := bank.Sum(d)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bankwriter:", err)
				os.Exit(1)
			}
			total, n = total+t, n+k
		}
		fmt.Printf("%d accounts, total %d\n", n, total)
	case "cluster-run":
		fs := flag.NewFlagSet("cluster-run", flag.ExitOnError)
		dirs := fs.String("data-dirs", "", "comma-separated data dirs, one per node")
		accounts := fs.Int("accounts", 20, "accounts per node")
		initialise := fs.Bool("init", false, "create the accounts (1000 each) first")
		writers := fs.Int("writers", 4, "concurrent writers")
		fs.Parse(os.Args[2:])
		list := strings.Split(*dirs, ",")
		if len(list) < 2 {
			fmt.Fprintln(os.Stderr, "bankwriter: --data-dirs needs two dirs or more")
			os.Exit(2)
		}
		if *initialise {
			for _, d := range list {
				check(bank.Init(d, *accounts, 1000))
			}
		}
		w := &bank.ClusterWriter{DataDirs: list, Accounts: *accounts, Think: 500 * time.Microsecond}
		runUntilSignal(func(ctx context.Context) (func() error, error) { return w.Run(ctx, *writers) })
		fmt.Printf("bankwriter: %d cross-node transfers (%d retries at a closed gate)\n", w.Transfers.Load(), w.Retries.Load())
	case "run":
		fs := flag.NewFlagSet("run", flag.ExitOnError)
		dir := fs.String("data-dir", "", "data dir")
		accounts := fs.Int("accounts", 50, "number of accounts")
		initialise := fs.Bool("init", false, "create the accounts (1000 each) first")
		writers := fs.Int("writers", 4, "concurrent writers")
		inPlace := fs.Bool("in-place", false, "rewrite account files in place (needs --copy '*.bal' at snapshot)")
		fs.Parse(os.Args[2:])
		if *dir == "" {
			fmt.Fprintln(os.Stderr, "bankwriter: --data-dir is required")
			os.Exit(2)
		}
		if *initialise {
			check(bank.Init(*dir, *accounts, 1000))
		}
		w := &bank.Writer{DataDir: *dir, Accounts: *accounts, InPlace: *inPlace, Think: 500 * time.Microsecond}
		runUntilSignal(func(ctx context.Context) (func() error, error) { return w.Run(ctx, *writers) })
		fmt.Printf("bankwriter: %d transfers\n", w.Transfers.Load())
	default:
		fmt.Fprintf(os.Stderr, "bankwriter: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// check exits with the error, if any.
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bankwriter:", err)
		os.Exit(1)
	}
}

// runUntilSignal starts writers and stops them on SIGINT or SIGTERM.
func runUntilSignal(start func(ctx context.Context) (stop func() error, err error)) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	stop, err := start(ctx)
	check(err)
	<-ctx.Done()
	check(stop())
}
