package onnx

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

// Unit tests of the core operators, one table per family. Expected values
// are worked out by hand or with numpy (noted where it matters).

type opCase struct {
	name    string
	op      string
	domain  string
	opset   int64
	attrs   []*Attribute
	in      []*tensor.Tensor // nil entries are absent optional inputs
	static  []bool           // inputs known at load time
	nout    int
	want    []*tensor.Tensor // nil entries are not checked
	loadErr string           // substring of the factory's error
	runErr  string           // substring of the kernel's error
}

func opInt(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, I: v} }
func opFloat(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}
func opStr(name, v string) *Attribute { return &Attribute{Name: name, Type: AttrString, S: v} }
func opInts(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: v}
}
func opStrs(name string, v ...string) *Attribute {
	return &Attribute{Name: name, Type: AttrStrings, Strings: v}
}
func opFloats(name string, v ...float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloats, Floats: v}
}

// tt makes a tensor; with no shape it is one-dimensional.
func opT(data any, shape ...int64) *tensor.Tensor {
	t, err := tensor.FromSlice("", data, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

// scalar makes a zero-dimensional tensor.
func opScalar(data any) *tensor.Tensor {
	t := opT(data)
	t.Shape = []int64{}
	return t
}

func opRun(c opCase) ([]Value, error, error) {
	f, ok := lookupOp(c.domain, c.op)
	if !ok {
		return nil, fmt.Errorf("no operator %s", c.op), nil
	}
	n := &Node{Name: c.name, OpType: c.op, Domain: c.domain, Attrs: map[string]*Attribute{}}
	for _, a := range c.attrs {
		n.Attrs[a.Name] = a
	}
	in := make([]Value, len(c.in))
	for i, t := range c.in {
		if t == nil {
			n.Inputs = append(n.Inputs, "")
			n.Static = append(n.Static, nil)
			continue
		}
		n.Inputs = append(n.Inputs, fmt.Sprintf("in%d", i))
		in[i] = t
		if i < len(c.static) && c.static[i] {
			n.Static = append(n.Static, t)
		} else {
			n.Static = append(n.Static, nil)
		}
	}
	nout := max(c.nout, 1)
	for i := 0; i < nout; i++ {
		n.Outputs = append(n.Outputs, fmt.Sprintf("out%d", i))
	}
	opset := c.opset
	if opset == 0 {
		opset = 17
	}
	k, err := f(n, opset)
	if err != nil {
		return nil, err, nil
	}
	out, err := k.Run(context.Background(), in)
	return out, nil, err
}

func opSame(got Value, want *tensor.Tensor) error {
	g, ok := got.(*tensor.Tensor)
	if !ok {
		return fmt.Errorf("got %T, want a tensor", got)
	}
	if g.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", g.DType, want.DType)
	}
	if fmt.Sprint(g.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("shape %v, want %v", g.Shape, want.Shape)
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if g.DType.IsFloat() {
		gf, _ := g.Float64s()
		wf, _ := want.Float64s()
		for i := range wf {
			if math.IsNaN(wf[i]) && math.IsNaN(gf[i]) {
				continue
			}
			if gf[i] != wf[i] && math.Abs(gf[i]-wf[i]) > 1e-6*math.Abs(wf[i])+1e-7 {
				return fmt.Errorf("data %v, want %v", g.Data, want.Data)
			}
		}
		return nil
	}
	if fmt.Sprintf("%q", g.Data) != fmt.Sprintf("%q", want.Data) {
		return fmt.Errorf("data %q, want %q", g.Data, want.Data)
	}
	return nil
}

func opRunCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, loadErr, runErr := opRun(c)
			if c.loadErr != "" {
				if loadErr == nil || !strings.Contains(loadErr.Error(), c.loadErr) {
					t.Fatalf("load error = %v, want one containing %q", loadErr, c.loadErr)
				}
				return
			}
			if loadErr != nil {
				t.Fatalf("load: %v", loadErr)
			}
			if c.runErr != "" {
				if runErr == nil || !strings.Contains(runErr.Error(), c.runErr) {
					t.Fatalf("run error = %v, want one containing %q", runErr, c.runErr)
				}
				return
			}
			if runErr != nil {
				t.Fatalf("run: %v", runErr)
			}
			if len(out) < len(c.want) {
				t.Fatalf("%d outputs, want %d", len(out), len(c.want))
			}
			for i, w := range c.want {
				if w == nil {
					continue
				}
				if err := opSame(out[i], w); err != nil {
					t.Errorf("output %d: %v", i, err)
				}
			}
		})
	}
}

var opNaN = float32(math.NaN())

