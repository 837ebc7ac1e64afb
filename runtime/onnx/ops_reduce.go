package onnx

import (
	"fmt"
	"math"
	"sort"

	"github.com/kiln-ml/kiln/tensor"
)

// Reductions (Reduce*, ArgMax, ArgMin, TopK) and the normalizations along
// an axis (Softmax, LogSoftmax, Hardmax).

func init() {
	for name, op := range map[string]reduceOp{
		"ReduceSum": redSum, "ReduceMean": redMean, "ReduceMax": redMax, "ReduceMin": redMin,
		"ReduceProd": redProd, "ReduceL1": redL1, "ReduceL2": redL2,
		"ReduceLogSumExp": redLogSumExp, "ReduceSumSquare": redSumSquare, "ReduceLogSum": redLogSum,
	} {
		register("", name, reduceFactory(op))
	}
	register("", "ArgMax", argFactory(true))
	register("", "ArgMin", argFactory(false))
	register("", "Softmax", softmaxFactory(smSoftmax))
	register("", "LogSoftmax", softmaxFactory(smLogSoftmax))
	register("", "Hardmax", softmaxFactory(smHardmax))
	register("", "TopK", topKFactory)
}

type reduceOp uint8

const (
	redSum reduceOp = iota
	redMean
	redMax
	redMin
	redProd
	redL1
	redL2
	redLogSumExp
	redSumSquare
	redLogSum
)

func reduceFactory(op reduceOp) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		since := int64(18) // opset where axes became an input
		if op == redSum {
			since = 13
		}
		if err := needInputs(n, 1, 2); err != nil {
			return nil, err
		}
		if opset < since && len(n.Inputs) > 1 {
			return nil, fmt.Errorf("%s takes axes as an input only from opset %d", n.OpType, since)
		}
		attrAxes, err := n.Ints("axes")
		if err != nil {
			return nil, err
		}
		keep, err := n.Int("keepdims", 1)
		if err != nil {
			return nil, err
		}
		noop, err := n.Int("noop_with_empty_axes", 0)
		if err != nil {
			return nil, err
		}
		name := outName(n, 0)
		return kernel1(func(in []Value) (*tensor.Tensor, error) {
			x, err := inTensor(in, 0)
			if err != nil {
				return nil, err
			}
			axes, _, err := axesInput(n, opset, since, in, 1, attrAxes)
			if err != nil {
				return nil, err
			}
			if len(axes) == 0 && noop != 0 {
				return view(name, x, x.Shape), nil
			}
			return reduceTensor(name, op, x, axes, keep != 0)
		}), nil
	}
}

// reduceLayout maps input elements onto outputs: out shape, and per input
// dim the output stride (0 for reduced dims).
func reduceLayout(shape []int64, axes []int64, keep bool) (outShape []int64, ostr []int, count int, err error) {
	rank := len(shape)
	red := make([]bool, rank)
	if len(axes) == 0 {
		for i := range red {
			red[i] = true
		}
	} else {
		ax, err := normAxes(axes, rank)
		if err != nil {
			return nil, nil, 0, err
		}
		for _, a := range ax {
			red[a] = true
		}
	}
	count = 1
	var kept []int64
	for i, d := range shape {
		if red[i] {
			count *= int(d)
			if keep {
				outShape = append(outShape, 1)
			}
		} else {
			outShape = append(outShape, d)
			kept = append(kept, d)
		}
	}
	if outShape == nil {
		outShape = []int64{}
	}
	ks := strides(kept)
	ostr = make([]int, rank)
	j := 0
	for i := range shape {
		if !red[i] {
			ostr[i] = ks[j]
			j++
		}
	}
	return outShape, ostr, count, nil
}

