package online

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

// testRedisURL returns KILN_TEST_REDIS; without it the Redis store tests are
// skipped, or fail when CI=true.
func testRedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("KILN_TEST_REDIS")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("KILN_TEST_REDIS is not set; CI must run the Redis online store tests (scripts/redis.sh start)")
		}
		t.Skip("KILN_TEST_REDIS is not set (scripts/redis.sh start prints a URL)")
	}
	return u
}

// testStores returns the stores the conformance suite runs against: the
// embedded store on each test database, and Redis.
func testStores(t *testing.T) map[string]func(testing.TB) Store {
	out := map[string]func(testing.TB) Store{}
	for name, open := range storetest.TestDatabases(t) {
		out["embedded-"+name] = func(t testing.TB) Store {
			s := NewEmbedded(open(t))
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	out["redis"] = func(t testing.TB) Store {
		s, err := NewRedis(context.Background(), testRedisURL(t))
		if err != nil {
			t.Fatalf("redis: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return out
}

// uniqueView is a view name no other test (or earlier run on the same
// Redis server) uses; its records are deleted when the test ends.
func uniqueView(t testing.TB, s Store) string {
	b := make([]byte, 6)
	rand.Read(b)
	v := "v_" + hex.EncodeToString(b)
	t.Cleanup(func() { s.DeleteView(context.Background(), v) })
	return v
}

func rec(key string, event, created int64, value string) Record {
	return Record{Key: key, EventTime: event, CreatedTime: created, Value: []byte(value)}
}

func mustPut(t testing.TB, s Store, view string, recs ...Record) {
	t.Helper()
	if err := s.Put(context.Background(), view, recs); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func mustGet(t testing.TB, s Store, view string, keys ...string) []*Record {
	t.Helper()
	got, err := s.Get(context.Background(), view, keys)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got) != len(keys) {
		t.Fatalf("Get returned %d records for %d keys", len(got), len(keys))
	}
	for i, r := range got {
		if r != nil && r.Key != keys[i] {
			t.Fatalf("Get: record %d has key %q, want %q", i, r.Key, keys[i])
		}
	}
	return got
}

// want checks the stored record of one key ("" value: absent).
func want(t testing.TB, s Store, view, key string, event, created int64, value string) {
	t.Helper()
	got := mustGet(t, s, view, key)[0]
	if value == "" {
		if got != nil {
			t.Fatalf("%s: got %+v, want absent", key, *got)
		}
		return
	}
	if got == nil {
		t.Fatalf("%s: absent, want %q", key, value)
	}
	if got.EventTime != event || got.CreatedTime != created || string(got.Value) != value {
		t.Fatalf("%s: got (%d, %d, %q), want (%d, %d, %q)", key, got.EventTime, got.CreatedTime, got.Value, event, created, value)
	}
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Store, view string)
	}{
		{"newer event time wins", func(t *testing.T, s Store, v string) {
			mustPut(t, s, v, rec("k", 10, 0, "a"))
			mustPut(t, s, v, rec("k", 5, 100, "old")) // older event, later created: ignored
			want(t, s, v, "k", 10, 0, "a")
			mustPut(t, s, v, rec("k", 20, 0, "c"))
			want(t, s, v, "k", 20, 0, "c")
		}},
		{"equal event times: created time, then last write", func(t *testing.T, s Store, v string) {
			mustPut(t, s, v, rec("k", 10, 5, "a"))
			mustPut(t, s, v, rec("k", 10, 5, "b")) // equal: not older, replaces
			want(t, s, v, "k", 10, 5, "b")
			mustPut(t, s, v, rec("k", 10, 4, "c"))
			want(t, s, v, "k", 10, 5, "b")
			mustPut(t, s, v, rec("k", 10, 6, "d"))
			want(t, s, v, "k", 10, 6, "d")
		}},
		{"duplicates in one batch", func(t *testing.T, s Store, v string) {
			mustPut(t, s, v, rec("k", 10, 0, "x"), rec("k", 5, 9, "y"), rec("k", 10, 0, "z"), rec("j", 1, 0, "j1"))
			want(t, s, v, "k", 10, 0, "z")
			want(t, s, v, "j", 1, 0, "j1")
		}},
		{"negative and extreme times", func(t *testing.T, s Store, v string) {
			mustPut(t, s, v, rec("k", -5, 0, "neg"))
			mustPut(t, s, v, rec("k", -6, 0, "older"))
			want(t, s, v, "k", -5, 0, "neg")
			mustPut(t, s, v, rec("k", 0, -1, "zero"))
			want(t, s, v, "k", 0, -1, "zero")
			mustPut(t, s, v, rec("m", 1<<62, 1<<62, "max"), rec("m", -(1<<62), 0, "min"))
			want(t, s, v, "m", 1<<62, 1<<62, "max")
		}},
		{"missing keys and key order", func(t *testing.T, s Store, v string) {
			mustPut(t, s, v, rec("a", 1, 0, "A"), rec("b", 2, 0, "B"), rec("c", 3, 0, "C"))
			got := mustGet(t, s, v, "c", "missing", "a", "b", "a")
			vals := make([]string, len(got))
			for i, r := range got {
				if r == nil {
					vals[i] = "<nil>"
				} else {
					vals[i] = string(r.Value)
				}
			}
			if strings.Join(vals, ",") != "C,<nil>,A,B,A" {
				t.Fatalf("got %v", vals)
			}
			if got := mustGet(t, s, v); len(got) != 0 {
				t.Fatalf("no keys: got %d records", len(got))
			}
			if got := mustGet(t, s, "other_view", "a"); got[0] != nil {
				t.Fatalf("other view: got %+v", got[0])
			}
		}},
		{"keys and values of any bytes", func(t *testing.T, s Store, v string) {
			big := bytes.Repeat([]byte{0, 1, 0xff, 'x'}, 64<<10)
			keys := []string{"a:b", "ü ñ", "x*?[]\\", "\x01\x02", strings.Repeat("k", 1000)}
			for i, k := range keys {
				mustPut(t, s, v, Record{Key: k, EventTime: int64(i), Value: big[:i*1000]})
			}
			mustPut(t, s, v, Record{Key: "big", EventTime: 1, Value: big})
			got := mustGet(t, s, v, append(keys, "big")...)
			for i, r := range got[:len(keys)] {
				if r == nil || !bytes.Equal(r.Value, big[:i*1000]) || r.EventTime != int64(i) {
					t.Fatalf("key %q: got %v", keys[i], r)
				}
			}
			if !bytes.Equal(got[len(keys)].Value, big) {
				t.Fatalf("big value: got %d bytes, want %d", len(got[len(keys)].Value), len(big))
			}
		}},
		{"many keys", func(t *testing.T, s Store, v string) {
			const n = 3000
			recs := make([]Record, n)
			for i := range recs {
				recs[i] = rec(fmt.Sprintf("key-%05d", i), int64(i), int64(n-i), fmt.Sprintf("value %d", i))
			}
			mustPut(t, s, v, recs...)
			// Newer for the even keys, older for the odd ones, in one Put.
			upd := make([]Record, 0, n)
			for i := range recs {
				r := recs[i]
				if i%2 == 0 {
					r.EventTime++
					r.Value = []byte(fmt.Sprintf("new %d", i))
				} else {
					r.EventTime--
					r.Value = []byte("stale")
				}
				upd = append(upd, r)
			}
			mrand.Shuffle(len(upd), func(i, j int) { upd[i], upd[j] = upd[j], upd[i] })
			mustPut(t, s, v, upd...)
			keys := make([]string, 0, n+n/3)
			for i := n - 1; i >= 0; i-- {
				keys = append(keys, fmt.Sprintf("key-%05d", i))
				if i%3 == 0 {
					keys = append(keys, fmt.Sprintf("absent-%d", i))
				}
			}
			got := mustGet(t, s, v, keys...)
			for j, r := range got {
				var i int
				if _, err := fmt.Sscanf(keys[j], "key-%05d", &i); err != nil {
					if r != nil {
						t.Fatalf("%s: got %+v, want absent", keys[j], *r)
					}
					continue
				}
				wantV, wantE := fmt.Sprintf("value %d", i), int64(i)
				if i%2 == 0 {
					wantV, wantE = fmt.Sprintf("new %d", i), int64(i+1)
				}
				if r == nil || string(r.Value) != wantV || r.EventTime != wantE || r.CreatedTime != int64(n-i) {
					t.Fatalf("%s: got %+v, want %q at %d", keys[j], r, wantV, wantE)
				}
			}
		}},
		{"delete view", func(t *testing.T, s Store, v string) {
			defer func(n int) { deleteChunk = n }(deleteChunk)
			deleteChunk = 1000 // several rounds for the embedded store
			other := uniqueView(t, s)
			recs := make([]Record, 2500)
			for i := range recs {
				recs[i] = rec(fmt.Sprintf("k%d", i), 1, 0, "x")
			}
			mustPut(t, s, v, recs...)
			mustPut(t, s, other, rec("k1", 1, 0, "keep"))
			// A view whose name extends v's must survive too.
			mustPut(t, s, v+"x", rec("k1", 1, 0, "keep too"))
			t.Cleanup(func() { s.DeleteView(context.Background(), v+"x") })
			if err := s.DeleteView(context.Background(), v); err != nil {
				t.Fatalf("DeleteView: %v", err)
			}
			for _, r := range mustGet(t, s, v, "k0", "k1", "k2499") {
				if r != nil {
					t.Fatalf("after delete: got %+v", *r)
				}
			}
			want(t, s, other, "k1", 1, 0, "keep")
			want(t, s, v+"x", "k1", 1, 0, "keep too")
			// The view can be written again.
			mustPut(t, s, v, rec("k1", 0, 0, "again"))
			want(t, s, v, "k1", 0, 0, "again")
		}},
		{"concurrent puts", func(t *testing.T, s Store, v string) {
			const writers, keys = 8, 300
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each writer writes every key several times with its
					// own event times, in random order and batch sizes.
					var recs []Record
					for round := 0; round < 3; round++ {
						for k := 0; k < keys; k++ {
							e := int64(round*writers + w)
							recs = append(recs, rec(fmt.Sprintf("k%d", k), e, 0, fmt.Sprintf("%d", e)))
						}
					}
					mrand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
					for len(recs) > 0 {
						n := min(len(recs), 1+mrand.IntN(400))
						if err := s.Put(context.Background(), v, recs[:n]); err != nil {
							errs <- err
							return
						}
						recs = recs[n:]
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("concurrent Put: %v", err)
			}
			maxE := int64(2*writers + writers - 1)
			ks := make([]string, keys)
			for k := range ks {
				ks[k] = fmt.Sprintf("k%d", k)
			}
			for _, r := range mustGet(t, s, v, ks...) {
				if r == nil || r.EventTime != maxE || string(r.Value) != fmt.Sprint(maxE) {
					t.Fatalf("after concurrent puts: got %+v, want event time %d", r, maxE)
				}
			}
		}},
	}
	for sname, open := range testStores(t) {
		t.Run(sname, func(t *testing.T) {
			s := open(t)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, s, uniqueView(t, s)) })
			}
		})
	}
}

