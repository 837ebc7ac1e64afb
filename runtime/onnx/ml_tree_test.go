package onnx

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// mlStump is one tree: node 0 tests feature 0 (mode, threshold), leaf 1
// is its true branch, leaf 2 the false one; leaf weights 10 and 20 for
// target 0.
func mlStump(prefix, mode string, thr float64, missingTrue int) map[string]any {
	return map[string]any{
		"nodes_treeids":                   []int{0, 0, 0},
		"nodes_nodeids":                   []int{0, 1, 2},
		"nodes_featureids":                []int{0, 0, 0},
		"nodes_modes":                     []string{mode, "LEAF", "LEAF"},
		"nodes_values":                    []float64{thr, 0, 0},
		"nodes_truenodeids":               []int{1, 0, 0},
		"nodes_falsenodeids":              []int{2, 0, 0},
		"nodes_missing_value_tracks_true": []int{missingTrue, 0, 0},
		prefix + "treeids":                []int{0, 0},
		prefix + "nodeids":                []int{1, 2},
		prefix + "ids":                    []int{0, 0},
		prefix + "weights":                []float64{10, 20},
	}
}

func TestMLTreeModes(t *testing.T) {
	nan := math.NaN()
	xs := []float32{-1, 0.5, 1, 2, float32(nan)}
	for _, c := range []struct {
		mode    string
		missing int
		want    []float64
	}{
		{"BRANCH_LEQ", 0, []float64{10, 10, 10, 20, 20}},
		{"BRANCH_LT", 0, []float64{10, 10, 20, 20, 20}},
		{"BRANCH_GTE", 0, []float64{20, 20, 10, 10, 20}},
		{"BRANCH_GT", 0, []float64{20, 20, 20, 10, 20}},
		{"BRANCH_EQ", 0, []float64{20, 20, 10, 20, 20}},
		{"BRANCH_NEQ", 0, []float64{10, 10, 20, 10, 10}},
		{"BRANCH_LEQ", 1, []float64{10, 10, 10, 20, 10}},
		{"BRANCH_GT", 1, []float64{20, 20, 20, 10, 10}},
	} {
		attrs := mlStump("target_", c.mode, 1, c.missing)
		k := mlMustKernel(t, "TreeEnsembleRegressor", attrs)
		out := mlRun(t, k, mlT(xs, 5, 1))
		mlWantFloats(t, c.mode, out[0], c.want, 5, 1)
	}
}

func TestMLTreeRegressorAggregates(t *testing.T) {
	// Two stumps on features 0 and 1, two targets.
	attrs := map[string]any{
		"n_targets":          2,
		"nodes_treeids":      []int{0, 0, 0, 1, 1, 1},
		"nodes_nodeids":      []int{0, 1, 2, 0, 1, 2},
		"nodes_featureids":   []int{0, 0, 0, 1, 0, 0},
		"nodes_modes":        []string{"BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"},
		"nodes_values":       []float64{0, 0, 0, 0, 0, 0},
		"nodes_truenodeids":  []int{1, 0, 0, 1, 0, 0},
		"nodes_falsenodeids": []int{2, 0, 0, 2, 0, 0},
		"target_treeids":     []int{0, 0, 0, 1, 1},
		"target_nodeids":     []int{1, 1, 2, 1, 2},
		"target_ids":         []int{0, 1, 0, 0, 0},
		"target_weights":     []float64{1, 5, 2, 4, 8},
	}
	x := mlT([]float32{-1, -1, 1, 1}, 2, 2)
	for _, c := range []struct {
		agg  string
		base []float64
		want []float64
	}{
		// row 0: leaves (1: t0=1, t1=5) and (1: t0=4); row 1: (2: t0=2), (2: t0=8)
		{"SUM", nil, []float64{5, 5, 10, 0}},
		{"SUM", []float64{0.5, 0.25}, []float64{5.5, 5.25, 10.5, 0}}, // unreached targets stay 0
		{"AVERAGE", nil, []float64{2.5, 2.5, 5, 0}},
		{"MIN", []float64{1, 1}, []float64{2, 6, 3, 0}},
		{"MAX", nil, []float64{4, 5, 8, 0}},
	} {
		a := map[string]any{"aggregate_function": c.agg}
		for k, v := range attrs {
			a[k] = v
		}
		if c.base != nil {
			a["base_values"] = c.base
		}
		out := mlRun(t, mlMustKernel(t, "TreeEnsembleRegressor", a), x)
		mlWantFloats(t, c.agg, out[0], c.want, 2, 2)
	}
}

