package onnx

import (
	"context"
	"fmt"

	"github.com/kiln-ml/kiln/tensor"
)

// kernel1 is a single-output kernel; it implements both Kernel and the
// executor's allocation-free runner.
type kernel1 func(in []Value) (*tensor.Tensor, error)

func (k kernel1) Run(_ context.Context, in []Value) ([]Value, error) {
	t, err := k(in)
	if err != nil {
		return nil, err
	}
	return []Value{t}, nil
}

func (k kernel1) RunInto(_ context.Context, in, out []Value) error {
	t, err := k(in)
	if err != nil {
		return err
	}
	out[0] = t
	return nil
}

// kernelN is a multi-output kernel writing into out.
type kernelN func(in, out []Value) error

// runN makes a Kernel of a multi-output kernel with nout outputs.
func runN(nout int, k kernelN) Kernel { return multiKernel{nout, k} }

type multiKernel struct {
	nout int
	k    kernelN
}

func (m multiKernel) Run(_ context.Context, in []Value) ([]Value, error) {
	out := make([]Value, m.nout)
	if err := m.k(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (m multiKernel) RunInto(_ context.Context, in, out []Value) error { return m.k(in, out) }

// numeric is the element types arithmetic works on.
type numeric interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// floating is the element types of the float math functions.
type floating interface{ ~float32 | ~float64 }

// tensorBox holds a tensor and room for its shape, so that one allocation
// makes both.
type tensorBox struct {
	t    tensor.Tensor
	dims [6]int64
}

// newTensor wraps data (of type dt) with a copy of shape.
func newTensor(name string, dt tensor.DType, shape []int64, data any) *tensor.Tensor {
	b := &tensorBox{}
	b.t.Name, b.t.DType, b.t.Data = name, dt, data
	if len(shape) <= len(b.dims) {
		b.t.Shape = b.dims[:len(shape):len(shape)]
		copy(b.t.Shape, shape)
	} else {
		b.t.Shape = append([]int64(nil), shape...)
	}
	return &b.t
}

// makeTensor allocates a zeroed tensor of dt and shape.
func makeTensor(name string, dt tensor.DType, shape []int64) (*tensor.Tensor, error) {
	n := tensor.NumElements(shape)
	if n < 0 {
		return nil, fmt.Errorf("invalid output shape %v", shape)
	}
	data, err := tensor.MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	return newTensor(name, dt, shape, data), nil
}

// outName is the name of a node's i-th output ("" when absent).
func outName(n *Node, i int) string {
	if i < len(n.Outputs) {
		return n.Outputs[i]
	}
	return ""
}

// inTensor returns input i as a tensor, or an error naming it.
func inTensor(in []Value, i int) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, fmt.Errorf("input %d is missing", i)
	}
	t, ok := in[i].(*tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("input %d is a %s, not a tensor", i, describeValue(in[i]))
	}
	return t, nil
}

// optTensor returns input i as a tensor, or nil when it is absent.
func optTensor(in []Value, i int) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, nil
	}
	return inTensor(in, i)
}

// staticTensor returns the load-time value of input i, or nil.
func staticTensor(n *Node, i int) *tensor.Tensor {
	if i < len(n.Static) {
		if t, ok := n.Static[i].(*tensor.Tensor); ok {
			return t
		}
	}
	return nil
}

// hasInput reports whether the node has a non-empty input i.
func hasInput(n *Node, i int) bool { return i < len(n.Inputs) && n.Inputs[i] != "" }

// needInputs checks the node's input count at load time.
func needInputs(n *Node, min, max int) error {
	k := len(n.Inputs)
	for k > 0 && n.Inputs[k-1] == "" {
		k--
	}
	if k < min || (max >= 0 && len(n.Inputs) > max) {
		if max == min {
			return fmt.Errorf("takes %d input(s), has %d", min, len(n.Inputs))
		}
		return fmt.Errorf("takes %d to %d inputs, has %d", min, max, len(n.Inputs))
	}
	for i := 0; i < min; i++ {
		if n.Inputs[i] == "" {
			return fmt.Errorf("required input %d is empty", i)
		}
	}
	return nil
}

// int64s reads an integer tensor (int32 or int64) as []int64.
func int64s(t *tensor.Tensor) ([]int64, error) {
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want an int64 or int32 tensor, got %v", t.DType)
}

// scalarFloat reads a one-element numeric tensor as float64.
func scalarFloat(t *tensor.Tensor) (float64, error) {
	if t.Len() != 1 {
		return 0, fmt.Errorf("want a single value, got shape %v", t.Shape)
	}
	f, err := t.Float64s()
	if err != nil {
		return 0, err
	}
	return f[0], nil
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// normAxes maps axes into [0, rank) and rejects duplicates.
func normAxes(axes []int64, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := make([]bool, rank)
	for i, a := range axes {
		ax, err := normAxis(a, rank)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("axis %d given twice", a)
		}
		seen[ax] = true
		out[i] = ax
	}
	return out, nil
}