// eachOut calls fn(inputIndex, outputIndex) for every input element.
func eachOut(shape []int64, ostr []int, fn func(i, o int)) {
	n := sizeOf(shape, 0, len(shape))
	if n == 0 {
		return
	}
	rank := len(shape)
	coord := make([]int, rank)
	o := 0
	for i := 0; i < n; i++ {
		fn(i, o)
		for d := rank - 1; d >= 0; d-- {
			coord[d]++
			o += ostr[d]
			if coord[d] < int(shape[d]) {
				break
			}
			o -= ostr[d] * int(shape[d])
			coord[d] = 0
		}
	}
}

func reduceTensor(name string, op reduceOp, x *tensor.Tensor, axes []int64, keep bool) (*tensor.Tensor, error) {
	outShape, ostr, count, err := reduceLayout(x.Shape, axes, keep)
	if err != nil {
		return nil, err
	}
	nout := sizeOf(outShape, 0, len(outShape))
	if x.DType.IsInteger() && op != redL2 && op != redLogSumExp && op != redLogSum {
		var src []int64
		if d, ok := x.Data.([]int64); ok {
			src = d
		} else {
			f, _ := x.Float64s()
			src = make([]int64, len(f))
			for i, v := range f {
				src[i] = int64(v)
			}
		}
		acc := make([]int64, nout)
		seen := make([]bool, nout)
		eachOut(x.Shape, ostr, func(i, o int) {
			v := src[i]
			switch op {
			case redSum, redMean:
				acc[o] += v
			case redL1:
				if v < 0 {
					v = -v
				}
				acc[o] += v
			case redSumSquare:
				acc[o] += v * v
			case redProd:
				if !seen[o] {
					acc[o] = 1
				}
				acc[o] *= v
			case redMax:
				if !seen[o] || v > acc[o] {
					acc[o] = v
				}
			case redMin:
				if !seen[o] || v < acc[o] {
					acc[o] = v
				}
			}
			seen[o] = true
		})
		if count == 0 {
			if op == redMax || op == redMin {
				return nil, fmt.Errorf("%s over an empty set of integers", reduceName(op))
			}
			if op == redProd {
				for i := range acc {
					acc[i] = 1
				}
			}
		}
		if op == redMean && count > 0 {
			for i := range acc {
				acc[i] /= int64(count)
			}
		}
		t, err := tensor.Cast(newTensor(name, tensor.Int64, outShape, acc), x.DType)
		if err != nil {
			return nil, err
		}
		t.Name = name
		return t, nil
	}
	src, err := x.Float64s()
	if err != nil {
		return nil, err
	}
	acc := make([]float64, nout)
	switch op {
	case redMax:
		for i := range acc {
			acc[i] = math.Inf(-1)
		}
	case redMin:
		for i := range acc {
			acc[i] = math.Inf(1)
		}
	case redProd:
		for i := range acc {
			acc[i] = 1
		}
	case redLogSumExp:
		// Stabilised: max first, then the sum of exp(x - max).
		mx := make([]float64, nout)
		for i := range mx {
			mx[i] = math.Inf(-1)
		}
		eachOut(x.Shape, ostr, func(i, o int) {
			if v := src[i]; v > mx[o] {
				mx[o] = v
			}
		})
		eachOut(x.Shape, ostr, func(i, o int) {
			m := mx[o]
			if math.IsInf(m, 0) {
				m = 0
			}
			acc[o] += math.Exp(src[i] - m)
		})
		for o := range acc {
			m := mx[o]
			if math.IsInf(m, 0) {
				m = 0
			}
			acc[o] = m + math.Log(acc[o])
		}
	}
	if op != redLogSumExp {
		eachOut(x.Shape, ostr, func(i, o int) {
			v := src[i]
			switch op {
			case redSum, redMean, redLogSum:
				acc[o] += v
			case redL1:
				acc[o] += math.Abs(v)
			case redL2, redSumSquare:
				acc[o] += v * v
			case redProd:
				acc[o] *= v
			case redMax:
				if v > acc[o] || v != v {
					acc[o] = v
				}
			case redMin:
				if v < acc[o] || v != v {
					acc[o] = v
				}
			}
		})
	}
	switch op {
	case redMean:
		for i := range acc {
			acc[i] /= float64(count)
		}
	case redL2:
		for i := range acc {
			acc[i] = math.Sqrt(acc[i])
		}
	case redLogSum:
		for i := range acc {
			acc[i] = math.Log(acc[i])
		}
	}
	t, err := tensor.Cast(newTensor(name, tensor.Float64, outShape, acc), x.DType)
	if err != nil {
		return nil, err
	}
	t.Name = name
	return t, nil
}