func TestMLTreeRegressorSingleTarget(t *testing.T) {
	// Two weights on one leaf: the single-target path takes the first,
	// as onnxruntime does.
	attrs := mlStump("target_", "BRANCH_LEQ", 0, 0)
	attrs["target_treeids"] = []int{0, 0, 0}
	attrs["target_nodeids"] = []int{1, 1, 2}
	attrs["target_ids"] = []int{0, 0, 0}
	attrs["target_weights"] = []float64{1, 100, 2}
	attrs["base_values"] = []float64{0.5}
	attrs["post_transform"] = "LOGISTIC" // ignored for one target
	out := mlRun(t, mlMustKernel(t, "TreeEnsembleRegressor", attrs), mlT([]float32{-1, 1}, 2, 1))
	mlWantFloats(t, "sum", out[0], []float64{1.5, 2.5}, 2, 1)
	// A double input is compared in double precision.
	attrs = mlStump("target_", "BRANCH_LEQ", 0, 0)
	delete(attrs, "nodes_values")
	attrs["nodes_values_as_tensor"] = mlT([]float64{0.1, 0, 0})
	k := mlMustKernel(t, "TreeEnsembleRegressor", attrs)
	out = mlRun(t, k, mlT([]float64{0.1, 0.10000000000000002}, 2, 1))
	mlWantFloats(t, "double", out[0], []float64{10, 20})
	// float32(0.1) > 0.1, so float32 inputs just above 0.1 still go left.
	out = mlRun(t, k, mlT([]float32{0.1}, 1, 1))
	mlWantFloats(t, "float", out[0], []float64{10})
}

func TestMLTreeClassifierBinary(t *testing.T) {
	// Random-forest style: one class carries all (non-negative) weights;
	// the score s is the probability of the second label.
	attrs := mlStump("class_", "BRANCH_LEQ", 0, 0)
	attrs["classlabels_int64s"] = []int{5, 7}
	attrs["class_weights"] = []float64{0.25, 0.75}
	out := mlRun(t, mlMustKernel(t, "TreeEnsembleClassifier", attrs), mlT([]float32{-1, 1}, 2, 1))
	if got := out[0].(*tensor.Tensor).Data.([]int64); got[0] != 5 || got[1] != 7 {
		t.Errorf("labels %v, want [5 7]", got)
	}
	mlWantFloats(t, "scores", out[1], []float64{0.75, 0.25, 0.25, 0.75}, 2, 2)

	// Gradient-boosting style: mixed signs, logistic, threshold 0.
	attrs["class_weights"] = []float64{-0.5, 1.5}
	attrs["post_transform"] = "LOGISTIC"
	attrs["classlabels_strings"] = []string{"no", "yes"}
	delete(attrs, "classlabels_int64s")
	attrs["base_values"] = []float64{0.25}
	out = mlRun(t, mlMustKernel(t, "TreeEnsembleClassifier", attrs), mlT([]float32{-1, 1}, 2, 1))
	if got := out[0].(*tensor.Tensor).Data.([]string); got[0] != "no" || got[1] != "yes" {
		t.Errorf("labels %v, want [no yes]", got)
	}
	s0, s1 := float32(-0.25), float32(1.75)
	mlWantFloats(t, "logistic", out[1], []float64{
		float64(mlLogistic(-s0)), float64(mlLogistic(s0)), float64(mlLogistic(-s1)), float64(mlLogistic(s1))}, 2, 2)
}

