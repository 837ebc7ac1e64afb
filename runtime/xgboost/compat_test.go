package xgboost

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// editModel decodes a fixture's JSON model, lets edit change it, and
// returns the re-encoded document.
func editModel(t *testing.T, name string, edit func(learner map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc["learner"].(map[string]any))
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gbtreeModel(l map[string]any) map[string]any {
	return l["gradient_booster"].(map[string]any)["model"].(map[string]any)
}

// TestOlderModelLayouts rewrites a current model into the layouts older
// XGBoost versions wrote (a scalar base_score before 3.1, no num_target,
// no iteration_indptr before 1.7, no categorical fields before 1.4, trees
// without ids) and checks that predictions do not change.
func TestOlderModelLayouts(t *testing.T) {
	ctx := context.Background()
	const file = "testdata/models/binary_logistic/model.json"
	ref, err := Load(ctx, runtime.Source{Path: file})
	if err != nil {
		t.Fatal(err)
	}
	old := editModel(t, file, func(l map[string]any) {
		p := l["learner_model_param"].(map[string]any)
		var base []float64
		if err := json.Unmarshal([]byte(p["base_score"].(string)), &base); err != nil || len(base) != 1 {
			t.Fatalf("base_score %v", p["base_score"])
		}
		p["base_score"] = "5.133333E-1"
		if base[0] != 5.133333e-1 {
			t.Fatalf("fixture base_score changed: %v", base)
		}
		delete(p, "num_target")
		delete(p, "boost_from_average")
		m := gbtreeModel(l)
		delete(m, "iteration_indptr")
		delete(m, "cats")
		for _, tv := range m["trees"].([]any) {
			tree := tv.(map[string]any)
			for _, k := range []string{"split_type", "categories", "categories_nodes", "categories_segments", "categories_sizes", "id", "parents", "base_weights"} {
				delete(tree, k)
			}
			delete(tree["tree_param"].(map[string]any), "num_deleted")
		}
		delete(l, "attributes")
		delete(l, "feature_names")
		delete(l, "feature_types")
	})
	m, err := Decode(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	comparePredictions(t, ctx, ref, m)
}

// TestScalarBaseScoreBroadcast: a multi-class model with a scalar
// base_score (XGBoost before 3.1) uses it for every class.
func TestScalarBaseScoreBroadcast(t *testing.T) {
	ctx := context.Background()
	const file = "testdata/models/multi_softprob/model.json"
	set := func(base string) []byte {
		return editModel(t, file, func(l map[string]any) {
			l["learner_model_param"].(map[string]any)["base_score"] = base
		})
	}
	vec, err := Decode(set("[2.5E-1,2.5E-1,2.5E-1]"), nil)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := Decode(set("2.5E-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	comparePredictions(t, ctx, vec, scalar)
	if _, err := Decode(set("[1E-1,2E-1]"), nil); err == nil {
		t.Fatal("a base_score of 2 values for 3 classes loaded")
	}
}

// TestTreesPlacedByID shuffles the trees array: XGBoost places trees by
// their id, so predictions must not change.
func TestTreesPlacedByID(t *testing.T) {
	ctx := context.Background()
	const file = "testdata/models/multi_softprob/model.json"
	ref, err := Load(ctx, runtime.Source{Path: file})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(editModel(t, file, func(l map[string]any) {
		m := gbtreeModel(l)
		trees := m["trees"].([]any)
		for i, j := 0, len(trees)-1; i < j; i, j = i+1, j-1 {
			trees[i], trees[j] = trees[j], trees[i]
		}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	comparePredictions(t, ctx, ref, m)
}

func comparePredictions(t *testing.T, ctx context.Context, a, b *Model) {
	t.Helper()
	var in struct {
		Inputs []oipTensor `json:"inputs"`
	}
	readJSON(t, "testdata/models/binary_logistic/inputs.json", &in)
	x := in.Inputs[0].tensor(t)
	nf := a.NumFeature()
	if x.Shape[1] != int64(nf) {
		// Another model's width: predict on a synthetic batch.
		rows := 20
		data := make([]float32, rows*nf)
		for i := range data {
			data[i] = float32(i%9)*0.4 - 1.6
		}
		x = &tensor.Tensor{Name: "input", DType: tensor.Float32, Shape: []int64{int64(rows), int64(nf)}, Data: data}
	}
	oa, err := a.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := b.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if len(oa) != len(ob) {
		t.Fatalf("%d vs %d outputs", len(oa), len(ob))
	}
	for i := range oa {
		compareTensor(t, ob[i], oa[i])
	}
}

// TestConcurrentPredict predicts from many goroutines at once (run with
// -race): a Model is immutable after Load.
func TestConcurrentPredict(t *testing.T) {
	ctx := context.Background()
	m, err := Load(ctx, runtime.Source{Path: "testdata/models/categorical_partition/model.ubj"})
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Inputs []oipTensor `json:"inputs"`
	}
	readJSON(t, "testdata/models/categorical_partition/inputs.json", &in)
	x := in.Inputs[0].tensor(t)
	want, err := m.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				got, err := m.Predict(ctx, []*tensor.Tensor{x})
				if err != nil {
					errs <- err
					return
				}
				for i := range got {
					if !slicesEqualAny(got[i].Data, want[i].Data) {
						errs <- errors.New("concurrent predictions differ")
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func slicesEqualAny(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		y := b.([]float32)
		for i := range x {
			if x[i] != y[i] && !(x[i] != x[i] && y[i] != y[i]) {
				return false
			}
		}
		return len(x) == len(y)
	case []int64:
		return slices.Equal(x, b.([]int64))
	}
	return false
}

// TestQuantilesSortedFrom34: XGBoost 3.4 sorts each row's quantiles; a
// model written by 3.4 is predicted that way, one written by 3.2 is not.
// The base scores are swapped so that the quantiles cross.
func TestQuantilesSortedFrom34(t *testing.T) {
	ctx := context.Background()
	const file = "testdata/models/reg_quantile_two/model.json"
	model := func(version []any) *Model {
		b := editModel(t, file, func(l map[string]any) {
			l["learner_model_param"].(map[string]any)["base_score"] = "[3.7228231E0,-3.107046E0]"
		})
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		doc["version"] = version
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var in struct {
		Inputs []oipTensor `json:"inputs"`
	}
	readJSON(t, "testdata/models/reg_quantile_two/inputs.json", &in)
	x := in.Inputs[0].tensor(t)
	o32, err := model([]any{3, 2, 0}).Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	o34, err := model([]any{3, 4, 1}).Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	p32, p34 := o32[0].Data.([]float32), o34[0].Data.([]float32)
	crossed := 0
	for r := 0; r < len(p32); r += 2 {
		lo, hi := min(p32[r], p32[r+1]), max(p32[r], p32[r+1])
		if p32[r] > p32[r+1] {
			crossed++
		}
		if p34[r] != lo || p34[r+1] != hi {
			t.Fatalf("row %d: 3.4 quantiles %v, want sorted %v", r/2, p34[r:r+2], []float32{lo, hi})
		}
	}
	if crossed == 0 {
		t.Fatal("no crossing quantiles: the test checks nothing")
	}
}
