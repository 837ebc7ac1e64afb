// Package store opens Kiln's metadata database (SQLite or PostgreSQL, chosen
// by URL), applies the schema migrations and offers the small helpers that
// domain packages use to run their own queries on either dialect.
//
// Domain packages own the queries on their tables; this package owns the
// schema (migrations.go) and the handle. Queries are written with `?`
// placeholders and passed through Rebind, which rewrites them to `$n` for
// PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL dialect of a database.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a handle on the metadata database. Writes go through W, reads
// through R. On SQLite, W is a single connection (SQLite has one writer at a
// time; queuing in Go is cheaper than spinning on the file lock) and R a
// small pool of read-only connections that read the WAL concurrently. On
// PostgreSQL, W and R are the same pool.
type DB struct {
	W       *sql.DB
	R       *sql.DB
	Dialect Dialect

	rebindMu    sync.RWMutex
	rebindCache map[string]string

	group grouper
	stmts stmtCache
}

// Open opens the database named by rawURL and applies pending migrations.
//
// Accepted forms:
//
//	sqlite://./kiln-data/kiln.db   (relative path)
//	sqlite:///var/lib/kiln/kiln.db (absolute path)
//	sqlite::memory:                (private in-memory database, for tests)
//	postgres://user:pass@host:5432/db?sslmode=disable  (also postgresql://)
func Open(ctx context.Context, rawURL string) (*DB, error) {
	var db *DB
	var err error
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		db, err = openSQLite(strings.TrimPrefix(rawURL, "sqlite:"))
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		db, err = openPostgres(rawURL)
	default:
		return nil, fmt.Errorf("store: unsupported database URL %q (want sqlite:// or postgres://)", redact(rawURL))
	}
	if err != nil {
		return nil, err
	}
	if err := db.W.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", redact(rawURL), err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func openSQLite(path string) (*DB, error) {
	path = strings.TrimPrefix(path, "//")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return nil, errors.New("store: sqlite URL has no path")
	}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	if path == ":memory:" {
		// A private in-memory database must live on exactly one connection.
		w, err := sql.Open("sqlite", "file::memory:?"+pragmas)
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1)
		return &DB{W: w, R: w, Dialect: SQLite}, nil
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create database folder: %w", err)
		}
	}
	// WAL: readers never block the writer; a committed transaction survives
	// a crash of the process (synchronous=NORMAL loses nothing on a process
	// crash, only possibly on power loss).
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&" + pragmas
	// The writer keeps 64 MiB of pages cached (hot index pages of metric
	// writes); each reader 8 MiB.
	w, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-65536)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-8192)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &DB{W: w, R: r, Dialect: SQLite}, nil
}

func openPostgres(rawURL string) (*DB, error) {
	p, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	p.SetMaxOpenConns(32)
	p.SetMaxIdleConns(32)
	return &DB{W: p, R: p, Dialect: Postgres}, nil
}

// Close closes the database cleanly (on SQLite this checkpoints the WAL).
func (db *DB) Close() error {
	db.group.once.Do(func() {}) // no new committer after Close
	if db.group.reqs != nil {
		close(db.group.reqs)
	}
	db.closeStmts()
	var err error
	if db.R != db.W {
		err = db.R.Close()
	}
	return errors.Join(err, db.W.Close())
}

// Rebind rewrites `?` placeholders to `$1, $2 …` on PostgreSQL. Question
// marks inside single-quoted string literals are left alone. Results are
// cached, since queries are built from a small set of shapes.
func (db *DB) Rebind(q string) string {
	if db.Dialect != Postgres {
		return q
	}
	db.rebindMu.RLock()
	out, ok := db.rebindCache[q]
	db.rebindMu.RUnlock()
	if ok {
		return out
	}
	out = rebindDollar(q)
	db.rebindMu.Lock()
	if db.rebindCache == nil || len(db.rebindCache) > 4096 {
		db.rebindCache = make(map[string]string)
	}
	db.rebindCache[q] = out
	db.rebindMu.Unlock()
	return out
}

func rebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inStr := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inStr = !inStr
			b.WriteByte(c)
		case c == '?' && !inStr:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Tx runs fn in a read-write transaction on W and commits it, or rolls it
// back if fn returns an error. A caller is answered only after the commit.
// Tx is the transaction handed to functions run by DB.Tx.
type Tx = *sql.Tx

func (db *DB) Tx(ctx context.Context, fn func(tx Tx) error) (err error) {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation on either dialect.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		code := sqErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Upsert returns the dialect's "insert or replace on key conflict" clause
// for the given key and value columns, e.g.
//
//	ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value
//
// Both SQLite (≥3.24) and PostgreSQL accept the same syntax.
func Upsert(keyCols []string, valueCols ...string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	b.WriteString(strings.Join(keyCols, ", "))
	b.WriteString(")")
	if len(valueCols) == 0 {
		b.WriteString(" DO NOTHING")
		return b.String()
	}
	b.WriteString(" DO UPDATE SET ")
	for i, c := range valueCols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = excluded." + c)
	}
	return b.String()
}
