package onnx

// Shared pieces of the ai.onnx.ml operators: score post-transforms with
// onnxruntime's float32 arithmetic, input conversion, label outputs.
//
// All unexported names of the ml_*.go files start with "ml" so they cannot
// collide with the core operators in the same package.

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

const mlDomain = "ai.onnx.ml"

// mlPost is a post_transform of the ONNX-ML scorers.
type mlPost uint8

const (
	mlPostNone mlPost = iota
	mlPostLogistic
	mlPostSoftmax
	mlPostSoftmaxZero
	mlPostProbit
)

func (p mlPost) String() string {
	return [...]string{"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"}[p]
}

// mlParsePost parses a post_transform string attribute.
func mlParsePost(n *Node) (mlPost, error) {
	s, err := n.String("post_transform", "NONE")
	if err != nil {
		return 0, err
	}
	switch s {
	case "NONE":
		return mlPostNone, nil
	case "LOGISTIC":
		return mlPostLogistic, nil
	case "SOFTMAX":
		return mlPostSoftmax, nil
	case "SOFTMAX_ZERO":
		return mlPostSoftmaxZero, nil
	case "PROBIT":
		return mlPostProbit, nil
	}
	return 0, n.Errorf("attribute post_transform: unknown value %q (want NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO or PROBIT)", s)
}

// mlLogistic is onnxruntime's ComputeLogistic in float32.
func mlLogistic(v float32) float32 {
	a := v
	if a < 0 {
		a = -a
	}
	e := float32(math.Exp(float64(-a)))
	s := 1 / (1 + e)
	if v < 0 {
		return 1 - s
	}
	return s
}

// mlErfInv is the approximation of the inverse error function onnxruntime
// uses (Winitzki, a = 0.147), in float32.
func mlErfInv(x float32) float32 {
	sgn := float32(1)
	if x < 0 {
		sgn = -1
	}
	x = (1 - x) * (1 + x)
	lg := float32(math.Log(float64(x)))
	v := 2/(float32(math.Pi)*0.147) + 0.5*lg
	v2 := 1 / float32(0.147) * lg
	v3 := -v + float32(math.Sqrt(float64(v*v-v2)))
	return sgn * float32(math.Sqrt(float64(v3)))
}

// mlProbit is onnxruntime's ComputeProbit: sqrt(2) * erfinv(2v - 1).
func mlProbit(v float32) float32 {
	return float32(math.Sqrt2) * mlErfInv(2*v-1)
}

// mlSoftmax replaces s by its softmax, computed in float32 like
// onnxruntime's ComputeSoftmax.
func mlSoftmax(s []float32) {
	vmax := float32(-math.MaxFloat32)
	for _, v := range s {
		if v > vmax {
			vmax = v
		}
	}
	var sum float32
	for i, v := range s {
		e := float32(math.Exp(float64(v - vmax)))
		s[i] = e
		sum += e
	}
	for i := range s {
		s[i] /= sum
	}
}

// mlSoftmaxZero is softmax that leaves (near-)zero scores at zero, as
// onnxruntime's ComputeSoftmaxZero.
func mlSoftmaxZero(s []float32) {
	vmax := float32(-math.MaxFloat32)
	for _, v := range s {
		if v > vmax {
			vmax = v
		}
	}
	expNegMax := float32(math.Exp(float64(-vmax)))
	var sum float32
	for i, v := range s {
		if v > 0.0000001 || v < -0.0000001 {
			e := float32(math.Exp(float64(v - vmax)))
			s[i] = e
			sum += e
		} else {
			s[i] = v * expNegMax
		}
	}
	for i := range s {
		s[i] /= sum
	}
}

// mlTransform applies p to a row of two or more scores in place.
func mlTransform(p mlPost, s []float32) {
	switch p {
	case mlPostProbit:
		for i, v := range s {
			s[i] = mlProbit(v)
		}
	case mlPostLogistic:
		for i, v := range s {
			s[i] = mlLogistic(v)
		}
	case mlPostSoftmax:
		mlSoftmax(s)
	case mlPostSoftmaxZero:
		mlSoftmaxZero(s)
	}
}

