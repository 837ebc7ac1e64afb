package pit

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
)

type discard struct{}

func (discard) Write(*table.Batch) error { return nil }
func (discard) Close() error             { return nil }

// genBatches makes n rows of (id, ts µs, x float64) over keys ids in
// batches of 64Ki rows, times random over a year.
func genBatches(n, keys int, seed uint64, withX bool) []*table.Batch {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []*table.Batch
	for lo := 0; lo < n; lo += 1 << 16 {
		m := min(1<<16, n-lo)
		b := &table.Batch{Len: m, Columns: []table.Column{{Type: table.Int64}, {Type: table.Timestamp}}}
		if withX {
			b.Columns = append(b.Columns, table.Column{Type: table.Float64})
		}
		for i := 0; i < m; i++ {
			b.Columns[0].Ints = append(b.Columns[0].Ints, int64(r.IntN(keys)))
			b.Columns[1].Ints = append(b.Columns[1].Ints, int64(r.IntN(365*86400))*1e6)
			if withX {
				b.Columns[2].Floats = append(b.Columns[2].Floats, r.Float64())
			}
		}
		out = append(out, b)
	}
	return out
}

// BenchmarkJoin: 1M feature rows over 20k keys × 100k entity rows, one
// float feature, TTL 7 days, in memory (no file I/O).
func BenchmarkJoin(b *testing.B) {
	src := genBatches(1_000_000, 20_000, 1, true)
	ent := genBatches(100_000, 22_000, 2, false)
	srcSchema := table.Schema{Fields: []table.Field{{Name: "id", Type: table.Int64}, {Name: "ts", Type: table.Timestamp, Unit: table.Microsecond}, {Name: "x", Type: table.Float64}}}
	entSchema := table.Schema{Fields: []table.Field{{Name: "id", Type: table.Int64}, {Name: "event_timestamp", Type: table.Timestamp, Unit: table.Microsecond}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		views := []View{{Name: "v", Source: &memReader{schema: srcSchema, batches: src}, JoinKeys: []string{"id"},
			TimestampField: "ts", TTL: 7 * 24 * 3600e9, Features: []Feature{{Name: "x"}}}}
		if _, err := Join(context.Background(), &memReader{schema: entSchema, batches: ent}, views, Options{}, discard{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1_000_000*b.N)/b.Elapsed().Seconds(), "feature_rows/s")
}
