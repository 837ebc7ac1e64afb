package onnx

import (
	"math"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

func TestMLScalerNormalizerBinarizer(t *testing.T) {
	x := mlT([]float32{1, -2, 3, 0, 0, 0}, 2, 3)
	out := mlRun(t, mlMustKernel(t, "Scaler", map[string]any{"offset": []float64{1, 0, -1}, "scale": []float64{2, 0.5, 1}}), x)
	mlWantFloats(t, "scaler", out[0], []float64{0, -1, 4, -2, 0, 1}, 2, 3)
	out = mlRun(t, mlMustKernel(t, "Scaler", map[string]any{"offset": []float64{1}, "scale": []float64{2}}), mlT([]float64{1, 3}, 2))
	mlWantFloats(t, "scaler broadcast, double", out[0], []float64{0, 4}, 2)
	_, err := mlMustKernel(t, "Scaler", map[string]any{"offset": []float64{1, 2}, "scale": []float64{2, 1}}).Run(nil, []Value{x})
	mlWantErr(t, err, "want 1 or 3")
	_, err = mlCompileNode(t, "Scaler", 1, map[string]any{"offset": []float64{1, 2}, "scale": []float64{2}})
	mlWantErr(t, err, "differ in length")

	for _, c := range []struct {
		norm string
		want []float64
	}{
		{"MAX", []float64{1.0 / 3, -2.0 / 3, 1, 0, 0, 0}},
		{"L1", []float64{1.0 / 6, -2.0 / 6, 3.0 / 6, 0, 0, 0}},
		{"L2", []float64{1 / math.Sqrt(14), -2 / math.Sqrt(14), 3 / math.Sqrt(14), 0, 0, 0}},
	} {
		out := mlRun(t, mlMustKernel(t, "Normalizer", map[string]any{"norm": c.norm}), x)
		mlWantFloats(t, c.norm, out[0], c.want, 2, 3)
	}
	_, err = mlCompileNode(t, "Normalizer", 1, map[string]any{"norm": "L3"})
	mlWantErr(t, err, `unknown value "L3"`)

	out = mlRun(t, mlMustKernel(t, "Binarizer", map[string]any{"threshold": 0.5}), x)
	mlWantFloats(t, "binarizer", out[0], []float64{1, 0, 1, 0, 0, 0}, 2, 3)
	out = mlRun(t, mlMustKernel(t, "Binarizer", map[string]any{"threshold": 0.5}), mlT([]int64{1, 0}, 2))
	if got := out[0].(*tensor.Tensor); got.DType != tensor.Int64 || got.Data.([]int64)[0] != 1 {
		t.Errorf("int binarizer: %v", got)
	}
	_, err = mlMustKernel(t, "Binarizer", nil).Run(nil, []Value{mlT([]float32{1, float32(math.NaN())}, 2)})
	mlWantErr(t, err, "element 1 is NaN")
}

func TestMLImputer(t *testing.T) {
	nan := float32(math.NaN())
	x := mlT([]float32{nan, 1, 2, nan}, 2, 2)
	out := mlRun(t, mlMustKernel(t, "Imputer", map[string]any{"imputed_value_floats": []float64{10, 20}, "replaced_value_float": math.NaN()}), x)
	mlWantFloats(t, "per feature", out[0], []float64{10, 1, 2, 20}, 2, 2)
	out = mlRun(t, mlMustKernel(t, "Imputer", map[string]any{"imputed_value_floats": []float64{7}, "replaced_value_float": 1.0}), x)
	mlWantFloats(t, "value", out[0], []float64{math.NaN(), 7, 2, math.NaN()}, 2, 2)
	out = mlRun(t, mlMustKernel(t, "Imputer", map[string]any{"imputed_value_int64s": []int{5}, "replaced_value_int64": -1}), mlT([]int64{-1, 3}, 1, 2))
	if got := out[0].(*tensor.Tensor).Data.([]int64); got[0] != 5 || got[1] != 3 {
		t.Errorf("int imputer %v", got)
	}
	_, err := mlCompileNode(t, "Imputer", 1, map[string]any{})
	mlWantErr(t, err, "exactly one of")
	_, err = mlMustKernel(t, "Imputer", map[string]any{"imputed_value_int64s": []int{5}}).Run(nil, []Value{x})
	mlWantErr(t, err, "needs the attribute \"imputed_value_floats\"")
}

func TestMLOneHotEncoder(t *testing.T) {
	k := mlMustKernel(t, "OneHotEncoder", map[string]any{"cats_strings": []string{"a", "b", "c"}})
	out := mlRun(t, k, mlT([]string{"b", "z", "a", "c"}, 2, 2))
	mlWantFloats(t, "strings", out[0], []float64{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, 2, 2, 3)
	k = mlMustKernel(t, "OneHotEncoder", map[string]any{"cats_int64s": []int{4, -1}, "zeros": 1})
	out = mlRun(t, k, mlT([]float64{4.7, -1, math.NaN()}, 3))
	mlWantFloats(t, "doubles truncate", out[0], []float64{1, 0, 0, 1, 0, 0}, 3, 2)
	k = mlMustKernel(t, "OneHotEncoder", map[string]any{"cats_int64s": []int{4}, "zeros": 0})
	_, err := k.Run(nil, []Value{mlT([]int64{4, 5}, 2)})
	mlWantErr(t, err, "element 1 is not a known category")
	_, err = k.Run(nil, []Value{mlT([]string{"a"}, 1)})
	mlWantErr(t, err, "string input but the categories are integers")
}

func TestMLArrayFeatureExtractorAndVectorizer(t *testing.T) {
	k := mlMustKernel(t, "ArrayFeatureExtractor", nil)
	out := mlRun(t, k, mlT([]string{"a", "b", "c", "d", "e", "f"}, 2, 3), mlT([]int64{2, 0}, 2))
	if got := out[0].(*tensor.Tensor); !mlEqualShape(got.Shape, []int64{2, 2}) || got.Data.([]string)[1] != "a" || got.Data.([]string)[2] != "f" {
		t.Errorf("picked %v %v", got.Shape, got.Data)
	}
	out = mlRun(t, k, mlT([]float32{1, 2, 3}, 3), mlT([]int64{1}, 1))
	mlWantFloats(t, "1-D", out[0], []float64{2}, 1, 1)
	_, err := k.Run(nil, []Value{mlT([]float32{1, 2, 3}, 3), mlT([]int64{3}, 1)})
	mlWantErr(t, err, "index 0 (3) is out of range [0, 3)")

	v := mlMustKernel(t, "FeatureVectorizer", map[string]any{"inputdimensions": []int{1, 3}})
	out = mlRun(t, v, mlT([]float32{1, 2, 3, 4}, 2, 2), mlT([]int64{5, 6}, 2, 1))
	mlWantFloats(t, "vectorizer", out[0], []float64{1, 5, 0, 0, 3, 6, 0, 0}, 2, 4)
	_, err = v.Run(nil, []Value{mlT([]float32{1, 2}, 2, 1)})
	mlWantErr(t, err, "1 inputs for 2 inputdimensions")
}
