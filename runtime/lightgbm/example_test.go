package lightgbm_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/kiln-ml/kiln/runtime"
	_ "github.com/kiln-ml/kiln/runtime/lightgbm"
	"github.com/kiln-ml/kiln/tensor"
)

// Load a LightGBM classifier saved by Booster.save_model and predict two
// rows, one of them with missing values.
func Example() {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "lightgbm", runtime.Source{
		Path:    "testdata/models/binary_classifier", // an MLflow flavor directory holding model.lgb
		Options: map[string]any{"model_class": "lightgbm.sklearn.LGBMClassifier"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	nan := float32(math.NaN())
	x, err := tensor.FromSlice("input", []float32{
		1.2, -0.3, 0.8, 0.1, 0, 2,
		-1.5, nan, nan, 0.4, nan, -1,
	}, 2, 6)
	if err != nil {
		log.Fatal(err)
	}
	out, err := m.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		log.Fatal(err)
	}
	labels := out[0].Data.([]int64)
	probs := out[1].Data.([]float32)
	for i, l := range labels {
		fmt.Printf("row %d: label %d, P(1) = %.3f\n", i, l, probs[2*i+1])
	}
	// Output:
	// row 0: label 1, P(1) = 0.999
	// row 1: label 0, P(1) = 0.001
}
