package profile

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
)

// benchFile is the Parquet file written by testdata/gen_bench.py (1M rows
// × 20 columns by default); KILN_PROFILE_BENCH_FILE points elsewhere.
func benchFile(b *testing.B) string {
	path := os.Getenv("KILN_PROFILE_BENCH_FILE")
	if path == "" {
		path = "testdata/bench.parquet"
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("%s missing: run .venv/bin/python dataset/profile/testdata/gen_bench.py", path)
	}
	return path
}

// BenchmarkReadParquet decodes every column of the benchmark file.
func BenchmarkReadParquet(b *testing.B) {
	path := benchFile(b)
	ctx := context.Background()
	var rows int64
	for b.Loop() {
		r, err := table.Open(ctx, path, table.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			bt, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows += int64(bt.Len)
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkProfileParquet reads and profiles the benchmark file.
func BenchmarkProfileParquet(b *testing.B) {
	path := benchFile(b)
	ctx := context.Background()
	var rows int64
	for b.Loop() {
		r, err := table.Open(ctx, path, table.Options{})
		if err != nil {
			b.Fatal(err)
		}
		p, err := Compute(ctx, r, Options{})
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
		rows += p.Rows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
