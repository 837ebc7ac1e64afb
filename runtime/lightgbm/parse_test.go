package lightgbm

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
)

// tinyModel has two trees over features a and b. Tree 0: a <= 0.5 (missing
// type None, so NaN counts as 0) leads to b <= -0.25 (missing type NaN,
// NaN goes right) with leaves 20 and 30, else leaf 10. Tree 1 is a single
// leaf, 0.5.
const tinyModel = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=regression
feature_names=a b
feature_infos=[-1:1] [-1:1]
tree_sizes=300 200

Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=1 1
threshold=0.5 -0.25
decision_type=2 8
left_child=1 -2
right_child=-1 -3
leaf_value=10 20 30
leaf_weight=1 1 1
leaf_count=1 1 1
internal_value=0 0
internal_weight=0 0
internal_count=3 2
is_linear=0
shrinkage=1


Tree=1
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.5
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
a=1
b=1

parameters:
[boosting: gbdt]
end of parameters

pandas_categorical:null
`

// catModel: one categorical split on feature 0 whose bitset (words 5 and 1)
// holds categories 0, 2 and 32; then a missing-type Zero split on feature 1
// with threshold -1 sending zeros left.
const catModel = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:2
feature_names=c z
feature_infos=0:2:32 [-3:3]
tree_sizes=1

Tree=0
num_leaves=3
num_cat=1
split_feature=0 1
split_gain=1 1
threshold=0 -1
decision_type=1 6
left_child=-1 -2
right_child=1 -3
leaf_value=1 2 3
cat_boundaries=0 2
cat_threshold=5 1
shrinkage=1

end of trees
`

