package score

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/tensor"
)

// BenchmarkEach scores a 64k-row table with the 100-tree forest fixture
// through Each (conversion, parallel prediction, ordering), and Inputs
// alone; rows/s are reported. Profile with
//
//	go test -run '^$' -bench Each -cpuprofile cpu.out ./score
func BenchmarkEach(b *testing.B) {
	m := loadRF100(b)
	s, batch := randomForestTable(1<<16, 9)
	feats := []string{"f0", "f1", "f2", "f3"}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			sink, err := newSink(s, Columns{Features: feats}, m.Signature())
			if err != nil {
				b.Fatal(err)
			}
			msig := sink.signature(nil)
			b.ResetTimer()
			for range b.N {
				err := Each(context.Background(), m, msig, &batchReader{schema: s, batches: splitBatch(batch, 4096)}, Options{Workers: workers},
					func(in *table.Batch, outs []*tensor.Tensor) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch.Len)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run("inputs", func(b *testing.B) {
		ps, pb := projectTable(s, batch, feats)
		p, err := newPlan(ps, m.Signature(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := p.inputs(pb, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*pb.Len)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkFile scores a Parquet file into Parquet (reading, writing,
// chunks and the final merge included).
func BenchmarkFile(b *testing.B) {
	m := loadRF100(b)
	s, batch := randomForestTable(1<<16, 10)
	dir := b.TempDir()
	in := filepath.Join(dir, "in.parquet")
	writeTable(b, in, s, batch)
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, fmt.Sprintf("out%d.parquet", i))
		if _, err := File(context.Background(), m, nil, in, out, FileOptions{Columns: Columns{Keep: []string{"id"}, Features: []string{"f0", "f1", "f2", "f3"}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch.Len)/b.Elapsed().Seconds(), "rows/s")
}