func TestOpen(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, u := range []string{"", "embedded"} {
		s, err := Open(context.Background(), u, db)
		if err != nil || s.Name() != "embedded" {
			t.Fatalf("Open(%q) = %v, %v; want the embedded store", u, s, err)
		}
	}
	if _, err := Open(context.Background(), "", nil); err == nil {
		t.Fatal("embedded without a database: no error")
	}
	for _, u := range []string{"memcached://x", "redis//nohost", "postgres://h/db"} {
		if _, err := Open(context.Background(), u, db); err == nil || !strings.Contains(err.Error(), "unsupported online store") {
			t.Fatalf("Open(%q): err = %v, want unsupported", u, err)
		}
	}
	if _, err := Open(context.Background(), "redis://:secret@127.0.0.1:1/0", db); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable redis: err = %v, want an error without the password", err)
	}
	if os.Getenv("KILN_TEST_REDIS") != "" {
		s, err := Open(context.Background(), os.Getenv("KILN_TEST_REDIS"), db)
		if err != nil || s.Name() != "redis" {
			t.Fatalf("Open(redis) = %v, %v", s, err)
		}
		s.Close()
		if _, err := NewRedis(context.Background(), "redis://127.0.0.1:1/0"); err == nil {
			t.Fatal("NewRedis on a closed port: no error")
		}
	}
	r := &Redis{}
	for _, v := range []string{"", "a:b"} {
		if err := r.Put(context.Background(), v, []Record{rec("k", 1, 0, "x")}); err == nil {
			t.Fatalf("redis Put into view %q: no error", v)
		}
	}
}