func mustParse(t *testing.T, text string) *Booster {
	t.Helper()
	b, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func predictOne(b *Booster, x ...float64) float64 {
	for i := range x {
		x[i] = clampZero(x[i])
	}
	out := make([]float64, b.NumOutputs())
	b.PredictRaw(x, out)
	return out[0]
}

func TestNumericalDecisions(t *testing.T) {
	b := mustParse(t, tinyModel)
	if b.NumTrees() != 2 || b.NumFeatures() != 2 || b.Objective() != "regression" {
		t.Fatalf("parsed %d trees, %d features, objective %q", b.NumTrees(), b.NumFeatures(), b.Objective())
	}
	nan := math.NaN()
	tests := []struct {
		a, b, want float64
	}{
		{0, 0, 30.5},
		{0.5, -0.25, 20.5}, // thresholds are inclusive
		{0.50001, -5, 10.5},
		{nan, -1, 20.5}, // missing type None: NaN is 0
		{0, nan, 30.5},  // missing type NaN, default right
		{math.Inf(-1), math.Inf(-1), 20.5},
		{math.Inf(1), 0, 10.5},
	}
	for _, tc := range tests {
		if got := predictOne(b, tc.a, tc.b); got != tc.want {
			t.Errorf("predict(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCategoricalAndZeroDecisions(t *testing.T) {
	b := mustParse(t, catModel)
	nan := math.NaN()
	tests := []struct {
		c, z, want float64
	}{
		{0, 5, 1}, {2, 5, 1}, {32, 5, 1}, // in the bitset
		{-0.5, 5, 1}, {2.9, 5, 1}, // truncated toward zero
		{1, 5, 3}, {33, 5, 3}, {64, 5, 3}, {1e10, 5, 3}, // not in it, or past its end
		{-1, 5, 3}, {nan, 5, 3}, {math.Inf(-1), 5, 3}, // negative and NaN go right
		{1, 0, 2}, {1, nan, 2}, {1, 1e-36, 2}, {1, -1e-36, 2}, // zero band goes left (default left)
		{1, -2, 2}, {1, -1, 2}, {1, -0.5, 3},
	}
	for _, tc := range tests {
		if got := predictOne(b, tc.c, tc.z); got != tc.want {
			t.Errorf("raw(%v, %v) = %v, want %v", tc.c, tc.z, got, tc.want)
		}
	}
	out := []float64{0}
	b.Predict([]float64{0, 0}, out)
	if want := 1 / (1 + math.Exp(-2*1.0)); math.Abs(out[0]-want) > 1e-15 {
		t.Errorf("sigmoid:2 output %v, want %v", out[0], want)
	}
}

func TestObjectives(t *testing.T) {
	tests := []struct {
		objective string
		raw       []float64
		want      []float64
	}{
		{"regression", []float64{-2}, []float64{-2}},
		{"regression sqrt", []float64{-2}, []float64{-4}},
		{"regression_l1 sqrt", []float64{3}, []float64{9}},
		{"huber", []float64{-2}, []float64{-2}},
		{"quantile", []float64{-2}, []float64{-2}},
		{"poisson", []float64{1}, []float64{math.E}},
		{"gamma", []float64{0}, []float64{1}},
		{"tweedie", []float64{2}, []float64{math.Exp(2)}},
		{"binary sigmoid:1", []float64{0}, []float64{0.5}},
		{"binary sigmoid:0.5", []float64{2}, []float64{1 / (1 + math.Exp(-1))}},
		{"cross_entropy", []float64{1}, []float64{1 / (1 + math.Exp(-1))}},
		{"xentlambda", []float64{1}, []float64{math.Log1p(math.E)}},
		{"multiclass num_class:3", []float64{1, 1, 1}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}},
		{"multiclassova num_class:2 sigmoid:1", []float64{0, 0}, []float64{0.5, 0.5}},
		{"lambdarank", []float64{-7}, []float64{-7}},
		{"rank_xendcg", []float64{-7}, []float64{-7}},
		{"custom", []float64{-7}, []float64{-7}},
	}
	for _, tc := range tests {
		o, err := parseObjective(tc.objective)
		if err != nil {
			t.Errorf("%s: %v", tc.objective, err)
			continue
		}
		got := append([]float64(nil), tc.raw...)
		o.transform(got)
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%s(%v) = %v, want %v", tc.objective, tc.raw, got, tc.want)
				break
			}
		}
	}
	for _, bad := range []string{"binary", "binary sigmoid:x", "multiclass", "multiclassova num_class:3", "multiclass num_class:-1"} {
		if _, err := parseObjective(bad); !errors.Is(err, runtime.ErrInvalidModel) {
			t.Errorf("%q: error %v, want ErrInvalidModel", bad, err)
		}
	}
	if _, err := parseObjective("survival_cox"); !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "survival_cox") {
		t.Errorf("unknown objective: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	r := func(old, new string) string {
		if !strings.Contains(tinyModel, old) {
			t.Fatalf("tinyModel lacks %q", old)
		}
		return strings.Replace(tinyModel, old, new, 1)
	}
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty"},
		{"blank", "\n\n", "empty"},
		{"other format", "{\"learner\":{}}", "first line"},
		{"no num_class", r("num_class=1\n", ""), "num_class"},
		{"bad num_class", r("num_class=1", "num_class=x"), "num_class"},
		{"no max_feature_idx", r("max_feature_idx=1\n", ""), "max_feature_idx"},
		{"huge max_feature_idx", r("max_feature_idx=1", "max_feature_idx=99999999999"), "max_feature_idx"},
		{"no feature_names", r("feature_names=a b\n", ""), "feature_names"},
		{"feature_names count", r("feature_names=a b", "feature_names=a"), "feature_names"},
		{"tree index", r("Tree=1", "Tree=7"), "Tree=1"},
		{"no num_leaves", r("num_leaves=3\n", ""), "num_leaves"},
		{"zero leaves", r("num_leaves=3", "num_leaves=0"), "num_leaves"},
		{"huge num_leaves", r("num_leaves=3", "num_leaves=1000000000"), "leaf_value"},
		{"leaf count", r("leaf_value=10 20 30", "leaf_value=10 20"), "leaf_value"},
		{"extra leaf", r("leaf_value=10 20 30", "leaf_value=10 20 30 40"), "leaf_value"},
		{"bad leaf value", r("leaf_value=10 20 30", "leaf_value=10 x 30"), "leaf_value"},
		{"feature range", r("split_feature=0 1", "split_feature=0 2"), "split_feature"},
		{"negative feature", r("split_feature=0 1", "split_feature=-1 1"), "split_feature"},
		{"child range", r("left_child=1 -2", "left_child=2 -2"), "left_child"},
		{"leaf range", r("left_child=1 -2", "left_child=1 -4"), "left_child"},
		{"root as child", r("left_child=1 -2", "left_child=1 0"), "reached twice"},
		{"self loop", r("left_child=1 -2", "left_child=1 1"), "reached twice"},
		{"shared leaf", r("right_child=-1 -3", "right_child=-1 -2"), "reached twice"},
		{"missing type 3", r("decision_type=2 8", "decision_type=2 12"), "missing type"},
		{"no threshold", r("threshold=0.5 -0.25\n", ""), "threshold"},
		{"threshold count", r("threshold=0.5 -0.25", "threshold=0.5"), "threshold"},
		{"not key=value", r("shrinkage=1\n\n\nTree=1", "shrinkage=1\ngarbage\n\nTree=1"), "key=value"},
		{"truncated", tinyModel[:strings.Index(tinyModel, "Tree=1")], "tree_sizes"},
		{"no end", tinyModel[:strings.Index(tinyModel, "end of trees")], "end of trees"},
		{"trailing junk", r("end of trees", "end of tree"), "end of trees"},
		{"multiple of K", r("num_tree_per_iteration=1", "num_tree_per_iteration=2"), "num_tree_per_iteration"},
		{"objective", r("objective=regression", "objective=binary"), "sigmoid"},
		{"multiclass classes", r("objective=regression", "objective=multiclass num_class:3"), "num_class"},
		{"num_cat range", r("num_cat=0\nsplit_feature=0 1", "num_cat=5\nsplit_feature=0 1"), "num_cat"},
		{"cat without bitsets", r("num_cat=0\nsplit_feature=0 1", "num_cat=1\nsplit_feature=0 1"), "cat_boundaries"},
		{"linear leaves", r("is_linear=0\nshrinkage=1\n\n\nTree=1", "is_linear=1\nnum_features=1 0 0\nshrinkage=1\n\n\nTree=1"), "leaf_features"},
		{"linear feature", r("is_linear=0\nshrinkage=1\n\n\nTree=1", "is_linear=1\nnum_features=1 0 0\nleaf_features=9  \nleaf_coeff=1  \n\n\nTree=1"), "leaf_features"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, runtime.ErrInvalidModel) {
				t.Errorf("%v is not ErrInvalidModel", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestCategoricalErrors(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(catModel, old, new, 1) }
	for name, text := range map[string]string{
		"index past num_cat": r("threshold=0 -1", "threshold=1 -1"),
		"fractional index":   r("threshold=0 -1", "threshold=0.5 -1"),
		"descending bounds":  r("cat_boundaries=0 2", "cat_boundaries=2 0"),
		"bounds past words":  r("cat_boundaries=0 2", "cat_boundaries=0 3"),
		"word range":         r("cat_threshold=5 1", "cat_threshold=5 4294967296"),
		"no cat_threshold":   r("cat_threshold=5 1\n", ""),
	} {
		if _, err := Parse([]byte(text)); !errors.Is(err, runtime.ErrInvalidModel) {
			t.Errorf("%s: error %v, want ErrInvalidModel", name, err)
		}
	}
	if _, err := Parse([]byte(r("cat_threshold=5 1", "cat_threshold=5  1  "))); err != nil {
		t.Errorf("catModel: %v", err)
	}
}

// TestTruncated cuts a real model at many points before its end marker;
// every cut must be reported, none may panic.
func TestTruncated(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "models", "categorical", "model.lgb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data); err != nil {
		t.Fatal(err)
	}
	end := strings.Index(string(data), "end of trees")
	for cut := 0; cut < end; cut += 37 {
		if _, err := Parse(data[:cut]); err == nil {
			t.Fatalf("model cut at byte %d of %d parsed", cut, len(data))
		} else if !errors.Is(err, runtime.ErrInvalidModel) {
			t.Fatalf("cut at %d: %v is not ErrInvalidModel", cut, err)
		}
	}
	// After the trees nothing else is needed.
	if _, err := Parse(data[:end+len("end of trees")]); err != nil {
		t.Errorf("model cut after its trees: %v", err)
	}
}

func TestCRLF(t *testing.T) {
	b := mustParse(t, strings.ReplaceAll(tinyModel, "\n", "\r\n"))
	if got := predictOne(b, 0, 0); got != 30.5 {
		t.Errorf("CRLF model predicts %v, want 30.5", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(tinyModel))
	f.Add([]byte(catModel))
	for _, c := range []string{"linear_tree", "multiclass_booster", "random_forest"} {
		data, err := os.ReadFile(filepath.Join("testdata", "models", c, "model.lgb"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalidModel) && !errors.Is(err, runtime.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrInvalidModel nor ErrUnsupported", err)
			}
			return
		}
		out := make([]float64, b.NumOutputs())
		for _, v := range []float64{0, math.NaN(), -1, 1e9} {
			x := make([]float64, b.NumFeatures())
			for i := range x {
				x[i] = v
			}
			b.Predict(x, out)
		}
	})
}
