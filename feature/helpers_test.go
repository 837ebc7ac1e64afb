package feature

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/feature/online"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

// forEachDB runs fn against a Service on every test database.
func forEachDB(t *testing.T, fn func(t *testing.T, s *Service)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			fn(t, newTestService(t, db))
		})
	}
}

func newTestService(t testing.TB, db *store.DB) *Service {
	t.Helper()
	b, err := blob.Open(context.Background(), "file://"+t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &Service{DB: db, Datasets: dataset.NewStore(db), Content: dataset.NewBucketRemote(b),
		OnlineStore: newMapStore(), TempDir: t.TempDir()}
}

// pushCSV creates a new version of dataset name holding files (path →
// content) and returns its number.
func pushCSV(t testing.TB, s *Service, name string, files map[string]string) int64 {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	for p, body := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := dataset.NewLocalSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, s.Content, dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Content.PutManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Datasets.GetDataset(ctx, name); err != nil {
		if _, err := s.Datasets.CreateDataset(ctx, name, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	v, _, err := s.Datasets.CreateVersion(ctx, dataset.NewVersion{Dataset: name, Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// mapStore is an online.Store in a map, with the contract's Put rule.
type mapStore struct {
	mu   sync.Mutex
	rows map[string]map[string]online.Record
	puts int
}

func newMapStore() *mapStore { return &mapStore{rows: map[string]map[string]online.Record{}} }

func (m *mapStore) Put(_ context.Context, view string, recs []online.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.rows[view] == nil {
		m.rows[view] = map[string]online.Record{}
	}
	for _, r := range recs {
		old, ok := m.rows[view][r.Key]
		if ok && (old.EventTime > r.EventTime || old.EventTime == r.EventTime && old.CreatedTime > r.CreatedTime) {
			continue
		}
		r.Value = append([]byte(nil), r.Value...)
		m.rows[view][r.Key] = r
	}
	return nil
}

func (m *mapStore) Get(_ context.Context, view string, keys []string) ([]*online.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*online.Record, len(keys))
	for i, k := range keys {
		if r, ok := m.rows[view][k]; ok {
			out[i] = &r
		}
	}
	return out, nil
}

func (m *mapStore) DeleteView(_ context.Context, view string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, view)
	return nil
}

func (m *mapStore) keys(view string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.rows[view] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *mapStore) Name() string { return "map" }
func (m *mapStore) Close() error { return nil }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func openSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func writeFile(t testing.TB, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