// mlSecondClass expands the single score s of a binary model into the two
// columns onnxruntime writes (write_scores' add_second_class): after
// LOGISTIC [σ(-s), σ(s)]; otherwise modes 0 and 1 (all weights
// non-negative) give [1-s, s] and modes 2 and 3 (mixed signs) [-s, s].
// Mode -1 writes s alone.
func mlSecondClass(mode int, p mlPost, s float32, out []float32) {
	switch {
	case mode < 0:
		out[0] = s
	case p == mlPostLogistic:
		out[0], out[1] = mlLogistic(-s), mlLogistic(s)
	case mode <= 1:
		out[0], out[1] = 1-s, s
	default:
		out[0], out[1] = -s, s
	}
}

// mlRowsCols returns the rows and the row length of an ONNX-ML scorer's
// input: [N, C], or [C] taken as one row.
func mlRowsCols(n *Node, t *tensor.Tensor) (rows, cols int, err error) {
	switch len(t.Shape) {
	case 1:
		return 1, int(t.Shape[0]), nil
	case 2:
		return int(t.Shape[0]), int(t.Shape[1]), nil
	}
	return 0, 0, n.Errorf("input must have shape [N, C] or [C], got %v", t.Shape)
}

// mlFloat32s returns the elements of a numeric tensor as float32, sharing
// the data of a float32 tensor and converting other types.
func mlFloat32s(n *Node, t *tensor.Tensor) ([]float32, error) {
	switch d := t.Data.(type) {
	case []float32:
		return d, nil
	case []float64:
		return mlConvert[float32](d), nil
	case []int64:
		return mlConvert[float32](d), nil
	case []int32:
		return mlConvert[float32](d), nil
	case []int16:
		return mlConvert[float32](d), nil
	case []int8:
		return mlConvert[float32](d), nil
	case []uint8:
		return mlConvert[float32](d), nil
	case []uint32:
		return mlConvert[float32](d), nil
	case []uint64:
		return mlConvert[float32](d), nil
	case []uint16:
		if t.DType == tensor.Float16 {
			out := make([]float32, len(d))
			for i, h := range d {
				out[i] = tensor.HalfToFloat32(h)
			}
			return out, nil
		}
		return mlConvert[float32](d), nil
	case []bool:
		out := make([]float32, len(d))
		for i, b := range d {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	}
	return nil, n.Errorf("input of type %v is not numeric", t.DType)
}

// mlFloat64s is mlFloat32s for float64.
func mlFloat64s(n *Node, t *tensor.Tensor) ([]float64, error) {
	if d, ok := t.Data.([]float64); ok {
		return d, nil
	}
	if t.DType == tensor.String {
		return nil, n.Errorf("input of type %v is not numeric", t.DType)
	}
	f, err := t.Float64s()
	if err != nil {
		return nil, n.Errorf("%v", err)
	}
	return f, nil
}

type mlNumber interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

type mlFloat interface{ ~float32 | ~float64 }

func mlConvert[D, S mlNumber](s []S) []D {
	out := make([]D, len(s))
	for i, v := range s {
		out[i] = D(v)
	}
	return out
}

// mlTensorFloats reads a TENSOR attribute holding float or double values
// (nil when absent).
func mlTensorFloats(n *Node, name string) ([]float64, error) {
	t, err := n.TensorAttr(name)
	if err != nil || t == nil {
		return nil, err
	}
	switch d := t.Data.(type) {
	case []float64:
		return d, nil
	case []float32:
		return mlConvert[float64](d), nil
	}
	return nil, n.Errorf("attribute %q: tensor of type %v, want float or double", name, t.DType)
}

// mlFloatsOrTensor reads the FLOATS attribute name or, when absent, the
// TENSOR attribute name+"_as_tensor" (the double-precision form of the
// TreeEnsemble operators). It reports which one was present.
func mlFloatsOrTensor(n *Node, name string) (vals []float64, fromTensor bool, err error) {
	f, err := n.Floats(name)
	if err != nil {
		return nil, false, err
	}
	t, err := mlTensorFloats(n, name+"_as_tensor")
	if err != nil {
		return nil, false, err
	}
	if f != nil && t != nil {
		return nil, false, n.Errorf("attributes %q and %q are both set", name, name+"_as_tensor")
	}
	if t != nil {
		return t, true, nil
	}
	return mlConvert[float64](f), false, nil
}

// mlLabels is the class labels of a classifier: int64 or string.
type mlLabels struct {
	ints    []int64
	strings []string
}

func (l mlLabels) len() int {
	if l.strings != nil {
		return len(l.strings)
	}
	return len(l.ints)
}

func (l mlLabels) dtype() tensor.DType {
	if l.strings != nil {
		return tensor.String
	}
	return tensor.Int64
}

// mlReadLabels reads exactly one of the attributes intsName and
// stringsName.
func mlReadLabels(n *Node, intsName, stringsName string) (mlLabels, error) {
	ints, err := n.Ints(intsName)
	if err != nil {
		return mlLabels{}, err
	}
	strs, err := n.Strings(stringsName)
	if err != nil {
		return mlLabels{}, err
	}
	if len(ints) > 0 && len(strs) > 0 {
		return mlLabels{}, n.Errorf("attributes %q and %q are both set; exactly one is allowed", intsName, stringsName)
	}
	if len(strs) > 0 {
		return mlLabels{strings: strs}, nil
	}
	if len(ints) > 0 {
		return mlLabels{ints: ints}, nil
	}
	return mlLabels{}, n.Errorf("one of the attributes %q or %q is required", intsName, stringsName)
}

// mlLabelOutput allocates the label output of rows rows.
type mlLabelOutput struct {
	ints    []int64
	strings []string
}

func (l mlLabels) newOutput(rows int) mlLabelOutput {
	if l.strings != nil {
		return mlLabelOutput{strings: make([]string, rows)}
	}
	return mlLabelOutput{ints: make([]int64, rows)}
}

// setIndex stores label number k of l at row i.
func (o mlLabelOutput) setIndex(l mlLabels, i, k int) {
	if o.strings != nil {
		o.strings[i] = l.strings[k]
	} else {
		o.ints[i] = l.ints[k]
	}
}

// setRaw stores the raw label v (onnxruntime's positive/negative default
// labels 1 and 0, "1" and "0" for string labels) at row i.
func (o mlLabelOutput) setRaw(i int, v int64) {
	if o.strings != nil {
		o.strings[i] = fmt.Sprint(v)
	} else {
		o.ints[i] = v
	}
}

func (o mlLabelOutput) tensor(rows int) *tensor.Tensor {
	if o.strings != nil {
		return &tensor.Tensor{DType: tensor.String, Shape: []int64{int64(rows)}, Data: o.strings}
	}
	return &tensor.Tensor{DType: tensor.Int64, Shape: []int64{int64(rows)}, Data: o.ints}
}

func mlFloatTensor(data []float32, shape ...int64) *tensor.Tensor {
	return &tensor.Tensor{DType: tensor.Float32, Shape: shape, Data: data}
}

// mlCheckLen reports an attribute whose length differs from want.
func mlCheckLen(n *Node, name string, got, want int) error {
	if got != want {
		return n.Errorf("attribute %q has %d values, want %d", name, got, want)
	}
	return nil
}

// mlIsNaN reports whether v is NaN.
func mlIsNaN[T mlFloat](v T) bool { return v != v }

// mlPut stores a kernel's results in out (as many as out holds: an unused
// trailing output may be left off) for RunInto.
func mlPut(out []Value, vals ...Value) error {
	copy(out, vals)
	return nil
}
