package onnx_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/tensor"
)

// BenchmarkPredict runs the sklearn MLPClassifier fixture (8 features, two
// hidden layers of 32 and 16, 3 classes, label and probabilities out) on
// one row and on 64 rows.
func BenchmarkPredict(b *testing.B) {
	data, err := os.ReadFile("testdata/models/mlp_classifier/model.onnx")
	if err != nil {
		b.Fatal(err)
	}
	m, err := onnx.Load(data)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, rows := range []int{1, 64} {
		x := make([]float32, rows*8)
		for i := range x {
			x[i] = float32(i%17)/8 - 1
		}
		in, err := tensor.FromSlice("X", x, int64(rows), 8)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Predict(ctx, []*tensor.Tensor{in}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
