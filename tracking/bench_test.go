package tracking

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/store"
)

// BenchmarkLogBatch100 measures the store side of a log-batch of 100 metrics.
func BenchmarkLogBatch100(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := New(db, Options{})
	run, err := s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"})
	if err != nil {
		b.Fatal(err)
	}
	ms := make([]Metric, 100)
	for i := range ms {
		ms[i] = Metric{Key: fmt.Sprintf("m%d", i), Value: float64(i), Timestamp: 1}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range ms {
			ms[k].Step = int64(i)
		}
		if err := s.LogBatch(ctx, run.Info.RunID, ms, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogBatch100Parallel logs from 8 concurrent writers, each to its own run.
func BenchmarkLogBatch100Parallel(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := New(db, Options{})
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		run, err := s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"})
		if err != nil {
			b.Error(err)
			return
		}
		ms := make([]Metric, 100)
		for i := range ms {
			ms[i] = Metric{Key: fmt.Sprintf("m%d", i), Value: float64(i), Timestamp: 1}
		}
		for step := 0; pb.Next(); step++ {
			for k := range ms {
				ms[k].Step = int64(step)
			}
			if err := s.LogBatch(ctx, run.Info.RunID, ms, nil, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCompact100 measures compaction per batch of 100 metric values
// (8 runs × 100 keys, steps growing, as in the load test).
func BenchmarkCompact100(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := New(db, Options{})
	var runs []string
	for i := 0; i < 8; i++ {
		r, _ := s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"})
		runs = append(runs, r.Info.RunID)
	}
	ms := make([]Metric, 100)
	for i := range ms {
		ms[i] = Metric{Key: fmt.Sprintf("m%d", i), Value: float64(i), Timestamp: 1}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for k := range ms {
			ms[k].Step = int64(i)
		}
		if err := s.LogBatch(ctx, runs[i%8], ms, nil, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if i%600 == 599 { // compact every 600 batches, about what one second holds under load
			if _, err := s.CompactMetrics(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