func reduceName(op reduceOp) string {
	return [...]string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum"}[op]
}

func argFactory(isMax bool) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		axis, err := n.Int("axis", 0)
		if err != nil {
			return nil, err
		}
		keep, err := n.Int("keepdims", 1)
		if err != nil {
			return nil, err
		}
		last, err := n.Int("select_last_index", 0)
		if err != nil {
			return nil, err
		}
		name := outName(n, 0)
		return kernel1(func(in []Value) (*tensor.Tensor, error) {
			x, err := inTensor(in, 0)
			if err != nil {
				return nil, err
			}
			a, err := normAxis(axis, len(x.Shape))
			if err != nil {
				return nil, err
			}
			outer := sizeOf(x.Shape, 0, a)
			dim := int(x.Shape[a])
			inner := sizeOf(x.Shape, a+1, len(x.Shape))
			if dim == 0 {
				return nil, fmt.Errorf("%s over an empty axis", n.OpType)
			}
			var buf [8]int64
			shape := buf[:0]
			for i, d := range x.Shape {
				if i != a {
					shape = append(shape, d)
				} else if keep != 0 {
					shape = append(shape, 1)
				}
			}
			out := make([]int64, outer*inner)
			switch d := x.Data.(type) {
			case []float32:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []float64:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []int64:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []int32:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []int16:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []int8:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []uint64:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []uint32:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			case []uint8:
				argReduce(d, out, outer, dim, inner, isMax, last != 0)
			default:
				if x.DType != tensor.Float16 {
					return nil, fmt.Errorf("%s of %v tensors", n.OpType, x.DType)
				}
				f, _ := x.Float64s()
				argReduce(f, out, outer, dim, inner, isMax, last != 0)
			}
			return newTensor(name, tensor.Int64, shape, out), nil
		}), nil
	}
}

func argReduce[T numeric](x []T, out []int64, outer, dim, inner int, isMax, last bool) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*dim*inner + i
			best, bi := x[base], 0
			for j := 1; j < dim; j++ {
				v := x[base+j*inner]
				var better bool
				if isMax {
					better = v > best || (last && v == best)
				} else {
					better = v < best || (last && v == best)
				}
				if better {
					best, bi = v, j
				}
			}
			out[o*inner+i] = int64(bi)
		}
	}
}

type smMode uint8

const (
	smSoftmax smMode = iota
	smLogSoftmax
	smHardmax
)

func softmaxFactory(mode smMode) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		def := int64(1)
		if opset >= 13 {
			def = -1
		}
		axis, err := n.Int("axis", def)
		if err != nil {
			return nil, err
		}
		name := outName(n, 0)
		return kernel1(func(in []Value) (*tensor.Tensor, error) {
			x, err := inTensor(in, 0)
			if err != nil {
				return nil, err
			}
			r := len(x.Shape)
			var outer, dim, inner int
			if opset < 13 {
				// The input is coerced to 2-D at axis; rows are normalized.
				a := axis
				if a < 0 {
					a += int64(r)
				}
				if a < 0 || a > int64(r) {
					return nil, fmt.Errorf("axis %d is out of range for rank %d", axis, r)
				}
				outer, dim, inner = sizeOf(x.Shape, 0, int(a)), sizeOf(x.Shape, int(a), r), 1
			} else {
				a, err := normAxis(axis, r)
				if err != nil {
					return nil, err
				}
				outer, dim, inner = sizeOf(x.Shape, 0, a), int(x.Shape[a]), sizeOf(x.Shape, a+1, r)
			}
			switch d := x.Data.(type) {
			case []float32:
				out := make([]float32, len(d))
				softmax(d, out, outer, dim, inner, mode)
				return newTensor(name, x.DType, x.Shape, out), nil
			case []float64:
				out := make([]float64, len(d))
				softmax(d, out, outer, dim, inner, mode)
				return newTensor(name, x.DType, x.Shape, out), nil
			}
			return nil, fmt.Errorf("%s of %v tensors", n.OpType, x.DType)
		}), nil
	}
}

