package online

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/store"
)

// The lookup benchmarks read random entities of a view of
// KILN_BENCH_ENTITIES entities (default 20000) with a value of
// KILN_BENCH_VALUE bytes each (default 1000: 100 features of a few bytes
// encoded). The embedded store is a SQLite file in KILN_BENCH_DIR (default
// a temporary folder); it and the Redis view (KILN_TEST_REDIS) are loaded
// once and reused by later runs with the same sizes. bench/features/run.sh
// runs them at 1M entities.

const benchView = "bench_online"

func benchSizes() (entities, value int) {
	entities, value = 20000, 1000
	if v, err := strconv.Atoi(os.Getenv("KILN_BENCH_ENTITIES")); err == nil && v > 0 {
		entities = v
	}
	if v, err := strconv.Atoi(os.Getenv("KILN_BENCH_VALUE")); err == nil && v > 0 {
		value = v
	}
	return entities, value
}

// BenchKey is the entity key of entity i in the benchmark views (the Python
// anchors in bench/features read the same keys).
func benchKey(i int) string { return "customer_id=" + strconv.Itoa(i) }

// benchTempDir is removed when the tests end.
var benchTempDir string

func TestMain(m *testing.M) {
	code := m.Run()
	benchStores.mu.Lock()
	for _, s := range benchStores.m {
		s.Close()
	}
	benchStores.mu.Unlock()
	if benchTempDir != "" {
		os.RemoveAll(benchTempDir)
	}
	os.Exit(code)
}

var benchStores struct {
	mu sync.Mutex
	m  map[string]Store
}

// benchStore opens (once per process) and loads the store named name.
func benchStore(b *testing.B, name string) Store {
	benchStores.mu.Lock()
	defer benchStores.mu.Unlock()
	if s, ok := benchStores.m[name]; ok {
		return s
	}
	ctx := context.Background()
	entities, value := benchSizes()
	var s Store
	switch name {
	case "embedded":
		dir := os.Getenv("KILN_BENCH_DIR")
		if dir == "" {
			d, err := os.MkdirTemp("", "kiln-online-bench-")
			if err != nil {
				b.Fatal(err)
			}
			benchTempDir, dir = d, d
		}
		path := filepath.Join(dir, fmt.Sprintf("online-%d-%d.db", entities, value))
		db, err := store.Open(ctx, "sqlite://"+path)
		if err != nil {
			b.Fatal(err)
		}
		s = NewEmbedded(db)
	case "redis":
		u := os.Getenv("KILN_TEST_REDIS")
		if u == "" {
			b.Skip("KILN_TEST_REDIS is not set")
		}
		r, err := NewRedis(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		s = r
	}
	// Loaded already when the last entity has a value of the right size.
	last, err := s.Get(ctx, benchView, []string{benchKey(entities - 1)})
	if err != nil {
		b.Fatal(err)
	}
	if last[0] == nil || len(last[0].Value) != value {
		if err := s.DeleteView(ctx, benchView); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rng := mrand.New(mrand.NewPCG(1, 2))
		const batch = 10000
		buf := make([]byte, batch*value)
		recs := make([]Record, 0, batch)
		for i := 0; i < entities; i += batch {
			recs = recs[:0]
			for j := i; j < min(i+batch, entities); j++ {
				v := buf[(j-i)*value : (j-i+1)*value]
				for k := range v {
					v[k] = byte(rng.Uint32())
				}
				recs = append(recs, Record{Key: benchKey(j), EventTime: time.Now().UnixMicro(), Value: v})
			}
			if err := s.Put(ctx, benchView, recs); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(start)
		fmt.Fprintf(os.Stderr, "loaded %d entities × %d B into %s in %v (%.0f records/s)\n",
			entities, value, name, el.Round(time.Millisecond), float64(entities)/el.Seconds())
	}
	if benchStores.m == nil {
		benchStores.m = make(map[string]Store)
	}
	benchStores.m[name] = s
	return s
}

// BenchmarkOnlineGet measures one lookup of 1 or 10 random entities at a
// time, reporting the p50 and p99 latency of the lookups.
func BenchmarkOnlineGet(b *testing.B) {
	entities, _ := benchSizes()
	for _, name := range []string{"embedded", "redis"} {
		for _, n := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/keys=%d", name, n), func(b *testing.B) {
				s := benchStore(b, name)
				ctx := context.Background()
				rng := mrand.New(mrand.NewPCG(3, uint64(n)))
				keys := make([]string, n)
				lat := make([]time.Duration, 0, b.N)
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range keys {
						keys[j] = benchKey(rng.IntN(entities))
					}
					t0 := time.Now()
					got, err := s.Get(ctx, benchView, keys)
					lat = append(lat, time.Since(t0))
					if err != nil || got[n-1] == nil {
						b.Fatalf("Get: %v, %v", got, err)
					}
				}
				b.StopTimer()
				// CPU time of this process per lookup (the client side only
				// for Redis): unlike the latencies, it does not grow when
				// other processes compete for the CPUs.
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			})
		}
	}
}

// cpuTime is the user and system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOnlineGetParallel measures throughput: lookups from 2 goroutines
// per CPU; ns/op is the inverse of lookups per second.
func BenchmarkOnlineGetParallel(b *testing.B) {
	entities, _ := benchSizes()
	for _, name := range []string{"embedded", "redis"} {
		for _, n := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/keys=%d", name, n), func(b *testing.B) {
				s := benchStore(b, name)
				ctx := context.Background()
				var seed atomic.Uint64
				b.SetParallelism(2)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					rng := mrand.New(mrand.NewPCG(seed.Add(1), 7))
					keys := make([]string, n)
					for pb.Next() {
						for j := range keys {
							keys[j] = benchKey(rng.IntN(entities))
						}
						if got, err := s.Get(ctx, benchView, keys); err != nil || got[0] == nil {
							b.Errorf("Get: %v", err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkOnlinePut measures writes of batches of 1000 new records
// (ns/op is per record).
func BenchmarkOnlinePut(b *testing.B) {
	_, value := benchSizes()
	for _, name := range []string{"embedded", "redis"} {
		b.Run(name, func(b *testing.B) {
			s := benchStore(b, name)
			ctx := context.Background()
			view := benchView + "_put"
			defer s.DeleteView(ctx, view)
			v := make([]byte, value)
			recs := make([]Record, 1000)
			b.ResetTimer()
			for i := 0; i < b.N; i += len(recs) {
				for j := range recs {
					recs[j] = Record{Key: benchKey(i + j), EventTime: int64(i), Value: v}
				}
				if err := s.Put(ctx, view, recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
