package drift

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkDriftFiles profiles and compares the drift benchmark's tables
// (bench/monitor/drift/gen.py; KILN_DRIFT_BENCH_DIR names their folder),
// as kiln monitor drift does.
func BenchmarkDriftFiles(b *testing.B) {
	dir := os.Getenv("KILN_DRIFT_BENCH_DIR")
	if dir == "" {
		b.Skip("KILN_DRIFT_BENCH_DIR not set: run bench/monitor/drift/gen.py DIR")
	}
	ref, cur := filepath.Join(dir, "reference.parquet"), filepath.Join(dir, "current.parquet")
	ctx := context.Background()
	exact := os.Getenv("KILN_DRIFT_BENCH_EXACT") != ""
	for b.Loop() {
		var r, c *Table
		var rerr, cerr error
		var wg sync.WaitGroup
		wg.Go(func() { r, rerr = ProfileFiles(ctx, []string{ref}, TableOptions{Exact: exact}) })
		wg.Go(func() { c, cerr = ProfileFiles(ctx, []string{cur}, TableOptions{Exact: exact}) })
		wg.Wait()
		if rerr != nil || cerr != nil {
			b.Fatal(rerr, cerr)
		}
		if _, err := Compare(ctx, r, c, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
