package onnx

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

// Helpers for the kernel tests of the ml_*.go files: nodes built from Go
// values, run on tensors.

func mlAttr(name string, v any) *Attribute {
	a := &Attribute{Name: name}
	switch x := v.(type) {
	case float32:
		a.Type, a.F = AttrFloat, x
	case float64:
		a.Type, a.F = AttrFloat, float32(x)
	case int:
		a.Type, a.I = AttrInt, int64(x)
	case int64:
		a.Type, a.I = AttrInt, x
	case string:
		a.Type, a.S = AttrString, x
	case []float32:
		a.Type, a.Floats = AttrFloats, x
	case []float64:
		a.Type, a.Floats = AttrFloats, mlConvert[float32](x)
	case []int64:
		a.Type, a.Ints = AttrInts, x
	case []int:
		a.Type = AttrInts
		for _, v := range x {
			a.Ints = append(a.Ints, int64(v))
		}
	case []string:
		a.Type, a.Strings = AttrStrings, x
	case *tensor.Tensor:
		a.Type, a.T = AttrTensor, x
	default:
		panic("mlAttr: unsupported type")
	}
	return a
}

// mlNode builds a node of the ai.onnx.ml domain from name/value pairs.
func mlNode(op string, attrs map[string]any) *Node {
	n := &Node{Name: "n", OpType: op, Domain: mlDomain, Attrs: map[string]*Attribute{}}
	for k, v := range attrs {
		n.Attrs[k] = mlAttr(k, v)
	}
	return n
}

func mlCompileNode(t testing.TB, op string, opset int64, attrs map[string]any) (Kernel, error) {
	t.Helper()
	f, ok := lookupOp(mlDomain, op)
	if !ok {
		t.Fatalf("%s is not registered", op)
	}
	return f(mlNode(op, attrs), opset)
}

func mlMustKernel(t testing.TB, op string, attrs map[string]any) Kernel {
	t.Helper()
	k, err := mlCompileNode(t, op, 3, attrs)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return k
}

func mlRun(t testing.TB, k Kernel, in ...Value) []Value {
	t.Helper()
	out, err := k.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out
}

func mlT(data any, shape ...int64) *tensor.Tensor {
	t, err := tensor.FromSlice("", data, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

func mlWantFloats(t testing.TB, what string, got Value, want []float64, shape ...int64) {
	t.Helper()
	g, ok := got.(*tensor.Tensor)
	if !ok {
		t.Fatalf("%s: %T, want a tensor", what, got)
	}
	if shape != nil && !mlEqualShape(g.Shape, shape) {
		t.Errorf("%s: shape %v, want %v", what, g.Shape, shape)
	}
	f, err := g.Float64s()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(f) != len(want) {
		t.Fatalf("%s: %d values %v, want %d %v", what, len(f), f, len(want), want)
	}
	for i := range want {
		if !closeEnough(f[i], want[i]) {
			t.Errorf("%s[%d] = %v, want %v (all: %v)", what, i, f[i], want[i], f)
			return
		}
	}
}

func mlEqualShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mlWantErr(t testing.TB, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

func TestMLTransforms(t *testing.T) {
	for _, c := range []struct {
		v, logistic float64
	}{{0, 0.5}, {2, 0.8807970779778823}, {-2, 0.11920292202211755}, {40, 1}, {-40, 4.248354255291589e-18}} {
		if got := mlLogistic(float32(c.v)); !closeEnough(float64(got), c.logistic) {
			t.Errorf("logistic(%v) = %v, want %v", c.v, got, c.logistic)
		}
	}
	// onnxruntime's probit uses an approximate inverse erf: probit(0.5) is
	// 0 and probit(Φ(1)) is close to 1.
	if got := mlProbit(0.5); got != 0 {
		t.Errorf("probit(0.5) = %v", got)
	}
	if got := mlProbit(0.8413447); math.Abs(float64(got)-1) > 2e-3 {
		t.Errorf("probit(0.8413) = %v, want about 1", got)
	}
	if got := mlProbit(0.1586553); math.Abs(float64(got)+1) > 2e-3 {
		t.Errorf("probit(0.1587) = %v, want about -1", got)
	}
	s := []float32{1, 2, 3}
	mlSoftmax(s)
	for i, w := range []float64{0.09003057, 0.24472847, 0.66524096} {
		if !closeEnough(float64(s[i]), w) {
			t.Errorf("softmax = %v", s)
		}
	}
	z := []float32{0, 1, 2}
	mlSoftmaxZero(z)
	e1, e2 := math.Exp(-1), 1.0
	for i, w := range []float64{0, e1 / (e1 + e2), e2 / (e1 + e2)} {
		if !closeEnough(float64(z[i]), w) {
			t.Errorf("softmax_zero = %v", z)
		}
	}
	out := make([]float32, 2)
	for _, c := range []struct {
		mode int
		post mlPost
		want [2]float32
	}{
		{0, mlPostNone, [2]float32{0.75, 0.25}},
		{1, mlPostSoftmax, [2]float32{0.75, 0.25}},
		{2, mlPostNone, [2]float32{-0.25, 0.25}},
		{3, mlPostLogistic, [2]float32{mlLogistic(-0.25), mlLogistic(0.25)}},
		{0, mlPostLogistic, [2]float32{mlLogistic(-0.25), mlLogistic(0.25)}},
		{-1, mlPostNone, [2]float32{0.25, 0}},
	} {
		out[0], out[1] = 0, 0
		mlSecondClass(c.mode, c.post, 0.25, out)
		if out[0] != c.want[0] || out[1] != c.want[1] {
			t.Errorf("second class mode %d %v = %v, want %v", c.mode, c.post, out, c.want)
		}
	}
}

func TestMLParsePost(t *testing.T) {
	for _, s := range []string{"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"} {
		p, err := mlParsePost(mlNode("X", map[string]any{"post_transform": s}))
		if err != nil || p.String() != s {
			t.Errorf("%s: %v %v", s, p, err)
		}
	}
	_, err := mlParsePost(mlNode("X", map[string]any{"post_transform": "SIGMOID"}))
	mlWantErr(t, err, `unknown value "SIGMOID"`)
	_, err = mlParsePost(mlNode("X", map[string]any{"post_transform": 3}))
	mlWantErr(t, err, `attribute "post_transform" has type`)
}

func TestMLFloat32s(t *testing.T) {
	n := mlNode("X", nil)
	for _, x := range []*tensor.Tensor{
		mlT([]float64{1, -2.5}), mlT([]int64{1, -2}), mlT([]int32{1, -2}), mlT([]uint8{1, 2}),
		{DType: tensor.Float16, Shape: []int64{2}, Data: []uint16{tensor.Float32ToHalf(1), tensor.Float32ToHalf(-2.5)}},
	} {
		f, err := mlFloat32s(n, x)
		if err != nil || len(f) != 2 || f[0] != 1 {
			t.Errorf("%v: %v %v", x.DType, f, err)
		}
	}
	_, err := mlFloat32s(n, mlT([]string{"a"}))
	mlWantErr(t, err, "not numeric")
}
