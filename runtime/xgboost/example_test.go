package xgboost_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/kiln-ml/kiln/runtime"
	_ "github.com/kiln-ml/kiln/runtime/xgboost" // registers the "xgboost" backend
	"github.com/kiln-ml/kiln/tensor"
)

// Embedded use: load an XGBoost classifier saved with
// XGBClassifier.save_model("model.ubj") (or an MLflow model directory) and
// predict two rows, one with a missing value.
func Example() {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "xgboost", runtime.Source{
		Path:    "testdata/models/binary_logistic/model.ubj",
		Options: map[string]any{"model_class": "xgboost.sklearn.XGBClassifier"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	nan := float32(math.NaN())
	x, err := tensor.FromSlice("input", []float32{
		0.5, -1.2, 0.3, 2.0, -0.7,
		-1.5, nan, 0.8, 0.1, 1.1,
	}, 2, 5)
	if err != nil {
		log.Fatal(err)
	}
	out, err := m.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		log.Fatal(err)
	}
	labels, probs := out[0].Data.([]int64), out[1].Data.([]float32)
	for i, label := range labels {
		fmt.Printf("row %d: class %d, P(class 1) = %.4f\n", i, label, probs[2*i+1])
	}
	// Output:
	// row 0: class 1, P(class 1) = 0.9714
	// row 1: class 0, P(class 1) = 0.0074
}
