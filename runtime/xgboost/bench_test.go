package xgboost

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

// TestSynthetic cross-checks the flattened trees against a naive walk of
// the document, for both formats, on random rows with missing values.
func TestSynthetic(t *testing.T) {
	ctx := context.Background()
	const features = 20
	doc := synthModel(30, 5, features, 7)
	rng := rand.New(rand.NewPCG(1, 2))
	rows := 50
	x := make([]float32, rows*features)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		if rng.IntN(6) == 0 {
			x[i] = float32(math.NaN())
		}
	}
	for _, data := range [][]byte{synthJSON(30, 5, features, 7), encodeUBJ(doc)} {
		m, err := Decode(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{int64(rows), features}, Data: x}})
		if err != nil {
			t.Fatal(err)
		}
		probs := out[1].Data.([]float32)
		for r := range rows {
			want := sigmoid32(naiveMargin(doc, x[r*features:(r+1)*features]))
			if !close32(probs[2*r+1], want) {
				t.Fatalf("row %d: probability %v, want %v", r, probs[2*r+1], want)
			}
		}
	}
}

// The benchmark model: 100 trees of depth 6 (127 nodes each) over 32
// features, the size of a typical production gradient-boosted model.
const benchTrees, benchDepth, benchFeatures = 100, 6, 32

func BenchmarkLoad(b *testing.B) {
	for _, bm := range []struct {
		name string
		data []byte
	}{
		{"JSON", synthJSON(benchTrees, benchDepth, benchFeatures, 1)},
		{"UBJSON", encodeUBJ(synthModel(benchTrees, benchDepth, benchFeatures, 1))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bm.data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPredict(b *testing.B) {
	m, err := Decode(encodeUBJ(synthModel(benchTrees, benchDepth, benchFeatures, 1)), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, rows := range []int{1, 64, 4096} {
		x := make([]float32, rows*benchFeatures)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if rng.IntN(10) == 0 {
				x[i] = float32(math.NaN())
			}
		}
		in := []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{int64(rows), benchFeatures}, Data: x}}
		b.Run(map[int]string{1: "1row", 64: "64rows", 4096: "4096rows"}[rows], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Predict(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}