func softmax[T floating](x, out []T, outer, dim, inner int, mode smMode) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*dim*inner + i
			if mode == smHardmax {
				// As onnxruntime: the first maximum (std::max_element, so a
				// leading NaN is the maximum and no element matches it).
				var mx T
				if dim > 0 {
					mx = x[base]
				}
				for j := 1; j < dim; j++ {
					if v := x[base+j*inner]; v > mx {
						mx = v
					}
				}
				hit := false
				for j := 0; j < dim; j++ {
					o := &out[base+j*inner]
					*o = 0
					if !hit && x[base+j*inner] == mx {
						*o, hit = 1, true
					}
				}
				continue
			}
			mx := math.Inf(-1)
			for j := 0; j < dim; j++ {
				if v := float64(x[base+j*inner]); v > mx {
					mx = v
				}
			}
			sum := 0.0
			for j := 0; j < dim; j++ {
				sum += math.Exp(float64(x[base+j*inner]) - mx)
			}
			if mode == smLogSoftmax {
				ls := math.Log(sum)
				for j := 0; j < dim; j++ {
					out[base+j*inner] = T(float64(x[base+j*inner]) - mx - ls)
				}
				continue
			}
			for j := 0; j < dim; j++ {
				out[base+j*inner] = T(math.Exp(float64(x[base+j*inner])-mx) / sum)
			}
		}
	}
}

func topKFactory(n *Node, opset int64) (Kernel, error) {
	if opset < 10 {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
	} else if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	attrK, err := n.Int("k", -1)
	if err != nil {
		return nil, err
	}
	axis, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	largest, err := n.Int("largest", 1)
	if err != nil {
		return nil, err
	}
	return runN(len(n.Outputs), func(in, out []Value) error {
		x, err := inTensor(in, 0)
		if err != nil {
			return err
		}
		k := attrK
		if opset >= 10 {
			kt, err := inTensor(in, 1)
			if err != nil {
				return err
			}
			kv, err := int64s(kt)
			if err != nil || len(kv) != 1 {
				return fmt.Errorf("K must be a single int64")
			}
			k = kv[0]
		}
		a, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return err
		}
		dim := int(x.Shape[a])
		if k < 0 || k > int64(dim) {
			return fmt.Errorf("k=%d is out of range for dimension %d", k, dim)
		}
		f, err := x.Float64s()
		if err != nil {
			return err
		}
		outer := sizeOf(x.Shape, 0, a)
		inner := sizeOf(x.Shape, a+1, len(x.Shape))
		kk := int(k)
		shape := append([]int64(nil), x.Shape...)
		shape[a] = k
		idxOut := make([]int64, outer*kk*inner)
		srcIdx := make([]int, outer*kk*inner)
		order := make([]int, dim)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				base := o*dim*inner + i
				for j := range order {
					order[j] = j
				}
				sort.SliceStable(order, func(p, q int) bool {
					u, v := f[base+order[p]*inner], f[base+order[q]*inner]
					if largest != 0 {
						return u > v || (v != v && u == u)
					}
					return u < v || (v != v && u == u)
				})
				for j := 0; j < kk; j++ {
					dst := o*kk*inner + j*inner + i
					idxOut[dst] = int64(order[j])
					srcIdx[dst] = base + order[j]*inner
				}
			}
		}
		out[0] = newTensor(outName(n, 0), x.DType, shape, take(x.Data, srcIdx))
		if len(out) > 1 {
			out[1] = newTensor(outName(n, 1), tensor.Int64, shape, idxOut)
		}
		return nil
	}), nil
}
