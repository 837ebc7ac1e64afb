package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the prepared-statement cache.
const maxCachedStmts = 1024

type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// Stmt is a statement prepared once on the write pool and reused, so that
// hot multi-row writes are not parsed again on every request. Prepare it
// before entering a transaction (on SQLite the transaction holds the only
// write connection), then run it inside with Exec.
type Stmt struct {
	query string
	st    *sql.Stmt // nil beyond the cache bound: run unprepared
}

// Exec runs the statement in tx.
func (s Stmt) Exec(ctx context.Context, tx Tx, args ...any) (sql.Result, error) {
	if s.st == nil {
		return tx.ExecContext(ctx, s.query, args...)
	}
	return tx.StmtContext(ctx, s.st).ExecContext(ctx, args...)
}

// Prepare returns the cached prepared statement for query (already
// rebound). It must not be called inside a transaction of this DB.
func (db *DB) Prepare(ctx context.Context, query string) (Stmt, error) {
	st, err := db.prepared(ctx, query)
	return Stmt{query: query, st: st}, err
}

func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	if st, ok := db.stmts.m[query]; ok {
		return st, nil
	}
	if len(db.stmts.m) >= maxCachedStmts {
		return nil, nil
	}
	st, err := db.W.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if db.stmts.m == nil {
		db.stmts.m = make(map[string]*sql.Stmt)
	}
	db.stmts.m[query] = st
	return st, nil
}

func (db *DB) closeStmts() {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	for _, st := range db.stmts.m {
		st.Close()
	}
	db.stmts.m = nil
}