func TestRedisEncoding(t *testing.T) {
	times := []int64{-1 << 63, -(1 << 40), -1, 0, 1, 1 << 40, 1<<63 - 1}
	for _, a := range times {
		for _, b := range times {
			ra := encodeRedis(&Record{EventTime: a, CreatedTime: b, Value: []byte("v")})
			got, err := decodeRedis("k", string(ra))
			if err != nil || got.EventTime != a || got.CreatedTime != b || string(got.Value) != "v" {
				t.Fatalf("round trip (%d, %d): %+v, %v", a, b, got, err)
			}
			for _, c := range times {
				rc := encodeRedis(&Record{EventTime: a, CreatedTime: c})
				if cmp := bytes.Compare(ra[1:redisHeader], rc[1:redisHeader]); (cmp < 0) != (b < c) {
					t.Fatalf("header order of (%d,%d) vs (%d,%d) wrong", a, b, a, c)
				}
			}
		}
	}
	if _, err := decodeRedis("k", "junk"); err == nil {
		t.Fatal("decoding junk: no error")
	}
}

// TestEmbeddedReaders checks that the embedded store on a SQLite file reads
// through its own memory-mapped pool, and an in-memory database through db.R.
func TestEmbeddedReaders(t *testing.T) {
	ctx := context.Background()
	file, err := store.Open(ctx, "sqlite://"+t.TempDir()+"/kiln.db")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	mem, err := store.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, tc := range []struct {
		db   *store.DB
		mmap bool
	}{{file, true}, {mem, false}} {
		e := NewEmbedded(tc.db)
		if e.ownR != tc.mmap {
			t.Fatalf("own read pool = %v, want %v", e.ownR, tc.mmap)
		}
		if tc.mmap {
			var size int64
			if err := e.r.QueryRow("PRAGMA mmap_size").Scan(&size); err != nil || size <= 0 {
				t.Fatalf("mmap_size = %d, %v", size, err)
			}
		}
		mustPut(t, e, "v", rec("k", 1, 0, "x"))
		want(t, e, "v", "k", 1, 0, "x")
		mustPut(t, e, "v", rec("k", 2, 0, "y")) // seen by the next read
		want(t, e, "v", "k", 2, 0, "y")
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