func TestOpsArithmetic(t *testing.T) {
	opRunCases(t, []opCase{
		{name: "add row broadcast", op: "Add", in: []*tensor.Tensor{opT([]float32{1, 2, 3, 4, 5, 6}, 2, 3), opT([]float32{10, 20, 30})},
			want: []*tensor.Tensor{opT([]float32{11, 22, 33, 14, 25, 36}, 2, 3)}},
		{name: "sub column broadcast", op: "Sub", in: []*tensor.Tensor{opT([]float32{1, 2, 3, 4, 5, 6}, 2, 3), opT([]float32{1, 2}, 2, 1)},
			want: []*tensor.Tensor{opT([]float32{0, 1, 2, 2, 3, 4}, 2, 3)}},
		{name: "mul outer product", op: "Mul", in: []*tensor.Tensor{opT([]int64{1, 2}, 2, 1), opT([]int64{3, 4, 5}, 1, 3)},
			want: []*tensor.Tensor{opT([]int64{3, 4, 5, 6, 8, 10}, 2, 3)}},
		{name: "div scalar", op: "Div", in: []*tensor.Tensor{opT([]float64{1, -3}), opScalar([]float64{2})},
			want: []*tensor.Tensor{opT([]float64{0.5, -1.5})}},
		{name: "integer div truncates", op: "Div", in: []*tensor.Tensor{opT([]int32{7, -7}), opT([]int32{2, 2})},
			want: []*tensor.Tensor{opT([]int32{3, -3})}},
		{name: "integer div by zero", op: "Div", in: []*tensor.Tensor{opT([]int64{1}), opT([]int64{0})}, runErr: "division by zero"},
		{name: "shapes that do not broadcast", op: "Add", in: []*tensor.Tensor{opT([]float32{1, 2, 3}), opT([]float32{1, 2})}, runErr: "broadcast"},
		{name: "mixed types", op: "Add", in: []*tensor.Tensor{opT([]float32{1}), opT([]int64{1})}, runErr: "different types"},
		{name: "mod like numpy", op: "Mod", in: []*tensor.Tensor{opT([]int64{-7, 7, -7, 7}), opT([]int64{3, -3, -3, 3})},
			want: []*tensor.Tensor{opT([]int64{2, -2, -1, 1})}},
		{name: "fmod like C", op: "Mod", attrs: []*Attribute{opInt("fmod", 1)}, in: []*tensor.Tensor{opT([]float32{-7, 7.5}), opT([]float32{3, 2})},
			want: []*tensor.Tensor{opT([]float32{-1, 1.5})}},
		{name: "pow float exponent", op: "Pow", in: []*tensor.Tensor{opT([]float32{4, 9}), opScalar([]float32{0.5})}, want: []*tensor.Tensor{opT([]float32{2, 3})}},
		{name: "pow int base", op: "Pow", in: []*tensor.Tensor{opT([]int64{2, 3}), opT([]int64{3, 2})}, want: []*tensor.Tensor{opT([]int64{8, 9})}},
		{name: "max propagates NaN", op: "Max", in: []*tensor.Tensor{opT([]float32{1, opNaN, 3}), opT([]float32{2, 0, opNaN})},
			want: []*tensor.Tensor{opT([]float32{2, opNaN, opNaN})}},
		{name: "variadic sum of three", op: "Sum", in: []*tensor.Tensor{opT([]float32{1, 2}), opScalar([]float32{10}), opT([]float32{100, 200}, 2, 1)},
			want: []*tensor.Tensor{opT([]float32{111, 112, 211, 212}, 2, 2)}},
		{name: "mean", op: "Mean", in: []*tensor.Tensor{opT([]float32{1, 2}), opT([]float32{3, 6})}, want: []*tensor.Tensor{opT([]float32{2, 4})}},
		{name: "min of one input", op: "Min", in: []*tensor.Tensor{opT([]int64{5, -1})}, want: []*tensor.Tensor{opT([]int64{5, -1})}},
		{name: "clip inputs", op: "Clip", opset: 13, in: []*tensor.Tensor{opT([]float32{-2, 0.5, 3, opNaN}), opScalar([]float32{-1}), opScalar([]float32{1})},
			want: []*tensor.Tensor{opT([]float32{-1, 0.5, 1, opNaN})}},
		{name: "clip max only on ints", op: "Clip", opset: 13, in: []*tensor.Tensor{opT([]int64{-5, 5}), nil, opScalar([]int64{2})},
			want: []*tensor.Tensor{opT([]int64{-5, 2})}},
		{name: "clip attributes before opset 11", op: "Clip", opset: 6, attrs: []*Attribute{opFloat("min", 0)}, in: []*tensor.Tensor{opT([]float32{-2, 2})},
			want: []*tensor.Tensor{opT([]float32{0, 2})}},
		{name: "where broadcasts all three", op: "Where", in: []*tensor.Tensor{opT([]bool{true, false}, 1, 2), opT([]string{"a", "b"}, 2, 1), opScalar([]string{"-"})},
			want: []*tensor.Tensor{opT([]string{"a", "-", "b", "-"}, 2, 2)}},
	})
}

func TestOpsCompareLogicUnary(t *testing.T) {
	opRunCases(t, []opCase{
		{name: "less", op: "Less", in: []*tensor.Tensor{opT([]float32{1, 2, opNaN}), opScalar([]float32{2})}, want: []*tensor.Tensor{opT([]bool{true, false, false})}},
		{name: "equal strings", op: "Equal", in: []*tensor.Tensor{opT([]string{"milk", "whey"}), opScalar([]string{"milk"})}, want: []*tensor.Tensor{opT([]bool{true, false})}},
		{name: "equal bools", op: "Equal", in: []*tensor.Tensor{opT([]bool{true, false}), opT([]bool{true, true})}, want: []*tensor.Tensor{opT([]bool{true, false})}},
		{name: "greater or equal ints", op: "GreaterOrEqual", in: []*tensor.Tensor{opT([]int64{1, 2, 3}), opT([]int64{2})}, want: []*tensor.Tensor{opT([]bool{false, true, true})}},
		{name: "xor", op: "Xor", in: []*tensor.Tensor{opT([]bool{true, true, false}), opT([]bool{true, false, false})}, want: []*tensor.Tensor{opT([]bool{false, true, false})}},
		{name: "and wants bools", op: "And", in: []*tensor.Tensor{opT([]int64{1}), opT([]int64{1})}, runErr: "BOOL"},
		{name: "not", op: "Not", in: []*tensor.Tensor{opT([]bool{true, false})}, want: []*tensor.Tensor{opT([]bool{false, true})}},
		{name: "round half to even", op: "Round", in: []*tensor.Tensor{opT([]float32{0.5, 1.5, 2.5, -0.5, -1.7})}, want: []*tensor.Tensor{opT([]float32{0, 2, 2, 0, -2})}},
		{name: "sign of ints", op: "Sign", in: []*tensor.Tensor{opT([]int64{-3, 0, 9})}, want: []*tensor.Tensor{opT([]int64{-1, 0, 1})}},
		{name: "abs", op: "Abs", in: []*tensor.Tensor{opT([]int32{-3, 4})}, want: []*tensor.Tensor{opT([]int32{3, 4})}},
		{name: "relu keeps NaN", op: "Relu", in: []*tensor.Tensor{opT([]float32{-1, 2, opNaN})}, want: []*tensor.Tensor{opT([]float32{0, 2, opNaN})}},
		{name: "sigmoid", op: "Sigmoid", in: []*tensor.Tensor{opT([]float64{0, 2, -800})}, want: []*tensor.Tensor{opT([]float64{0.5, 1 / (1 + math.Exp(-2)), 0})}},
		{name: "exp of ints is refused", op: "Exp", in: []*tensor.Tensor{opT([]int64{1})}, runErr: "FP32 or FP64"},
		{name: "leaky relu", op: "LeakyRelu", attrs: []*Attribute{opFloat("alpha", 0.5)}, in: []*tensor.Tensor{opT([]float32{-2, 2})}, want: []*tensor.Tensor{opT([]float32{-1, 2})}},
		{name: "isinf positive only", op: "IsInf", attrs: []*Attribute{opInt("detect_negative", 0)}, in: []*tensor.Tensor{opT([]float32{float32(math.Inf(1)), float32(math.Inf(-1)), 1})},
			want: []*tensor.Tensor{opT([]bool{true, false, false})}},
		{name: "isnan of halves", op: "IsNaN", in: []*tensor.Tensor{{DType: tensor.Float16, Shape: []int64{3}, Data: []uint16{0x7e00, 0x7c00, 0x3c00}}},
			want: []*tensor.Tensor{opT([]bool{true, false, false})}},
		{name: "prelu per channel", op: "PRelu", in: []*tensor.Tensor{opT([]float32{-1, -1, 1, 1}, 2, 2), opT([]float32{0.1, 0.2})},
			want: []*tensor.Tensor{opT([]float32{-0.1, -0.2, 1, 1}, 2, 2)}},
		{name: "gelu approximate must be known", op: "Gelu", opset: 20, attrs: []*Attribute{opStr("approximate", "cubic")}, in: []*tensor.Tensor{opT([]float32{1})}, loadErr: "approximate"},
	})
}