func TestMLTreeClassifierMulti(t *testing.T) {
	attrs := mlStump("class_", "BRANCH_LEQ", 0, 0)
	attrs["classlabels_int64s"] = []int{1, 2, 3}
	attrs["class_treeids"] = []int{0, 0, 0}
	attrs["class_nodeids"] = []int{1, 1, 2}
	attrs["class_ids"] = []int{0, 2, 1}
	attrs["class_weights"] = []float64{1, 3, 2}
	attrs["post_transform"] = "SOFTMAX"
	out := mlRun(t, mlMustKernel(t, "TreeEnsembleClassifier", attrs), mlT([]float32{-1, 1}, 2, 1))
	if got := out[0].(*tensor.Tensor).Data.([]int64); got[0] != 3 || got[1] != 2 {
		t.Errorf("labels %v, want [3 2]", got)
	}
	// Unreached classes score 0 before the softmax.
	e := func(v float64) float64 { return math.Exp(v) }
	d0 := e(1) + e(0) + e(3)
	d1 := e(0) + e(2) + e(0)
	mlWantFloats(t, "scores", out[1], []float64{e(1) / d0, 1 / d0, e(3) / d0, 1 / d1, e(2) / d1, 1 / d1}, 2, 3)
}

func TestMLTreeErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(a map[string]any)
		want   string
	}{
		{"duplicate", func(a map[string]any) { a["nodes_nodeids"] = []int{0, 1, 1} }, "node 1 of tree 0 is defined twice"},
		{"missing child", func(a map[string]any) { a["nodes_truenodeids"] = []int{7, 0, 0} }, "true node 7 does not exist"},
		{"self", func(a map[string]any) { a["nodes_falsenodeids"] = []int{0, 0, 0} }, "points to itself"},
		{"mode", func(a map[string]any) { a["nodes_modes"] = []string{"BRANCH_XX", "LEAF", "LEAF"} }, `unknown mode "BRANCH_XX"`},
		{"length", func(a map[string]any) { a["nodes_values"] = []float64{1} }, `attribute "nodes_values" has 1 values, want 3`},
		{"target", func(a map[string]any) { a["target_ids"] = []int{0, 3} }, "target or class 3, outside [0, 1)"},
		{"weight node", func(a map[string]any) { a["target_nodeids"] = []int{1, 9} }, "node 9 of tree 0, which does not exist"},
		{"empty", func(a map[string]any) { a["nodes_treeids"] = []int{} }, "has no nodes"},
		{"agg", func(a map[string]any) { a["aggregate_function"] = "MEDIAN" }, `unknown value "MEDIAN"`},
		{"feature", func(a map[string]any) { a["nodes_featureids"] = []int{-1, 0, 0} }, "invalid feature id -1"},
		{"base", func(a map[string]any) { a["base_values"] = []float64{1, 2} }, "want 0 or n_targets"},
		{"both", func(a map[string]any) { a["nodes_values_as_tensor"] = mlT([]float64{1, 0, 0}) }, "are both set"},
		{"type", func(a map[string]any) { a["nodes_values"] = []int{1, 2, 3} }, `attribute "nodes_values" has type`},
	} {
		a := mlStump("target_", "BRANCH_LEQ", 0, 0)
		c.change(a)
		_, err := mlCompileNode(t, "TreeEnsembleRegressor", 3, a)
		mlWantErr(t, err, c.want)
		if err != nil && !strings.Contains(err.Error(), `TreeEnsembleRegressor node "n"`) {
			t.Errorf("%s: error %q does not name the node", c.name, err)
		}
	}
	// A cycle through two interior nodes.
	a := map[string]any{
		"nodes_treeids":      []int{0, 0, 0},
		"nodes_nodeids":      []int{0, 1, 2},
		"nodes_featureids":   []int{0, 0, 0},
		"nodes_modes":        []string{"BRANCH_LEQ", "BRANCH_LEQ", "LEAF"},
		"nodes_values":       []float64{0, 0, 0},
		"nodes_truenodeids":  []int{1, 0, 0},
		"nodes_falsenodeids": []int{2, 2, 0},
		"target_treeids":     []int{0},
		"target_nodeids":     []int{2},
		"target_ids":         []int{0},
		"target_weights":     []float64{1},
	}
	_, err := mlCompileNode(t, "TreeEnsembleRegressor", 3, a)
	mlWantErr(t, err, "cycle")

	// Too few input features is an error at run time.
	k := mlMustKernel(t, "TreeEnsembleRegressor", mlStump("target_", "BRANCH_LEQ", 0, 0))
	_, err = k.Run(nil, []Value{mlT([]float32{}, 3, 0)})
	mlWantErr(t, err, "uses feature 0 but the input has 0 features")
	_, err = k.Run(nil, []Value{mlT([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 2)})
	mlWantErr(t, err, "shape [N, C] or [C]")
	_, err = k.Run(nil, []Value{mlT([]string{"a"}, 1, 1)})
	mlWantErr(t, err, "not numeric")

	// Classifier: fewer than two labels.
	c := mlStump("class_", "BRANCH_LEQ", 0, 0)
	c["classlabels_int64s"] = []int{1}
	_, err = mlCompileNode(t, "TreeEnsembleClassifier", 3, c)
	mlWantErr(t, err, "needs at least 2")
}

