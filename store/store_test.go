package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

func TestOpenMigratesAndSeeds(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			v, err := db.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v != store.Migrations() {
				t.Fatalf("schema version %d, want %d", v, store.Migrations())
			}
			var exp string
			if err := db.R.QueryRowContext(ctx, db.Rebind(`SELECT name FROM experiments WHERE experiment_id = ?`), 0).Scan(&exp); err != nil {
				t.Fatal(err)
			}
			if exp != "Default" {
				t.Fatalf("experiment 0 is %q, want Default", exp)
			}
			var n int
			if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != store.Migrations() {
				t.Fatalf("%d migrations recorded, want %d", n, store.Migrations())
			}
		})
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	path := "sqlite://" + t.TempDir() + "/k.db"
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		var n int
		db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM experiments`).Scan(&n)
		if n != 1 {
			t.Fatalf("open #%d: %d experiments, want 1", i+1, n)
		}
		db.Close()
	}
}

func TestTxRollbackAndUnique(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			ins := db.Rebind(`INSERT INTO registered_models (name, creation_time, last_updated_time) VALUES (?, 1, 1)`)
			boom := errors.New("boom")
			err := db.Tx(ctx, func(tx store.Tx) error {
				if _, err := tx.ExecContext(ctx, ins, "rolled-back"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Tx returned %v, want boom", err)
			}
			var n int
			db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM registered_models`).Scan(&n)
			if n != 0 {
				t.Fatalf("rolled-back insert is visible: %d rows", n)
			}
			if _, err := db.W.ExecContext(ctx, ins, "m"); err != nil {
				t.Fatal(err)
			}
			_, err = db.W.ExecContext(ctx, ins, "m")
			if !store.IsUniqueViolation(err) {
				t.Fatalf("duplicate insert: IsUniqueViolation(%v) = false", err)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	db := &store.DB{Dialect: store.Postgres}
	got := db.Rebind(`SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)`)
	want := `SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)`
	if got != want {
		t.Fatalf("Rebind = %q, want %q", got, want)
	}
	lite := &store.DB{Dialect: store.SQLite}
	if q := "SELECT ?"; lite.Rebind(q) != q {
		t.Fatal("sqlite query was rewritten")
	}
}
