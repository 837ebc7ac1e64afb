package explain_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// benchModel is a real 100-tree model: LightGBM's benchmark fixture (31
// leaves per tree, 20 features), or the model file in
// $KILN_EXPLAIN_BENCH_MODEL (backend $KILN_EXPLAIN_BENCH_BACKEND, default
// xgboost) to time another.
func benchModel(b *testing.B) (runtime.Model, int) {
	path := filepath.Join("..", "runtime", "lightgbm", "testdata", "models", "bench_100x31", "model.lgb")
	backend := "lightgbm"
	if p := os.Getenv("KILN_EXPLAIN_BENCH_MODEL"); p != "" {
		path, backend = p, "xgboost"
		if be := os.Getenv("KILN_EXPLAIN_BENCH_BACKEND"); be != "" {
			backend = be
		}
	}
	m, err := runtime.Load(context.Background(), backend, runtime.Source{Path: path})
	if err != nil {
		b.Skipf("benchmark model: %v", err)
	}
	return m, int(m.Signature().Inputs[0].Shape[1])
}

// BenchmarkExplainTree100 explains 1000 rows of a 100-tree model with
// exact path-dependent TreeSHAP (one op: all 1000 rows, all cores).
func BenchmarkExplainTree100(b *testing.B) {
	m, nf := benchModel(b)
	e, err := explain.New(context.Background(), m, explain.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 1000
	rng := rand.New(rand.NewPCG(1, 1))
	d := make([]float32, rows*nf)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	x := &tensor.Tensor{Name: m.Signature().Inputs[0].Name, DType: tensor.Float32, Shape: []int64{rows, int64(nf)}, Data: d}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Explain(context.Background(), []*tensor.Tensor{x}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/rows, "µs/row")
}