// mlTE5 builds a TreeEnsemble 5 node: one tree whose root tests feature 0
// for membership in set (missing values go true when missingTrue), with
// leaf 0 (weight 1) on true and leaf 1 (weight 2) on false, plus a
// single-leaf tree (leaf 2, weight 0.5).
func mlTE5(set []float64, missingTrue int, dt tensor.DType) map[string]any {
	members := append(append([]float64(nil), set...), math.NaN())
	weights := []float64{1, 2, 0.5}
	mk := func(v []float64) *tensor.Tensor {
		if dt == tensor.Float64 {
			return mlT(v)
		}
		return mlT(mlConvert[float32](v))
	}
	return map[string]any{
		"n_targets":                       1,
		"tree_roots":                      []int{0, 1},
		"nodes_modes":                     mlT([]uint8{6, 0}),
		"nodes_featureids":                []int{0, 0},
		"nodes_splits":                    mk([]float64{0, 0}),
		"membership_values":               mk(members),
		"nodes_truenodeids":               []int{0, 2},
		"nodes_trueleafs":                 []int{1, 1},
		"nodes_falsenodeids":              []int{1, 2},
		"nodes_falseleafs":                []int{1, 1},
		"nodes_missing_value_tracks_true": []int{missingTrue, 0},
		"leaf_targetids":                  []int{0, 0, 0},
		"leaf_weights":                    mk(weights),
	}
}

func TestMLTreeEnsemble5(t *testing.T) {
	nan := math.NaN()
	xs := []float64{1, 1.5, 3, 4, nan, -2, -2.5, 40.75, 1e12}
	for _, c := range []struct {
		name    string
		set     []float64
		missing int
		want    []float64 // tree 0 leaf weight + 0.5
	}{
		// a small set compares exactly
		{"small", []float64{1, 3}, 0, []float64{1.5, 2.5, 1.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5}},
		{"small missing", []float64{1, 3}, 1, []float64{1.5, 2.5, 1.5, 2.5, 1.5, 2.5, 2.5, 2.5, 2.5}},
		{"small fraction", []float64{1.5, 3}, 0, []float64{2.5, 1.5, 1.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5}},
		// a big set truncates the input to int32 (onnxruntime)
		{"big", []float64{-2, 40, 3}, 0, []float64{2.5, 2.5, 1.5, 2.5, 2.5, 1.5, 1.5, 1.5, 2.5}},
	} {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
			k, err := mlCompileNode(t, "TreeEnsemble", 5, mlTE5(c.set, c.missing, dt))
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			var x *tensor.Tensor
			if dt == tensor.Float64 {
				x = mlT(xs, int64(len(xs)), 1)
			} else {
				x = mlT(mlConvert[float32](xs), int64(len(xs)), 1)
			}
			out := mlRun(t, k, x)
			if out[0].(*tensor.Tensor).DType != dt {
				t.Errorf("%s: output %v, want %v", c.name, out[0].(*tensor.Tensor).DType, dt)
			}
			mlWantFloats(t, c.name+" "+dt.String(), out[0], c.want, int64(len(xs)), 1)
		}
	}
	_, err := mlCompileNode(t, "TreeEnsemble", 5, mlTE5([]float64{0.5, 50}, 0, tensor.Float32))
	mlWantErr(t, err, "must hold int32 integers")
	a := mlTE5([]float64{1}, 0, tensor.Float32)
	a["post_transform"] = 9
	_, err = mlCompileNode(t, "TreeEnsemble", 5, a)
	mlWantErr(t, err, `"post_transform" is 9`)
	a = mlTE5([]float64{1}, 0, tensor.Float32)
	a["nodes_truenodeids"] = []int{0, 5}
	_, err = mlCompileNode(t, "TreeEnsemble", 5, a)
	mlWantErr(t, err, "refers to 5, outside [0, 3)")
	a = mlTE5([]float64{1}, 0, tensor.Float32)
	a["nodes_modes"] = mlT([]int64{6, 0})
	_, err = mlCompileNode(t, "TreeEnsemble", 5, a)
	mlWantErr(t, err, "want uint8")
}

