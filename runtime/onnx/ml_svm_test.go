package onnx

import (
	"math"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

func TestMLSVMKernels(t *testing.T) {
	x, sv := []float32{1, 2}, []float32{0.5, -1}
	for _, c := range []struct {
		k    mlSVMKernel
		want float64
	}{
		{mlSVMKernel{kind: mlKernelLinear}, -1.5},
		{mlSVMKernel{kind: mlKernelPoly, gamma: 2, coef0: 1, degree: 3}, -8},
		{mlSVMKernel{kind: mlKernelPoly, gamma: 1, coef0: 4, degree: 1.5}, math.Pow(2.5, 1.5)},
		{mlSVMKernel{kind: mlKernelRBF, gamma: 0.5}, math.Exp(-0.5 * 9.25)},
		{mlSVMKernel{kind: mlKernelSigmoid, gamma: 0.5, coef0: 0.25}, math.Tanh(-0.5)},
	} {
		if got := c.k.eval(x, sv); !closeEnough(float64(got), c.want) {
			t.Errorf("kernel %d: %v, want %v", c.k.kind, got, c.want)
		}
	}
}

func TestMLSVMClassifier(t *testing.T) {
	// Three classes, one support vector each, linear kernel: decision
	// (a, b) = coef[b-1][a]·K(x, sv_a) + coef[a][b]·K(x, sv_b) + rho.
	attrs := map[string]any{
		"classlabels_ints":  []int{10, 20, 30},
		"vectors_per_class": []int{1, 1, 1},
		"support_vectors":   []float64{1, 0, 0, 1, -1, -1},
		"coefficients":      []float64{1, 1, -1, -1, 1, -1},
		"rho":               []float64{0, 0.5, -0.25},
		"kernel_type":       "LINEAR",
		"kernel_params":     []float64{0, 0, 0},
	}
	x := mlT([]float32{2, 1}, 1, 2)
	// K = [2, 1, -3]; d01 = 1*2 + 1*1 + 0 = 3 (votes 0); d02 = -1*2 + -1*-3 + 0.5 = 1.5
	// (votes 0); d12 = 1*1 + -1*-3 - 0.25 = 3.75 (votes 1).
	out := mlRun(t, mlMustKernel(t, "SVMClassifier", attrs), x)
	if got := out[0].(*tensor.Tensor).Data.([]int64); got[0] != 10 {
		t.Errorf("label %v, want 10", got)
	}
	mlWantFloats(t, "decisions", out[1], []float64{3, 1.5, 3.75}, 1, 3)

	// With Platt scaling the scores are the pairwise probabilities coupled
	// by Wu-Lin-Weng; the exact solution of its quadratic problem (numpy)
	// is [0.85161, 0.06042, 0.08797], the iteration stops within 0.005/3.
	attrs["prob_a"] = []float64{-1, -1, -1}
	attrs["prob_b"] = []float64{0, 0, 0}
	out = mlRun(t, mlMustKernel(t, "SVMClassifier", attrs), x)
	p := out[1].(*tensor.Tensor).Data.([]float32)
	for i, w := range []float64{0.85161173, 0.06041701, 0.08797126} {
		if math.Abs(float64(p[i])-w) > 1e-3 {
			t.Errorf("probabilities %v, want about [0.85161 0.06042 0.08797]", p)
			break
		}
	}

	// Binary without probabilities: [-s, s] and the label from the votes.
	bin := map[string]any{
		"classlabels_strings": []string{"a", "b"},
		"vectors_per_class":   []int{1, 1},
		"support_vectors":     []float64{1, 0, 0, 1},
		"coefficients":        []float64{0.5, -0.5},
		"rho":                 []float64{0.1},
		"kernel_params":       []float64{0, 0, 0},
	}
	out = mlRun(t, mlMustKernel(t, "SVMClassifier", bin), mlT([]float32{1, 3, 3, 1}, 2, 2))
	if got := out[0].(*tensor.Tensor).Data.([]string); got[0] != "b" || got[1] != "a" {
		t.Errorf("binary labels %v", got)
	}
	// row 0: s = 0.5*1 - 0.5*3 + 0.1 = -0.9 (votes b); row 1: s = 1.1 (votes a)
	mlWantFloats(t, "binary", out[1], []float64{0.9, -0.9, -1.1, 1.1}, 2, 2)

	// liblinear mode: no support vectors.
	lin := map[string]any{
		"classlabels_ints": []int{0, 1, 2},
		"coefficients":     []float64{1, 0, 0, 1, -1, -1},
		"rho":              []float64{0.5},
		"kernel_params":    []float64{0, 0, 0},
	}
	out = mlRun(t, mlMustKernel(t, "SVMClassifier", lin), x)
	if got := out[0].(*tensor.Tensor).Data.([]int64); got[0] != 0 {
		t.Errorf("linear label %v", got)
	}
	mlWantFloats(t, "linear", out[1], []float64{2.5, 1.5, -2.5}, 1, 3)

	for _, c := range []struct {
		change func(map[string]any)
		want   string
	}{
		{func(a map[string]any) { a["vectors_per_class"] = []int{1, 2} }, "2 values for 3 class labels"},
		{func(a map[string]any) { a["support_vectors"] = []float64{1, 2, 3, 4} }, "not a multiple"},
		{func(a map[string]any) { a["rho"] = []float64{1} }, "one per class pair (3)"},
		{func(a map[string]any) { a["prob_b"] = []float64{1} }, "differ in length"},
		{func(a map[string]any) { a["kernel_type"] = "CUBIC" }, `unknown value "CUBIC"`},
		{func(a map[string]any) { a["kernel_params"] = []float64{1} }, "want 3"},
		{func(a map[string]any) { a["coefficients"] = []float64{1} }, "want 6"},
	} {
		a := map[string]any{}
		for k, v := range attrs {
			a[k] = v
		}
		c.change(a)
		_, err := mlCompileNode(t, "SVMClassifier", 1, a)
		mlWantErr(t, err, c.want)
	}
	_, err := mlMustKernel(t, "SVMClassifier", attrs).Run(nil, []Value{mlT([]float32{1, 2, 3}, 1, 3)})
	mlWantErr(t, err, "input has 3 features, model expects 2")
}

func TestMLSVMRegressor(t *testing.T) {
	x := mlT([]float32{1, 2, 0, 0}, 2, 2)
	out := mlRun(t, mlMustKernel(t, "SVMRegressor", map[string]any{
		"kernel_type":     "RBF",
		"kernel_params":   []float64{0.5, 0, 0},
		"n_supports":      2,
		"support_vectors": []float64{1, 2, 0, 1},
		"coefficients":    []float64{2, -1},
		"rho":             []float64{0.25},
	}), x)
	mlWantFloats(t, "rbf", out[0], []float64{2 - math.Exp(-0.5*2) + 0.25, 2*math.Exp(-0.5*5) - math.Exp(-0.5) + 0.25}, 2, 1)
	out = mlRun(t, mlMustKernel(t, "SVMRegressor", map[string]any{
		"coefficients": []float64{1, -1},
		"rho":          []float64{0.5},
		"one_class":    1,
	}), x)
	mlWantFloats(t, "one class", out[0], []float64{-1, 1}, 2, 1)
	_, err := mlCompileNode(t, "SVMRegressor", 1, map[string]any{"coefficients": []float64{1}, "rho": []float64{0}, "n_supports": 2, "support_vectors": []float64{1, 2, 3}})
	mlWantErr(t, err, "not a multiple of n_supports")
}

func TestMLSVMClassifierOneClass(t *testing.T) {
	_, err := mlCompileNode(t, "SVMClassifier", 1, map[string]any{
		"classlabels_ints": []int{1}, "vectors_per_class": []int{1}, "support_vectors": []float64{1, 2},
		"coefficients": []float64{1}, "rho": []float64{0}, "kernel_params": []float64{0, 0, 0},
	})
	mlWantErr(t, err, "needs at least 2")
}
