// Package storetest opens the databases that store test suites run against.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/store"
)

// TestDatabases returns the databases that a store test suite should run
// against: always a fresh SQLite file, and a fresh PostgreSQL database when
// KILN_TEST_POSTGRES is set (a URL of a server where the user may create
// databases). With CI=true a missing KILN_TEST_POSTGRES fails the test
// rather than skipping PostgreSQL.
//
// Use it as:
//
//	for name, open := range store.TestDatabases(t) {
//		t.Run(name, func(t *testing.T) { db := open(t); ... })
//	}
func TestDatabases(t testing.TB) map[string]func(testing.TB) *store.DB {
	t.Helper()
	out := map[string]func(testing.TB) *store.DB{
		"sqlite": func(t testing.TB) *store.DB {
			t.Helper()
			db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "kiln.db"))
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
	}
	pg := os.Getenv("KILN_TEST_POSTGRES")
	if pg == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("KILN_TEST_POSTGRES is not set; CI must run the PostgreSQL store tests")
		}
		return out
	}
	out["postgres"] = func(t testing.TB) *store.DB {
		t.Helper()
		return OpenTestPostgres(t, pg)
	}
	return out
}

var testDBSeq atomic.Int64

// OpenTestPostgres creates a new, empty database on the server at adminURL,
// opens it and drops it when the test ends.
func OpenTestPostgres(t testing.TB, adminURL string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), NewPostgresURL(t, adminURL))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	// Registered after NewPostgresURL's cleanup, so it runs before the drop.
	t.Cleanup(func() { db.Close() })
	return db
}

// withDatabase replaces the database name in a postgres URL.
func withDatabase(u, name string) string {
	q := ""
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u, q = u[:i], u[i:]
	}
	scheme := strings.Index(u, "://") + 3
	if slash := strings.IndexByte(u[scheme:], '/'); slash >= 0 {
		u = u[:scheme+slash]
	}
	return u + "/" + name + q
}

// NewPostgresURL creates a new, empty database on the server at adminURL
// and returns its URL (for tests that start a kiln process on it). The
// database is dropped when the test ends.
func NewPostgresURL(t testing.TB, adminURL string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	name := fmt.Sprintf("kiln_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, testDBSeq.Add(1))
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", adminURL)
		if err == nil {
			a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			a.Close()
		}
	})
	return withDatabase(adminURL, name)
}
