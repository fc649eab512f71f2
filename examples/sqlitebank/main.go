// Command sqlitebank is a storage engine nobody here wrote, run as an
// application for hotsnap's tests and examples: a bank of accounts in an
// SQLite database in WAL mode (modernc.org/sqlite, SQLite compiled to
// pure Go), moving money between them in transactions. Money is never
// created or destroyed, so any crash-consistent copy of the database,
// reopened, passes PRAGMA integrity_check and sums to the opening total.
//
//	sqlitebank init  --db FILE [--accounts 100]
//	sqlitebank run   --db FILE [--accounts 100] [--pid-file F]   # until SIGTERM
//	sqlitebank check --db FILE [--accounts 100]                  # prints JSON, exit 1 if broken
//
// SQLite rewrites its database file in place (every checkpoint of the
// WAL), so a hard link cannot hold a past state of it: snapshot it with
// --link-mode reflink on XFS or Btrfs, or capture it with --copy. See
// examples/engines.md.
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	_ "modernc.org/sqlite"
)

const opening = 1000

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sqlitebank init|run|check --db FILE [--accounts N]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	db := fs.String("db", "", "the database file")
	accounts := fs.Int("accounts", 100, "number of accounts")
	pidFile := fs.String("pid-file", "", "run: write the pid here")
	fs.Parse(os.Args[2:])
	if *db == "" {
		fmt.Fprintln(os.Stderr, "sqlitebank: --db is required")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "init":
		err = initBank(*db, *accounts)
	case "run":
		err = run(*db, *pidFile)
	case "check":
		err = check(*db, *accounts)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlitebank:", err)
		os.Exit(1)
	}
}

func open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func initBank(path string, n int) error {
	db, err := open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	for _, q := range []string{
		"CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
		"CREATE TABLE log (seq INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, memo BLOB)",
	} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	for i := range n {
		if _, err := tx.Exec("INSERT INTO accounts VALUES (?, ?)", i, opening); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func run(path, pidFile string) error {
	db, err := open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM accounts").Scan(&n); err != nil {
		return err
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	memo := make([]byte, 300)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		from, to, amt := rand.IntN(n), rand.IntN(n), rand.IntN(50)+1
		if from == to {
			continue
		}
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		var bal int
		if err := tx.QueryRow("SELECT balance FROM accounts WHERE id = ?", from).Scan(&bal); err != nil {
			tx.Rollback()
			return err
		}
		if bal < amt {
			tx.Rollback()
			continue
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"UPDATE accounts SET balance = balance - ? WHERE id = ?", []any{amt, from}},
			{"UPDATE accounts SET balance = balance + ? WHERE id = ?", []any{amt, to}},
			{"INSERT INTO log (src, dst, amount, memo) VALUES (?, ?, ?, ?)", []any{from, to, amt, memo}},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
}

type report struct {
	Integrity string `json:"integrity"`
	Accounts  int    `json:"accounts"`
	Total     int64  `json:"total"`
	Want      int64  `json:"want"`
	Transfers int64  `json:"transfers"`
	OK        bool   `json:"ok"`
}

func check(path string, n int) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	r := report{Want: int64(n) * opening}
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&r.Integrity); err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	if err := db.QueryRow("SELECT count(*), coalesce(sum(balance), 0) FROM accounts").Scan(&r.Accounts, &r.Total); err != nil {
		return err
	}
	if err := db.QueryRow("SELECT count(*) FROM log").Scan(&r.Transfers); err != nil {
		return err
	}
	r.OK = r.Integrity == "ok" && r.Accounts == n && r.Total == r.Want
	json.NewEncoder(os.Stdout).Encode(r)
	if !r.OK {
		return fmt.Errorf("invariant broken: integrity %q, %d accounts (want %d), total %d (want %d)", r.Integrity, r.Accounts, n, r.Total, r.Want)
	}
	return nil
}
