package xgboost

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// FuzzLoad decodes arbitrary bytes as a model file. It must never panic,
// fail with anything but ErrInvalidModel or ErrUnsupported, or load a model
// that then panics or returns outputs of the wrong size.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{
		"testdata/models/reg_gblinear/model.json",
		"testdata/models/reg_gblinear/model.ubj",
		"testdata/models/multi_gblinear/model.json",
		"testdata/models/booster_rank_map/model.json",
	} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Small tree models with categorical splits, in both formats.
	doc := synthModel(2, 2, 3, 1)
	tree := doc["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)["trees"].([]any)[0].(map[string]any)
	tree["split_type"] = u8s{1, 0, 0, 0, 0, 0, 0}
	tree["categories_nodes"] = []int32{0}
	tree["categories_segments"] = []int64{0}
	tree["categories_sizes"] = []int64{2}
	tree["categories"] = []int32{1, 3}
	f.Add(encodeUBJ(doc))
	f.Add(synthJSON(2, 2, 3, 2))
	f.Add(legacyModel("binf"))
	f.Add([]byte(`{"learner":{}}`))

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, nil)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalidModel) && !errors.Is(err, runtime.ErrUnsupported) {
				t.Fatalf("error %v is neither ErrInvalidModel nor ErrUnsupported", err)
			}
			return
		}
		nf := m.NumFeature()
		if nf > 1<<12 {
			return // too wide to feed cheaply
		}
		x := make([]float32, 3*nf)
		for i := range nf {
			x[i] = float32(math.NaN())
			x[nf+i] = float32(i%7) - 3
			x[2*nf+i] = 1e30
		}
		out, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{3, int64(nf)}, Data: x}})
		if err != nil {
			t.Fatalf("predict: %v", err)
		}
		sig := m.Signature()
		for i, o := range out {
			if err := o.Validate(); err != nil || o.Shape[0] != 3 || o.Name != sig.Outputs[i].Name {
				t.Fatalf("output %d: %+v %v", i, o, err)
			}
		}
	})
}
