package onnx

import (
	"math"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

func TestMLLinearClassifier(t *testing.T) {
	x := mlT([]float32{1, 2, -1, 0.5}, 2, 2)
	// scores row 0: [1*1+2*0-0.5, 1*-1+2*1+0.25] = [0.5, 1.25]; row 1: [-1-0.5, 1+0.5+0.25] = [-1.5, 1.75]
	base := map[string]any{
		"coefficients":     []float64{1, 0, -1, 1},
		"intercepts":       []float64{-0.5, 0.25},
		"classlabels_ints": []int{3, 4},
	}
	for _, c := range []struct {
		post string
		want []float64
	}{
		{"NONE", []float64{0.5, 1.25, -1.5, 1.75}},
		{"LOGISTIC", []float64{
			float64(mlLogistic(0.5)), float64(mlLogistic(1.25)), float64(mlLogistic(-1.5)), float64(mlLogistic(1.75))}},
		{"SOFTMAX", []float64{
			1 / (1 + math.Exp(0.75)), 1 / (1 + math.Exp(-0.75)), 1 / (1 + math.Exp(3.25)), 1 / (1 + math.Exp(-3.25))}},
	} {
		a := map[string]any{"post_transform": c.post}
		for k, v := range base {
			a[k] = v
		}
		out := mlRun(t, mlMustKernel(t, "LinearClassifier", a), x)
		if got := out[0].(*tensor.Tensor).Data.([]int64); got[0] != 4 || got[1] != 4 {
			t.Errorf("%s: labels %v", c.post, got)
		}
		mlWantFloats(t, c.post, out[1], c.want, 2, 2)
	}
	// One coefficient row and two labels: a binary model, scores [1-s, s]
	// (after the logistic when there is one); labels from the raw score.
	a := map[string]any{
		"coefficients":        []float64{1, -1},
		"intercepts":          []float64{0.5},
		"classlabels_strings": []string{"neg", "pos"},
		"post_transform":      "LOGISTIC",
	}
	out := mlRun(t, mlMustKernel(t, "LinearClassifier", a), x)
	if got := out[0].(*tensor.Tensor).Data.([]string); got[0] != "neg" || got[1] != "neg" {
		t.Errorf("binary labels %v", got)
	}
	s0, s1 := mlLogistic(-0.5), mlLogistic(-1)
	mlWantFloats(t, "binary", out[1], []float64{float64(1 - s0), float64(s0), float64(1 - s1), float64(s1)}, 2, 2)
	// Integer input and a [C] vector.
	out = mlRun(t, mlMustKernel(t, "LinearClassifier", base), mlT([]int64{1, 2}, 2))
	mlWantFloats(t, "int", out[1], []float64{0.5, 1.25}, 1, 2)

	_, err := mlCompileNode(t, "LinearClassifier", 1, map[string]any{"coefficients": []float64{1, 2}, "intercepts": []float64{0}})
	mlWantErr(t, err, `one of the attributes "classlabels_ints" or "classlabels_strings" is required`)
	_, err = mlCompileNode(t, "LinearClassifier", 1, map[string]any{"coefficients": []float64{1, 2}, "intercepts": []float64{0}, "classlabels_ints": []int{1, 2, 3}})
	mlWantErr(t, err, "exactly 2 class labels")
	_, err = mlCompileNode(t, "LinearClassifier", 1, map[string]any{"coefficients": []float64{1, 2, 3}, "intercepts": []float64{0, 1}, "classlabels_ints": []int{1, 2}})
	mlWantErr(t, err, "not a multiple")
	_, err = mlMustKernel(t, "LinearClassifier", base).Run(nil, []Value{mlT([]float32{1, 2, 3}, 1, 3)})
	mlWantErr(t, err, "input has 3 features, model expects 2")
}

func TestMLLinearRegressor(t *testing.T) {
	x := mlT([]float32{1, 2, -1, 0.5}, 2, 2)
	out := mlRun(t, mlMustKernel(t, "LinearRegressor", map[string]any{
		"coefficients": []float64{1, 1, 2, -1},
		"intercepts":   []float64{0.5, 0},
		"targets":      2,
	}), x)
	mlWantFloats(t, "two targets", out[0], []float64{3.5, 0, 0, -2.5}, 2, 2)
	// With one target onnxruntime ignores LOGISTIC; intercepts of the
	// wrong length are ignored too.
	out = mlRun(t, mlMustKernel(t, "LinearRegressor", map[string]any{
		"coefficients":   []float64{1, 1},
		"intercepts":     []float64{5, 6},
		"post_transform": "LOGISTIC",
	}), x)
	mlWantFloats(t, "one target", out[0], []float64{3, -0.5}, 2, 1)
	_, err := mlCompileNode(t, "LinearRegressor", 1, map[string]any{"coefficients": []float64{1, 2, 3}, "targets": 2})
	mlWantErr(t, err, `"targets" (2) does not divide the 3 coefficients`)
}