func TestOpsShape(t *testing.T) {
	x := opT([]float32{0, 1, 2, 3, 4, 5}, 2, 3)
	r10 := opT([]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	i64 := func(v ...int64) *tensor.Tensor { return opT(v) }
	opRunCases(t, []opCase{
		{name: "reshape 0 and -1", op: "Reshape", in: []*tensor.Tensor{opT(make([]float32, 24), 2, 3, 4), i64(0, -1)}, want: []*tensor.Tensor{opT(make([]float32, 24), 2, 12)}},
		{name: "reshape allowzero", op: "Reshape", opset: 14, attrs: []*Attribute{opInt("allowzero", 1)}, in: []*tensor.Tensor{opT([]float32{}, 0, 3), i64(3, 0)},
			want: []*tensor.Tensor{opT([]float32{}, 3, 0)}},
		{name: "reshape two -1", op: "Reshape", in: []*tensor.Tensor{x, i64(-1, -1)}, runErr: "more than one -1"},
		{name: "reshape wrong count", op: "Reshape", in: []*tensor.Tensor{x, i64(4, 2)}, runErr: "cannot reshape"},
		{name: "reshape attribute (opset 1)", op: "Reshape", opset: 1, attrs: []*Attribute{opInts("shape", 3, 2)}, in: []*tensor.Tensor{x},
			want: []*tensor.Tensor{opT([]float32{0, 1, 2, 3, 4, 5}, 3, 2)}},
		{name: "flatten axis 0", op: "Flatten", attrs: []*Attribute{opInt("axis", 0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opT([]float32{0, 1, 2, 3, 4, 5}, 1, 6)}},
		{name: "flatten axis -1", op: "Flatten", opset: 13, attrs: []*Attribute{opInt("axis", -1)}, in: []*tensor.Tensor{opT(make([]float32, 24), 2, 3, 4)}, want: []*tensor.Tensor{opT(make([]float32, 24), 6, 4)}},
		{name: "transpose default reverses", op: "Transpose", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opT([]float32{0, 3, 1, 4, 2, 5}, 3, 2)}},
		{name: "transpose 3-D", op: "Transpose", attrs: []*Attribute{opInts("perm", 1, 2, 0)}, in: []*tensor.Tensor{opT([]int64{0, 1, 2, 3, 4, 5, 6, 7}, 2, 2, 2)},
			want: []*tensor.Tensor{opT([]int64{0, 4, 1, 5, 2, 6, 3, 7}, 2, 2, 2)}}, // numpy: arange(8).reshape(2,2,2).transpose(1,2,0)
		{name: "transpose bad perm", op: "Transpose", attrs: []*Attribute{opInts("perm", 0, 0)}, in: []*tensor.Tensor{x}, runErr: "permutation"},
		// numpy: r[2:8:3], r[::-1], r[8:2:-2], r[20:30]
		{name: "slice step", op: "Slice", in: []*tensor.Tensor{r10, i64(2), i64(8), nil, i64(3)}, want: []*tensor.Tensor{i64(2, 5)}},
		{name: "slice reversed", op: "Slice", in: []*tensor.Tensor{r10, i64(-1), i64(math.MinInt64), nil, i64(-1)}, want: []*tensor.Tensor{i64(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)}},
		{name: "slice negative step", op: "Slice", in: []*tensor.Tensor{r10, i64(8), i64(2), i64(0), i64(-2)}, want: []*tensor.Tensor{i64(8, 6, 4)}},
		{name: "slice past the end", op: "Slice", in: []*tensor.Tensor{r10, i64(20), i64(30)}, want: []*tensor.Tensor{opT([]int64{})}},
		{name: "slice second axis", op: "Slice", in: []*tensor.Tensor{x, i64(-2), i64(math.MaxInt64), i64(-1)}, want: []*tensor.Tensor{opT([]float32{1, 2, 4, 5}, 2, 2)}},
		{name: "slice step 0", op: "Slice", in: []*tensor.Tensor{r10, i64(0), i64(3), nil, i64(0)}, runErr: "step 0"},
		{name: "slice attributes (opset 9)", op: "Slice", opset: 9, attrs: []*Attribute{opInts("starts", 1), opInts("ends", 100), opInts("axes", 1)}, in: []*tensor.Tensor{x},
			want: []*tensor.Tensor{opT([]float32{1, 2, 4, 5}, 2, 2)}},
		{name: "gather negative index", op: "Gather", in: []*tensor.Tensor{x, i64(-1, 0)}, want: []*tensor.Tensor{opT([]float32{3, 4, 5, 0, 1, 2}, 2, 3)}},
		{name: "gather axis 1 with 2-D indices", op: "Gather", attrs: []*Attribute{opInt("axis", 1)}, in: []*tensor.Tensor{x, opT([]int32{2, 0, 1, 1}, 2, 2)},
			want: []*tensor.Tensor{opT([]float32{2, 0, 1, 1, 5, 3, 4, 4}, 2, 2, 2)}},
		{name: "gather scalar index", op: "Gather", in: []*tensor.Tensor{x, opScalar([]int64{1})}, want: []*tensor.Tensor{opT([]float32{3, 4, 5}, 3)}},
		{name: "gather out of range", op: "Gather", in: []*tensor.Tensor{x, i64(2)}, runErr: "out of range"},
		{name: "squeeze all", op: "Squeeze", in: []*tensor.Tensor{opT([]float32{1, 2}, 1, 2, 1)}, want: []*tensor.Tensor{opT([]float32{1, 2})}},
		{name: "squeeze axes attribute", op: "Squeeze", opset: 11, attrs: []*Attribute{opInts("axes", -1)}, in: []*tensor.Tensor{opT([]float32{1, 2}, 1, 2, 1)}, want: []*tensor.Tensor{opT([]float32{1, 2}, 1, 2)}},
		{name: "squeeze axes input", op: "Squeeze", opset: 13, in: []*tensor.Tensor{opT([]float32{1, 2}, 1, 2, 1), i64(0)}, want: []*tensor.Tensor{opT([]float32{1, 2}, 2, 1)}},
		{name: "squeeze a wide axis", op: "Squeeze", opset: 13, in: []*tensor.Tensor{opT([]float32{1, 2}, 1, 2, 1), i64(1)}, runErr: "cannot squeeze"},
		{name: "unsqueeze attribute", op: "Unsqueeze", opset: 11, attrs: []*Attribute{opInts("axes", 0, 3)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opT([]float32{0, 1, 2, 3, 4, 5}, 1, 2, 3, 1)}},
		{name: "unsqueeze input", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{x, i64(-1)}, want: []*tensor.Tensor{opT([]float32{0, 1, 2, 3, 4, 5}, 2, 3, 1)}},
		{name: "unsqueeze needs axes", op: "Unsqueeze", opset: 11, in: []*tensor.Tensor{x}, loadErr: "axes"},
		{name: "concat axis -1", op: "Concat", attrs: []*Attribute{opInt("axis", -1)}, in: []*tensor.Tensor{x, opT([]float32{9, 9}, 2, 1)},
			want: []*tensor.Tensor{opT([]float32{0, 1, 2, 9, 3, 4, 5, 9}, 2, 4)}},
		{name: "concat ranks differ", op: "Concat", attrs: []*Attribute{opInt("axis", 0)}, in: []*tensor.Tensor{x, opT([]float32{1})}, runErr: "ranks"},
		{name: "concat needs axis", op: "Concat", in: []*tensor.Tensor{x}, loadErr: "axis"},
		{name: "split sizes input", op: "Split", opset: 13, attrs: []*Attribute{opInt("axis", 1)}, in: []*tensor.Tensor{x, i64(1, 2)}, nout: 2,
			want: []*tensor.Tensor{opT([]float32{0, 3}, 2, 1), opT([]float32{1, 2, 4, 5}, 2, 2)}},
		{name: "split attribute", op: "Split", opset: 11, attrs: []*Attribute{opInts("split", 2, 1), opInt("axis", 1)}, in: []*tensor.Tensor{x}, nout: 2,
			want: []*tensor.Tensor{opT([]float32{0, 1, 3, 4}, 2, 2), opT([]float32{2, 5}, 2, 1)}},
		{name: "split num_outputs uneven", op: "Split", opset: 18, attrs: []*Attribute{opInt("num_outputs", 3)}, in: []*tensor.Tensor{opT([]int64{1, 2, 3, 4, 5, 6, 7})}, nout: 3,
			want: []*tensor.Tensor{i64(1, 2, 3), i64(4, 5, 6), i64(7)}},
		{name: "split unequal without sizes", op: "Split", opset: 13, in: []*tensor.Tensor{opT([]int64{1, 2, 3})}, nout: 2, runErr: "equal parts"},
		{name: "shape start and end", op: "Shape", opset: 15, attrs: []*Attribute{opInt("start", 1), opInt("end", -1)}, in: []*tensor.Tensor{opT(make([]float32, 24), 2, 3, 4)}, want: []*tensor.Tensor{i64(3)}},
		{name: "size", op: "Size", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opScalar([]int64{6})}},
		{name: "expand", op: "Expand", in: []*tensor.Tensor{opT([]string{"a", "b"}, 2, 1), i64(2, 3)}, want: []*tensor.Tensor{opT([]string{"a", "a", "a", "b", "b", "b"}, 2, 3)}},
		{name: "expand keeps larger dims", op: "Expand", in: []*tensor.Tensor{opT([]float32{1, 2, 3}), i64(2, 1)}, want: []*tensor.Tensor{opT([]float32{1, 2, 3, 1, 2, 3}, 2, 3)}},
		{name: "tile", op: "Tile", in: []*tensor.Tensor{opT([]int64{1, 2}, 1, 2), i64(2, 2)}, want: []*tensor.Tensor{opT([]int64{1, 2, 1, 2, 1, 2, 1, 2}, 2, 4)}},
		{name: "range float down", op: "Range", in: []*tensor.Tensor{opScalar([]float32{1}), opScalar([]float32{-1}), opScalar([]float32{-0.5})},
			want: []*tensor.Tensor{opT([]float32{1, 0.5, 0, -0.5})}},
		{name: "range ints empty", op: "Range", in: []*tensor.Tensor{opScalar([]int64{5}), opScalar([]int64{1}), opScalar([]int64{1})}, want: []*tensor.Tensor{opT([]int64{})}},
		{name: "range delta 0", op: "Range", in: []*tensor.Tensor{opScalar([]int64{0}), opScalar([]int64{1}), opScalar([]int64{0})}, runErr: "delta 0"},
		{name: "nonzero", op: "NonZero", in: []*tensor.Tensor{opT([]float32{0, 1, 2, 0}, 2, 2)}, want: []*tensor.Tensor{opT([]int64{0, 1, 1, 0}, 2, 2)}},
		{name: "constant of shape", op: "ConstantOfShape", attrs: []*Attribute{{Name: "value", Type: AttrTensor, T: opT([]int64{7})}}, in: []*tensor.Tensor{i64(2, 1)},
			want: []*tensor.Tensor{opT([]int64{7, 7}, 2, 1)}},
		{name: "constant of shape too big", op: "ConstantOfShape", in: []*tensor.Tensor{i64(1<<20, 1<<20)}, runErr: "too large"},
		{name: "constant value_ints", op: "Constant", attrs: []*Attribute{opInts("value_ints", 3, 4)}, want: []*tensor.Tensor{i64(3, 4)}},
		{name: "constant value_string", op: "Constant", attrs: []*Attribute{opStr("value_string", "x")}, want: []*tensor.Tensor{opScalar([]string{"x"})}},
		{name: "constant two values", op: "Constant", attrs: []*Attribute{opInt("value_int", 1), opFloat("value_float", 1)}, loadErr: "exactly one"},
		{name: "dropout is identity", op: "Dropout", opset: 13, in: []*tensor.Tensor{x}, nout: 2, want: []*tensor.Tensor{x, opT([]bool{true, true, true, true, true, true}, 2, 3)}},
		{name: "dropout training", op: "Dropout", opset: 13, in: []*tensor.Tensor{x, opScalar([]float32{0.5}), opScalar([]bool{true})}, runErr: "training"},
	})
}

