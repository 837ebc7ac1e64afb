package lightgbm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// The benchmark model: 100 trees of 31 leaves over 20 features (gen.py).
var benchModel = filepath.Join("testdata", "models", "bench_100x31", "model.lgb")

func BenchmarkLoad(b *testing.B) {
	data, err := os.ReadFile(benchModel)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPredict(b *testing.B, rows int) {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "lightgbm", runtime.Source{Path: benchModel})
	if err != nil {
		b.Fatal(err)
	}
	x, _ := tensor.New("input", tensor.Float32, int64(rows), 20)
	d := x.Data.([]float32)
	for i := range d {
		d[i] = float32(i%13)*0.3 - 1.7
	}
	in := []*tensor.Tensor{x}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Predict(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "ns/row")
}

func BenchmarkPredict1(b *testing.B)  { benchPredict(b, 1) }
func BenchmarkPredict64(b *testing.B) { benchPredict(b, 64) }
