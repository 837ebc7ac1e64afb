package store

import (
	"context"
	"fmt"
	"sync"
)

// groupReq is one caller waiting to run in a shared transaction.
type groupReq struct {
	ctx  context.Context
	fn   func(tx Tx) error
	done chan error
}

// maxGroup bounds how many callers share one transaction.
const maxGroup = 64

type grouper struct {
	once sync.Once
	reqs chan groupReq
}

// GroupTx runs fn in a transaction that it may share with other callers
// that arrive at the same time (group commit). Each caller's work runs
// inside its own savepoint, so an error in one rolls back only that
// caller's writes; every caller is answered only after the shared
// transaction has committed. On SQLite, where there is one writer, this
// turns N commits (N WAL appends of the same hot pages) into one. On
// PostgreSQL it is the same as Tx.
func (db *DB) GroupTx(ctx context.Context, fn func(tx Tx) error) error {
	if db.Dialect != SQLite {
		return db.Tx(ctx, fn)
	}
	db.group.once.Do(func() {
		db.group.reqs = make(chan groupReq, maxGroup)
		go db.commitLoop()
	})
	req := groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case db.group.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// commitLoop serves GroupTx callers until the database is closed.
func (db *DB) commitLoop() {
	for first := range db.group.reqs {
		batch := []groupReq{first}
	drain:
		for len(batch) < maxGroup {
			select {
			case r, ok := <-db.group.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		db.runGroup(batch)
	}
}

func (db *DB) runGroup(batch []groupReq) {
	errs := make([]error, len(batch))
	err := db.Tx(context.Background(), func(tx Tx) error {
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if _, err := tx.ExecContext(context.Background(), "SAVEPOINT kiln_group"); err != nil {
				return err
			}
			errs[i] = runGuarded(r.fn, tx)
			if errs[i] != nil {
				if _, err := tx.ExecContext(context.Background(), "ROLLBACK TO kiln_group"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(context.Background(), "RELEASE kiln_group"); err != nil {
				return err
			}
		}
		return nil
	})
	for i, r := range batch {
		if errs[i] == nil && err != nil {
			errs[i] = fmt.Errorf("store: group commit: %w", err)
		}
		r.done <- errs[i]
	}
}

// runGuarded runs fn, turning a panic into an error so that one caller
// cannot take down the others in its group.
func runGuarded(fn func(tx Tx) error, tx Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}