// TestMLForestConcurrent predicts with one loaded forest from several
// goroutines (kernels keep no state between calls) and checks every
// answer against a sequential run.
func TestMLForestConcurrent(t *testing.T) {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: mlForest100})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	batches := make([]*tensor.Tensor, 8)
	want := make([][]*tensor.Tensor, len(batches))
	for i := range batches {
		batches[i] = mlForestRows(1 + 9*i)
		if want[i], err = m.Predict(ctx, []*tensor.Tensor{batches[i]}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(batches))
	for g := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 10; r++ {
				i := (g + r) % len(batches)
				got, err := m.Predict(ctx, []*tensor.Tensor{batches[i]})
				if err != nil {
					errs <- err.Error()
					return
				}
				for j := range got {
					if d := compareTensor(got[j], want[i][j]); len(d) > 0 {
						errs <- d[0]
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestMLOperatorsRegistered(t *testing.T) {
	ops := Operators()
	for _, op := range []string{"ArrayFeatureExtractor", "Binarizer", "CastMap", "CategoryMapper", "DictVectorizer",
		"FeatureVectorizer", "Imputer", "LabelEncoder", "LinearClassifier", "LinearRegressor", "Normalizer",
		"OneHotEncoder", "SVMClassifier", "SVMRegressor", "Scaler", "TreeEnsemble", "TreeEnsembleClassifier",
		"TreeEnsembleRegressor", "ZipMap"} {
		if !slices.Contains(ops, "ai.onnx.ml."+op) {
			t.Errorf("ai.onnx.ml.%s is not registered", op)
		}
	}
}

// TestLeavesLEQ checks the interleaved walk against the plain one on
// random trees of uneven depth, for every row count around the lane
// count and the block size, and every starting row.
func TestLeavesLEQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const cols = 5
	for range 40 {
		// A random binary tree: node i's children are new nodes or leaves.
		var nodes []mlLEQNode[float32]
		leaves := int32(0)
		var grow func(depth int) int32
		grow = func(depth int) int32 {
			if depth > 0 && (depth > 20 || rng.IntN(4) == 0) {
				leaves++
				return ^(leaves - 1)
			}
			i := int32(len(nodes))
			nodes = append(nodes, mlLEQNode[float32]{thr: float32(rng.NormFloat64()), feat: int32(rng.IntN(cols))})
			f, tr := grow(depth+1), grow(depth+1)
			nodes[i].kids = [2]int32{f, tr}
			return i
		}
		grow(0)
		for _, rows := range []int{mlLanes, mlLanes + 1, 2*mlLanes - 1, 3 * mlLanes, 64, mlBlock - 1, mlBlock} {
			x := make([]float32, (rows+3)*cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
				if rng.IntN(50) == 0 {
					x[i] = float32(math.NaN())
				}
			}
			for _, r0 := range []int{0, 1, 3} {
				out := make([]int32, rows)
				mlLeavesLEQ(nodes, 0, x, cols, r0, r0+rows, out)
				for i := range rows {
					want := mlWalkLEQ(nodes, 0, x[(r0+i)*cols:(r0+i+1)*cols])
					if out[i] != want {
						t.Fatalf("rows %d from %d: row %d reached leaf %d, want %d", rows, r0, i, out[i], want)
					}
				}
			}
		}
	}
}