func TestOpsReduceAndNormalize(t *testing.T) {
	x := opT([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	e := func(v ...float64) []float32 {
		var s float64
		for _, x := range v {
			s += math.Exp(x)
		}
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(math.Exp(x) / s)
		}
		return out
	}
	sm4 := e(1, 2, 3, 4)
	sm2a, sm2b := e(1, 3), e(2, 4)
	opRunCases(t, []opCase{
		{name: "sum axis 0 keepdims 0", op: "ReduceSum", opset: 11, attrs: []*Attribute{opInts("axes", 0), opInt("keepdims", 0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opT([]float32{5, 7, 9})}},
		{name: "sum axes input", op: "ReduceSum", opset: 13, in: []*tensor.Tensor{x, opT([]int64{-1})}, want: []*tensor.Tensor{opT([]float32{6, 15}, 2, 1)}},
		{name: "sum all", op: "ReduceSum", opset: 13, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opT([]float32{21}, 1, 1)}},
		{name: "sum noop", op: "ReduceSum", opset: 13, attrs: []*Attribute{opInt("noop_with_empty_axes", 1)}, in: []*tensor.Tensor{x, opT([]int64{})}, want: []*tensor.Tensor{x}},
		{name: "mean of ints truncates", op: "ReduceMean", opset: 18, in: []*tensor.Tensor{opT([]int64{1, 2, 4, 4}, 2, 2), opT([]int64{1})}, want: []*tensor.Tensor{opT([]int64{1, 4}, 2, 1)}},
		{name: "max with NaN", op: "ReduceMax", opset: 18, attrs: []*Attribute{opInt("keepdims", 0)}, in: []*tensor.Tensor{opT([]float32{1, opNaN, 3, 4}, 2, 2), opT([]int64{1})},
			want: []*tensor.Tensor{opT([]float32{opNaN, 4})}},
		{name: "min ints", op: "ReduceMin", opset: 18, in: []*tensor.Tensor{opT([]int32{5, -2, 7}), nil}, want: []*tensor.Tensor{opT([]int32{-2})}},
		{name: "prod", op: "ReduceProd", opset: 11, attrs: []*Attribute{opInts("axes", 1)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{opT([]float32{6, 120}, 2, 1)}},
		{name: "l1 l2", op: "ReduceL2", opset: 11, in: []*tensor.Tensor{opT([]float32{3, -4})}, want: []*tensor.Tensor{opT([]float32{5})}},
		{name: "logsumexp is stable", op: "ReduceLogSumExp", opset: 11, in: []*tensor.Tensor{opT([]float64{1000, 1000})}, want: []*tensor.Tensor{opT([]float64{1000 + math.Ln2})}},
		{name: "axes input before opset 13", op: "ReduceSum", opset: 11, in: []*tensor.Tensor{x, opT([]int64{0})}, loadErr: "opset 13"},
		{name: "bad axis", op: "ReduceSum", opset: 13, in: []*tensor.Tensor{x, opT([]int64{2})}, runErr: "out of range"},
		{name: "argmax", op: "ArgMax", attrs: []*Attribute{opInt("axis", 1)}, in: []*tensor.Tensor{opT([]float32{1, 3, 3, 9, 0, 9}, 2, 3)}, want: []*tensor.Tensor{opT([]int64{1, 0}, 2, 1)}},
		{name: "argmax last index", op: "ArgMax", opset: 12, attrs: []*Attribute{opInt("axis", 1), opInt("keepdims", 0), opInt("select_last_index", 1)},
			in: []*tensor.Tensor{opT([]float32{1, 3, 3, 9, 0, 9}, 2, 3)}, want: []*tensor.Tensor{opT([]int64{2, 2})}},
		{name: "argmin axis 0", op: "ArgMin", in: []*tensor.Tensor{opT([]int64{4, 1, 2, 3}, 2, 2)}, want: []*tensor.Tensor{opT([]int64{1, 0}, 1, 2)}},
		{name: "topk ties keep the lower index", op: "TopK", opset: 11, in: []*tensor.Tensor{opT([]float32{1, 5, 5, 2}), opT([]int64{3})}, nout: 2,
			want: []*tensor.Tensor{opT([]float32{5, 5, 2}), opT([]int64{1, 2, 3})}},
		{name: "topk smallest", op: "TopK", opset: 11, attrs: []*Attribute{opInt("largest", 0), opInt("axis", 0)}, in: []*tensor.Tensor{opT([]int64{3, 1, 2, 0}, 2, 2), opT([]int64{1})}, nout: 2,
			want: []*tensor.Tensor{opT([]int64{2, 0}, 1, 2), opT([]int64{1, 1}, 1, 2)}},
		{name: "topk k too large", op: "TopK", opset: 11, in: []*tensor.Tensor{opT([]float32{1}), opT([]int64{2})}, nout: 2, runErr: "out of range"},
		// Before opset 13 Softmax normalizes the flattened tail from the
		// axis on; from 13 on, the axis alone.
		{name: "softmax opset 11 flattens", op: "Softmax", opset: 11, attrs: []*Attribute{opInt("axis", 1)}, in: []*tensor.Tensor{opT([]float32{1, 2, 3, 4}, 1, 2, 2)},
			want: []*tensor.Tensor{opT(sm4, 1, 2, 2)}},
		{name: "softmax opset 13 one axis", op: "Softmax", opset: 13, attrs: []*Attribute{opInt("axis", 1)}, in: []*tensor.Tensor{opT([]float32{1, 2, 3, 4}, 1, 2, 2)},
			want: []*tensor.Tensor{opT([]float32{sm2a[0], sm2b[0], sm2a[1], sm2b[1]}, 1, 2, 2)}},
		{name: "logsoftmax", op: "LogSoftmax", opset: 13, in: []*tensor.Tensor{opT([]float64{0, 0})}, want: []*tensor.Tensor{opT([]float64{-math.Ln2, -math.Ln2})}},
		{name: "hardmax first maximum", op: "Hardmax", opset: 13, in: []*tensor.Tensor{opT([]float32{1, 7, 7})}, want: []*tensor.Tensor{opT([]float32{0, 1, 0})}},
	})
}

func TestOpsCast(t *testing.T) {
	f32 := opT([]float32{0.1, 1, 1e10, 1.5e-7, opNaN, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 123456789, 1.0 / 3})
	// The strings, and the conversions below, are what onnxruntime 1.32
	// returns on x86-64.
	opRunCases(t, []opCase{
		{name: "float to string", op: "Cast", attrs: []*Attribute{opInt("to", onnxString)}, in: []*tensor.Tensor{f32},
			want: []*tensor.Tensor{opT([]string{"0.1", "1", "1e+10", "1.5000001e-07", "NaN", "INF", "-INF", "-0", "1.2345679e+08", "0.33333334"})}},
		{name: "double to string", op: "Cast", attrs: []*Attribute{opInt("to", onnxString)}, in: []*tensor.Tensor{opT([]float64{1.0 / 3, 1e300})},
			want: []*tensor.Tensor{opT([]string{"0.33333333", "1e+300"})}},
		{name: "bool and ints to string", op: "Cast", attrs: []*Attribute{opInt("to", onnxString)}, in: []*tensor.Tensor{opT([]bool{true, false})},
			want: []*tensor.Tensor{opT([]string{"1", "0"})}},
		{name: "uint64 to string", op: "Cast", attrs: []*Attribute{opInt("to", onnxString)}, in: []*tensor.Tensor{opT([]uint64{math.MaxUint64})},
			want: []*tensor.Tensor{opT([]string{"18446744073709551615"})}},
		{name: "string to float", op: "Cast", attrs: []*Attribute{opInt("to", onnxFloat)}, in: []*tensor.Tensor{opT([]string{"1.5", " 2", "1e3", "inf", "-INF", "0x10", "+3", "3abc"})},
			want: []*tensor.Tensor{opT([]float32{1.5, 2, 1000, float32(math.Inf(1)), float32(math.Inf(-1)), 16, 3, 3})}},
		{name: "string to int", op: "Cast", attrs: []*Attribute{opInt("to", onnxInt64)}, in: []*tensor.Tensor{opT([]string{"12", "-3", "+4", "1.5"})},
			want: []*tensor.Tensor{opT([]int64{12, -3, 4, 1})}},
		{name: "string that is no number", op: "Cast", attrs: []*Attribute{opInt("to", onnxFloat)}, in: []*tensor.Tensor{opT([]string{"milk"})}, runErr: "milk"},
		{name: "float to int32 like x86", op: "Cast", attrs: []*Attribute{opInt("to", onnxInt32)}, in: []*tensor.Tensor{opT([]float32{opNaN, 1e20, -1e20, 2.7, -2.7})},
			want: []*tensor.Tensor{opT([]int32{math.MinInt32, math.MinInt32, math.MinInt32, 2, -2})}},
		{name: "float to uint8 wraps", op: "Cast", attrs: []*Attribute{opInt("to", onnxUint8)}, in: []*tensor.Tensor{opT([]float32{300, -1, 2.7})},
			want: []*tensor.Tensor{opT([]uint8{44, 255, 2})}},
		{name: "double to int64", op: "Cast", attrs: []*Attribute{opInt("to", onnxInt64)}, in: []*tensor.Tensor{opT([]float64{1e19, -0.9, 2.5e15})},
			want: []*tensor.Tensor{opT([]int64{math.MinInt64, 0, 2500000000000000})}},
		{name: "float to bool", op: "Cast", attrs: []*Attribute{opInt("to", onnxBool)}, in: []*tensor.Tensor{opT([]float32{opNaN, 0, -0.0, 0.1})},
			want: []*tensor.Tensor{opT([]bool{true, false, false, true})}},
		{name: "int64 to int16 truncates", op: "Cast", attrs: []*Attribute{opInt("to", onnxInt16)}, in: []*tensor.Tensor{opT([]int64{65535, 1 << 40, -1})},
			want: []*tensor.Tensor{opT([]int16{-1, 0, -1})}},
		{name: "float to half", op: "Cast", attrs: []*Attribute{opInt("to", onnxFloat16)}, in: []*tensor.Tensor{opT([]float32{1, 1e5})},
			want: []*tensor.Tensor{{DType: tensor.Float16, Shape: []int64{2}, Data: []uint16{0x3c00, 0x7c00}}}},
		{name: "named type before opset 6", op: "Cast", opset: 1, attrs: []*Attribute{opStr("to", "DOUBLE")}, in: []*tensor.Tensor{opT([]int64{3})},
			want: []*tensor.Tensor{opT([]float64{3})}},
		{name: "unsupported target", op: "Cast", attrs: []*Attribute{opInt("to", onnxBfloat16)}, in: []*tensor.Tensor{opT([]int64{3})}, loadErr: "bfloat16"},
		{name: "castlike", op: "CastLike", opset: 15, in: []*tensor.Tensor{opT([]int64{3}), opT([]float64{0})}, want: []*tensor.Tensor{opT([]float64{3})}},
	})
}

func TestOpsMatMul(t *testing.T) {
	w := opT([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	opRunCases(t, []opCase{
		{name: "vector by matrix", op: "MatMul", in: []*tensor.Tensor{opT([]float32{1, 1}), w}, want: []*tensor.Tensor{opT([]float32{5, 7, 9})}},
		{name: "static weights", op: "MatMul", in: []*tensor.Tensor{opT([]float32{1, 0, 0, 1}, 2, 2), w}, static: []bool{false, true}, want: []*tensor.Tensor{w}},
		{name: "static weights, vector", op: "MatMul", in: []*tensor.Tensor{opT([]float32{1, 1}), w}, static: []bool{false, true}, want: []*tensor.Tensor{opT([]float32{5, 7, 9})}},
		{name: "matrix by vector", op: "MatMul", in: []*tensor.Tensor{w, opT([]float32{1, 0, -1})}, want: []*tensor.Tensor{opT([]float32{-2, -2})}},
		{name: "batch broadcast", op: "MatMul", in: []*tensor.Tensor{opT([]int64{1, 0, 0, 1, 2, 0, 0, 2}, 2, 2, 2), opT([]int64{1, 2, 3, 4}, 1, 2, 2)},
			want: []*tensor.Tensor{opT([]int64{1, 2, 3, 4, 2, 4, 6, 8}, 2, 2, 2)}},
		{name: "inner dimensions differ", op: "MatMul", in: []*tensor.Tensor{opT([]float32{1, 2, 3}), w}, runErr: "inner dimensions"},
		{name: "static weights, inner dimensions differ", op: "MatMul", in: []*tensor.Tensor{opT([]float32{1, 2, 3}, 1, 3), w}, static: []bool{false, true}, runErr: "inner dimensions"},
		{name: "gemm transB alpha beta", op: "Gemm", attrs: []*Attribute{opInt("transB", 1), opFloat("alpha", 2), opFloat("beta", 0.5)},
			in: []*tensor.Tensor{opT([]float32{1, 2}, 1, 2), opT([]float32{1, 0, 0, 1, 1, 1}, 3, 2), opT([]float32{2, 4, 6})}, static: []bool{false, true, true},
			want: []*tensor.Tensor{opT([]float32{3, 6, 9}, 1, 3)}},
		{name: "gemm transA dynamic", op: "Gemm", attrs: []*Attribute{opInt("transA", 1)},
			in:   []*tensor.Tensor{opT([]float32{1, 2}, 2, 1), opT([]float32{1, 0, 0, 1}, 2, 2), opT([]float32{10}, 1, 1)},
			want: []*tensor.Tensor{opT([]float32{11, 12}, 1, 2)}},
		{name: "gemm wants 2-D", op: "Gemm", in: []*tensor.Tensor{opT([]float32{1, 2}), w}, static: []bool{false, true}, runErr: "shape"},
	})
}

// The dense kernel with a fused bias and activation computes exactly what
// MatMul, Add and Relu compute one after the other.
func TestDenseFusionIsExact(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, dims := range [][3]int{{1, 7, 5}, {9, 16, 3}, {4, 3, 13}} {
		m, k, n := dims[0], dims[1], dims[2]
		a, w, b := make([]float32, m*k), make([]float32, k*n), make([]float32, n)
		for _, s := range [][]float32{a, w, b} {
			for i := range s {
				s[i] = float32(rng.NormFloat64())
			}
		}
		at, wt, bt := opT(a, int64(m), int64(k)), opT(w, int64(k), int64(n)), opT(b, 1, int64(n))
		mm, _, err := opRun(opCase{op: "MatMul", in: []*tensor.Tensor{at, wt}, static: []bool{false, true}})
		if err != nil {
			t.Fatal(err)
		}
		sum, _, _ := opRun(opCase{op: "Add", in: []*tensor.Tensor{mm[0].(*tensor.Tensor), bt}})
		want, _, _ := opRun(opCase{op: "Relu", in: []*tensor.Tensor{sum[0].(*tensor.Tensor)}})
		d := &dense{w: transpose32(w, k, n), alpha: 1, bias: b, biasShape: bt.Shape, act: actRelu}
		got, err := d.run([]Value{at})
		if err != nil {
			t.Fatal(err)
		}
		if err := opSame(got, want[0].(*tensor.Tensor)); err != nil {
			t.Errorf("%v: %v", dims, err)
		}
		g, wv := got.Data.([]float32), want[0].(*tensor.Tensor).Data.([]float32)
		for i := range g {
			if g[i] != wv[i] {
				t.Errorf("%v: element %d = %v, unfused %v", dims, i, g[i], wv[i])
				break
			}
		}
	}
}

// Broadcasting against a direct index computation, for random shapes.
func TestBroadcastAgainstIndexing(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	randShape := func(rank int) []int64 {
		s := make([]int64, rank)
		for i := range s {
			s[i] = int64(1 + rng.Intn(3))
		}
		return s
	}
	for iter := 0; iter < 300; iter++ {
		out := randShape(rng.Intn(5))
		shapes := make([][]int64, 2)
		for k := range shapes {
			r := rng.Intn(len(out) + 1)
			s := append([]int64(nil), out[len(out)-r:]...)
			for i := range s {
				if rng.Intn(3) == 0 {
					s[i] = 1
				}
			}
			shapes[k] = s
		}
		a := make([]int64, tensor.NumElements(shapes[0]))
		b := make([]int64, tensor.NumElements(shapes[1]))
		for i := range a {
			a[i] = int64(rng.Intn(1000))
		}
		for i := range b {
			b[i] = int64(rng.Intn(1000)) * 1000
		}
		outs, _, err := opRun(opCase{op: "Add", in: []*tensor.Tensor{opT(a, shapes[0]...), opT(b, shapes[1]...)}})
		if len(shapes[0]) == 0 {
			outs, _, err = opRun(opCase{op: "Add", in: []*tensor.Tensor{opScalar(a), opT(b, shapes[1]...)}})
		}
		if err != nil {
			t.Fatalf("%v + %v: %v", shapes[0], shapes[1], err)
		}
		got := outs[0].(*tensor.Tensor)
		full, _ := broadcastShape(shapes...)
		n := tensor.NumElements(full)
		coord := make([]int64, len(full))
		g := got.Data.([]int64)
		for o := 0; o < n; o++ {
			at := func(s []int64, data []int64) int64 {
				off, st := 0, 1
				for i := len(s) - 1; i >= 0; i-- {
					c := coord[len(full)-len(s)+i]
					if s[i] == 1 {
						c = 0
					}
					off += int(c) * st
					st *= int(s[i])
				}
				return data[off]
			}
			if want := at(shapes[0], a) + at(shapes[1], b); g[o] != want {
				t.Fatalf("%v + %v: element %d = %d, want %d", shapes[0], shapes[1], o, g[o], want)
			}
			for d := len(coord) - 1; d >= 0; d-- {
				coord[d]++
				if coord[d] < full[d] {
					break
				}
				coord[d] = 0
			}
		}
	}
}

func TestOpsText(t *testing.T) {
	ms := "com.microsoft"
	tok := []*Attribute{opInt("mark", 0), opStr("pad_value", "#"), opInt("mincharnum", 1)}
	opRunCases(t, []opCase{
		{name: "normalizer lower with stop words", op: "StringNormalizer", opset: 10,
			attrs: []*Attribute{opStr("case_change_action", "LOWER"), opStrs("stopwords", "THE")}, in: []*tensor.Tensor{opT([]string{"The", "Crème", "MILK"})},
			want: []*tensor.Tensor{opT([]string{"crème", "milk"})}},
		{name: "normalizer keeps the original case", op: "StringNormalizer", opset: 10,
			attrs: []*Attribute{opStrs("stopwords", "milk")}, in: []*tensor.Tensor{opT([]string{"Milk", "Whey"}, 1, 2)},
			want: []*tensor.Tensor{opT([]string{"Whey"}, 1, 1)}},
		{name: "normalizer removes everything", op: "StringNormalizer", opset: 10, attrs: []*Attribute{opStrs("stopwords", "a")}, in: []*tensor.Tensor{opT([]string{"a", "A"})},
			want: []*tensor.Tensor{opT([]string{""})}},
		{name: "normalizer takes one row", op: "StringNormalizer", opset: 10, in: []*tensor.Tensor{opT([]string{"a", "b"}, 2, 1)}, runErr: "[1, C]"},
		{name: "normalizer bad action", op: "StringNormalizer", opset: 10, attrs: []*Attribute{opStr("case_change_action", "TITLE")}, in: []*tensor.Tensor{opT([]string{"a"})}, loadErr: "case_change_action"},
		{name: "tokenizer expression", op: "Tokenizer", domain: ms, attrs: append(tok[:3:3], opStr("tokenexp", `\b\w\w+\b`)),
			in: []*tensor.Tensor{opT([]string{"a bb, ccc", "dd"}, 2, 1)}, want: []*tensor.Tensor{opT([]string{"bb", "ccc", "dd", "#"}, 2, 1, 2)}},
		{name: "tokenizer marks and padding", op: "Tokenizer", domain: ms, attrs: []*Attribute{opInt("mark", 1), opStr("pad_value", "_"), opInt("mincharnum", 2), opStrs("separators", " ")},
			in: []*tensor.Tensor{opT([]string{"ab c de", "fgh"})}, want: []*tensor.Tensor{opT([]string{"\x02", "ab", "de", "\x03", "\x02", "fgh", "\x03", "_"}, 2, 4)}},
		{name: "tokenizer characters", op: "Tokenizer", domain: ms, attrs: append(tok[:3:3], opStrs("separators", "")),
			in: []*tensor.Tensor{opT([]string{"çé", "x"})}, want: []*tensor.Tensor{opT([]string{"ç", "é", "x", "#"}, 2, 2)}},
		{name: "tokenizer nothing found", op: "Tokenizer", domain: ms, attrs: append(tok[:3:3], opStr("tokenexp", "[0-9]+")),
			in: []*tensor.Tensor{opT([]string{"ab", "cd"}, 1, 2)}, want: []*tensor.Tensor{opT([]string{}, 1, 2, 0)}},
		{name: "tokenizer invalid utf-8", op: "Tokenizer", domain: ms, attrs: append(tok[:3:3], opStr("tokenexp", "a")), in: []*tensor.Tensor{opT([]string{"\xff"})}, runErr: "UTF-8"},
		{name: "tokenizer bad regexp", op: "Tokenizer", domain: ms, attrs: append(tok[:3:3], opStr("tokenexp", "(")), in: []*tensor.Tensor{opT([]string{"a"})}, loadErr: "tokenexp"},
		{name: "tokenizer needs mincharnum", op: "Tokenizer", domain: ms, attrs: []*Attribute{opInt("mark", 0), opStr("pad_value", "#"), opStr("tokenexp", "a")}, in: []*tensor.Tensor{opT([]string{"a"})}, loadErr: "mincharnum"},
		{name: "tfidf bigrams with skips", op: "TfIdfVectorizer", opset: 9,
			attrs: []*Attribute{opStr("mode", "TF"), opInt("min_gram_length", 2), opInt("max_gram_length", 2), opInt("max_skip_count", 1),
				opInts("ngram_counts", 0, 2), opInts("ngram_indexes", 0, 1, 2, 3), opInts("pool_int64s", 7, 8, 1, 3, 5, 6)},
			// Bigrams of 1 2 3 1 3: skip 0: (1,2) (2,3) (3,1) (1,3); skip 1: (1,3) (2,1) (3,3).
			// The unigrams 7 and 8 are below min_gram_length.
			in: []*tensor.Tensor{opT([]int64{1, 2, 3, 1, 3})}, want: []*tensor.Tensor{opT([]float32{0, 0, 2, 0})}},
		{name: "tfidf strings, weights by pool position", op: "TfIdfVectorizer", opset: 9,
			attrs: []*Attribute{opStr("mode", "TFIDF"), opInt("min_gram_length", 1), opInt("max_gram_length", 1), opInt("max_skip_count", 0),
				opInts("ngram_counts", 0), opInts("ngram_indexes", 1, 0), opStrs("pool_strings", "milk", "whey"), opFloats("weights", 0.5, 3)},
			in: []*tensor.Tensor{opT([]string{"milk", "milk", "whey", "#"}, 2, 2)}, want: []*tensor.Tensor{opT([]float32{0, 1, 3, 0}, 2, 2)}},
		{name: "tfidf duplicate n-gram", op: "TfIdfVectorizer", opset: 9,
			attrs: []*Attribute{opStr("mode", "TF"), opInt("min_gram_length", 1), opInt("max_gram_length", 1), opInt("max_skip_count", 0),
				opInts("ngram_counts", 0), opInts("ngram_indexes", 0, 1), opInts("pool_int64s", 4, 4)}, in: []*tensor.Tensor{opT([]int64{4})}, loadErr: "duplicate"},
		{name: "tfidf counts out of bounds", op: "TfIdfVectorizer", opset: 9,
			attrs: []*Attribute{opStr("mode", "TF"), opInt("min_gram_length", 1), opInt("max_gram_length", 2), opInt("max_skip_count", 0),
				opInts("ngram_counts", 0, 5), opInts("ngram_indexes", 0), opInts("pool_int64s", 4, 5)}, in: []*tensor.Tensor{opT([]int64{4})}, loadErr: "out of bounds"},
		{name: "tfidf rank 3", op: "TfIdfVectorizer", opset: 9,
			attrs: []*Attribute{opStr("mode", "TF"), opInt("min_gram_length", 1), opInt("max_gram_length", 1), opInt("max_skip_count", 0),
				opInts("ngram_counts", 0), opInts("ngram_indexes", 0), opInts("pool_int64s", 4)},
			in: []*tensor.Tensor{opT([]int64{4}, 1, 1, 1)}, runErr: "[B, C]"},
	})
}