// sizeOf multiplies shape[lo:hi].
func sizeOf(shape []int64, lo, hi int) int {
	n := 1
	for _, d := range shape[lo:hi] {
		n *= int(d)
	}
	return n
}

func sameShape(a, b []int64) bool {
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

// take gathers src[idx[i]] for every i into a new slice of src's type.
func take(src any, idx []int) any {
	switch s := src.(type) {
	case []float32:
		return takeT(s, idx)
	case []float64:
		return takeT(s, idx)
	case []int64:
		return takeT(s, idx)
	case []int32:
		return takeT(s, idx)
	case []int16:
		return takeT(s, idx)
	case []int8:
		return takeT(s, idx)
	case []uint64:
		return takeT(s, idx)
	case []uint32:
		return takeT(s, idx)
	case []uint16:
		return takeT(s, idx)
	case []uint8:
		return takeT(s, idx)
	case []bool:
		return takeT(s, idx)
	case []string:
		return takeT(s, idx)
	}
	panic(fmt.Sprintf("onnx: take on %T", src))
}

func takeT[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// span is one block copy: n elements from src[span.src:] to dst[span.dst:].
type span struct{ src, dst int }

// copyRuns copies n elements for each span.

func copyRuns(dst, src any, runs []span, n int) {
	switch d := dst.(type) {
	case []float32:
		copyRunsT(d, src.([]float32), runs, n)
	case []float64:
		copyRunsT(d, src.([]float64), runs, n)
	case []int64:
		copyRunsT(d, src.([]int64), runs, n)
	case []int32:
		copyRunsT(d, src.([]int32), runs, n)
	case []int16:
		copyRunsT(d, src.([]int16), runs, n)
	case []int8:
		copyRunsT(d, src.([]int8), runs, n)
	case []uint64:
		copyRunsT(d, src.([]uint64), runs, n)
	case []uint32:
		copyRunsT(d, src.([]uint32), runs, n)
	case []uint16:
		copyRunsT(d, src.([]uint16), runs, n)
	case []uint8:
		copyRunsT(d, src.([]uint8), runs, n)
	case []bool:
		copyRunsT(d, src.([]bool), runs, n)
	case []string:
		copyRunsT(d, src.([]string), runs, n)
	default:
		panic(fmt.Sprintf("onnx: copyRuns on %T", dst))
	}
}

func copyRunsT[T any](dst, src []T, runs []span, n int) {
	for _, r := range runs {
		copy(dst[r.dst:r.dst+n], src[r.src:r.src+n])
	}
}

// copyAt copies all of src into dst starting at element off (same types).
func copyAt(dst any, off int, src any) {
	switch d := dst.(type) {
	case []float32:
		copy(d[off:], src.([]float32))
	case []float64:
		copy(d[off:], src.([]float64))
	case []int64:
		copy(d[off:], src.([]int64))
	case []int32:
		copy(d[off:], src.([]int32))
	case []int16:
		copy(d[off:], src.([]int16))
	case []int8:
		copy(d[off:], src.([]int8))
	case []uint64:
		copy(d[off:], src.([]uint64))
	case []uint32:
		copy(d[off:], src.([]uint32))
	case []uint16:
		copy(d[off:], src.([]uint16))
	case []uint8:
		copy(d[off:], src.([]uint8))
	case []bool:
		copy(d[off:], src.([]bool))
	case []string:
		copy(d[off:], src.([]string))
	default:
		panic(fmt.Sprintf("onnx: copyAt on %T", dst))
	}
}

// subSlice returns src[lo:hi] (sharing memory).
func subSlice(src any, lo, hi int) any {
	switch s := src.(type) {
	case []float32:
		return s[lo:hi:hi]
	case []float64:
		return s[lo:hi:hi]
	case []int64:
		return s[lo:hi:hi]
	case []int32:
		return s[lo:hi:hi]
	case []int16:
		return s[lo:hi:hi]
	case []int8:
		return s[lo:hi:hi]
	case []uint64:
		return s[lo:hi:hi]
	case []uint32:
		return s[lo:hi:hi]
	case []uint16:
		return s[lo:hi:hi]
	case []uint8:
		return s[lo:hi:hi]
	case []bool:
		return s[lo:hi:hi]
	case []string:
		return s[lo:hi:hi]
	}
	panic(fmt.Sprintf("onnx: subSlice on %T", src))
}

// sameTypes checks that every tensor has the dtype of the first.
func sameTypes(ts ...*tensor.Tensor) error {
	for _, t := range ts[1:] {
		if t.DType != ts[0].DType {
			return fmt.Errorf("inputs have different types %v and %v", ts[0].DType, t.DType)
		}
	}
	return nil
}

// strides returns the row-major element strides of shape.
func strides(shape []int64) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= int(shape[i])
	}
	return s
}
