package onnx

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

// Operators that move, select or describe elements: Identity, Reshape,
// Flatten, Squeeze, Unsqueeze, Concat, Split, Transpose, Gather, Shape,
// Size, Slice, Expand, Tile, Range, NonZero, Dropout, Constant and
// ConstantOfShape. They work on every element type, strings included.

func init() {
	register("", "Identity", identityFactory)
	register("", "Reshape", reshapeFactory)
	register("", "Flatten", flattenFactory)
	register("", "Squeeze", squeezeFactory)
	register("", "Unsqueeze", unsqueezeFactory)
	register("", "Concat", concatFactory)
	register("", "Split", splitFactory)
	register("", "Transpose", transposeFactory)
	register("", "Gather", gatherFactory)
	register("", "Shape", shapeFactory)
	register("", "Size", sizeFactory)
	register("", "Slice", sliceFactory)
	register("", "Expand", expandFactory)
	register("", "Tile", tileFactory)
	register("", "Range", rangeFactory)
	register("", "NonZero", nonZeroFactory)
	register("", "Dropout", dropoutFactory)
	register("", "Constant", constantFactory)
	register("", "ConstantOfShape", constantOfShapeFactory)
}

// maxElements bounds the outputs that shape-computing operators (Range,
// ConstantOfShape, Expand, Tile) may create from runtime values, so that
// a hostile model or input cannot make them allocate gigabytes.
const maxElements = 1 << 24

func identityFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	return runN(1, func(in, out []Value) error {
		if in[0] == nil {
			return fmt.Errorf("input 0 is missing")
		}
		out[0] = in[0]
		return nil
	}), nil
}

// view returns t's data under a new shape (no copy).
func view(name string, t *tensor.Tensor, shape []int64) *tensor.Tensor {
	return newTensor(name, t.DType, shape, t.Data)
}

func reshapeFactory(n *Node, opset int64) (Kernel, error) {
	var attrShape []int64
	if opset < 5 {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		var err error
		if attrShape, err = n.Ints("shape"); err != nil {
			return nil, err
		}
	} else if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	allowZero := int64(0)
	if opset >= 14 {
		var err error
		if allowZero, err = n.Int("allowzero", 0); err != nil {
			return nil, err
		}
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		target := attrShape
		if opset >= 5 {
			s, err := inTensor(in, 1)
			if err != nil {
				return nil, err
			}
			if target, err = int64s(s); err != nil {
				return nil, fmt.Errorf("shape: %w", err)
			}
		}
		var buf [8]int64
		shape, err := reshapeTo(buf[:0], x.Shape, x.Len(), target, allowZero != 0)
		if err != nil {
			return nil, err
		}
		return view(name, x, shape), nil
	}), nil
}

// reshapeTo applies Reshape's rules: 0 copies the input dimension (unless
// allowZero), -1 is inferred.
func reshapeTo(dst, in []int64, count int, target []int64, allowZero bool) ([]int64, error) {
	infer := -1
	known := int64(1)
	for i, d := range target {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", target)
			}
			infer = i
			dst = append(dst, -1)
			continue
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v copies dimension %d of %v, which has none", target, i, in)
			}
			d = in[i]
		case d < 0:
			return nil, fmt.Errorf("shape %v has a negative dimension", target)
		}
		dst = append(dst, d)
		if d != 0 && known > math.MaxInt64/d {
			return nil, fmt.Errorf("shape %v is too large", target)
		}
		known *= d
	}
	if infer >= 0 {
		if known == 0 || int64(count)%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, count, target)
		}
		dst[infer] = int64(count) / known
	} else if known != int64(count) {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, count, target)
	}
	return dst, nil
}

func flattenFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	axis, err := n.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		r := int64(len(x.Shape))
		a := axis
		if a < 0 {
			a += r
		}
		if a < 0 || a > r {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", axis, r)
		}
		shape := [2]int64{int64(sizeOf(x.Shape, 0, int(a))), int64(sizeOf(x.Shape, int(a), int(r)))}
		return view(name, x, shape[:]), nil
	}), nil
}

// axesInput reads the axes of Squeeze/Unsqueeze/Reduce*: an attribute
// before opset `since`, an (optional) input from then on.
func axesInput(n *Node, opset, since int64, in []Value, idx int, attr []int64) ([]int64, bool, error) {
	if opset < since {
		return attr, attr != nil, nil
	}
	t, err := optTensor(in, idx)
	if err != nil || t == nil {
		return nil, false, err
	}
	v, err := int64s(t)
	if err != nil {
		return nil, false, fmt.Errorf("axes: %w", err)
	}
	return v, true, nil
}

func squeezeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 2); err != nil {
		return nil, err
	}
	attrAxes, err := n.Ints("axes")
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		axes, given, err := axesInput(n, opset, 13, in, 1, attrAxes)
		if err != nil {
			return nil, err
		}
		drop := make([]bool, len(x.Shape))
		if !given {
			for i, d := range x.Shape {
				drop[i] = d == 1
			}
		} else {
			ax, err := normAxes(axes, len(x.Shape))
			if err != nil {
				return nil, err
			}
			for _, a := range ax {
				if x.Shape[a] != 1 {
					return nil, fmt.Errorf("cannot squeeze axis %d of shape %v", a, x.Shape)
				}
				drop[a] = true
			}
		}
		var buf [8]int64
		shape := buf[:0]
		for i, d := range x.Shape {
			if !drop[i] {
				shape = append(shape, d)
			}
		}
		return view(name, x, shape), nil
	}), nil
}

func unsqueezeFactory(n *Node, opset int64) (Kernel, error) {
	if opset < 13 {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
	} else if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	attrAxes, err := n.Ints("axes")
	if err != nil {
		return nil, err
	}
	if opset < 13 && attrAxes == nil {
		return nil, fmt.Errorf("attribute axes is required")
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		axes, _, err := axesInput(n, opset, 13, in, 1, attrAxes)
		if err != nil {
			return nil, err
		}
		rank := len(x.Shape) + len(axes)
		ax, err := normAxes(axes, rank)
		if err != nil {
			return nil, err
		}
		ones := make([]bool, rank)
		for _, a := range ax {
			ones[a] = true
		}
		var buf [8]int64
		shape := buf[:0]
		j := 0
		for i := 0; i < rank; i++ {
			if ones[i] {
				shape = append(shape, 1)
			} else {
				shape = append(shape, x.Shape[j])
				j++
			}
		}
		return view(name, x, shape), nil
	}), nil
}

func concatFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, -1); err != nil {
		return nil, err
	}
	def := int64(1)
	if opset >= 4 {
		if n.Attr("axis") == nil {
			return nil, fmt.Errorf("attribute axis is required")
		}
		def = 0
	}
	axis, err := n.Int("axis", def)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		ts := make([]*tensor.Tensor, 0, len(in))
		for i := range in {
			t, err := inTensor(in, i)
			if err != nil {
				return nil, err
			}
			ts = append(ts, t)
		}
		return concatTensors(name, ts, axis)
	}), nil
}

func concatTensors(name string, ts []*tensor.Tensor, axis int64) (*tensor.Tensor, error) {
	first := ts[0]
	rank := len(first.Shape)
	a, err := normAxis(axis, rank)
	if err != nil {
		return nil, err
	}
	shape := append([]int64(nil), first.Shape...)
	shape[a] = 0
	for _, t := range ts {
		if t.DType != first.DType {
			return nil, fmt.Errorf("inputs have different types %v and %v", first.DType, t.DType)
		}
		if len(t.Shape) != rank {
			return nil, fmt.Errorf("inputs have different ranks: %v and %v", first.Shape, t.Shape)
		}
		for i, d := range t.Shape {
			if i != a && d != first.Shape[i] {
				return nil, fmt.Errorf("shapes %v and %v differ outside axis %d", first.Shape, t.Shape, a)
			}
		}
		shape[a] += t.Shape[a]
	}
	out, err := makeTensor(name, first.DType, shape)
	if err != nil {
		return nil, err
	}
	outer := sizeOf(shape, 0, a)
	inner := sizeOf(shape, a+1, rank)
	rowOut := int(shape[a]) * inner
	off := 0
	for _, t := range ts {
		chunk := int(t.Shape[a]) * inner
		if chunk > 0 {
			runs := make([]span, outer)
			for o := range runs {
				runs[o] = span{src: o * chunk, dst: o*rowOut + off}
			}
			copyRuns(out.Data, t.Data, runs, chunk)
		}
		off += chunk
	}
	return out, nil
}

func splitFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 2); err != nil {
		return nil, err
	}
	axis, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	attrSplit, err := n.Ints("split")
	if err != nil {
		return nil, err
	}
	numOutputs := int64(0)
	if opset >= 18 {
		if numOutputs, err = n.Int("num_outputs", 0); err != nil {
			return nil, err
		}
		if numOutputs != 0 && numOutputs != int64(len(n.Outputs)) {
			return nil, fmt.Errorf("num_outputs=%d for %d outputs", numOutputs, len(n.Outputs))
		}
	}
	nout := len(n.Outputs)
	if nout == 0 {
		return nil, fmt.Errorf("Split needs at least one output")
	}
	return runN(nout, func(in, out []Value) error {
		x, err := inTensor(in, 0)
		if err != nil {
			return err
		}
		a, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return err
		}
		dim := x.Shape[a]
		sizes := attrSplit
		if opset >= 13 {
			sizes = nil
			if t, err := optTensor(in, 1); err != nil {
				return err
			} else if t != nil {
				if sizes, err = int64s(t); err != nil {
					return fmt.Errorf("split: %w", err)
				}
			}
		}
		if sizes == nil {
			k := int64(nout)
			sizes = make([]int64, nout)
			if opset >= 18 && numOutputs != 0 {
				// Chunks of ceil(dim/k), the last one smaller.
				c := (dim + k - 1) / k
				rest := dim
				for i := range sizes {
					sizes[i] = min(c, rest)
					rest -= sizes[i]
				}
			} else {
				if dim%k != 0 {
					return fmt.Errorf("cannot split dimension %d of %v into %d equal parts", a, x.Shape, k)
				}
				for i := range sizes {
					sizes[i] = dim / k
				}
			}
		}
		if len(sizes) != nout {
			return fmt.Errorf("%d split sizes for %d outputs", len(sizes), nout)
		}
		total := int64(0)
		for _, s := range sizes {
			if s < 0 {
				return fmt.Errorf("negative split size %d", s)
			}
			total += s
		}
		if total != dim {
			return fmt.Errorf("split sizes %v do not add up to dimension %d of %v", sizes, a, x.Shape)
		}
		outer := sizeOf(x.Shape, 0, a)
		inner := sizeOf(x.Shape, a+1, len(x.Shape))
		start := 0
		for i, s := range sizes {
			shape := append([]int64(nil), x.Shape...)
			shape[a] = s
			t, err := makeTensor(n.Outputs[i], x.DType, shape)
			if err != nil {
				return err
			}
			chunk := int(s) * inner
			if chunk > 0 {
				runs := make([]span, outer)
				for o := range runs {
					runs[o] = span{src: o*int(dim)*inner + start*inner, dst: o * chunk}
				}
				copyRuns(t.Data, x.Data, runs, chunk)
			}
			start += int(s)
			out[i] = t
		}
		return nil
	}), nil
}

func transposeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	perm, err := n.Ints("perm")
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		return transposeTensor(name, x, perm)
	}), nil
}

func transposeTensor(name string, x *tensor.Tensor, perm []int64) (*tensor.Tensor, error) {
	rank := len(x.Shape)
	p := make([]int, rank)
	if perm == nil {
		for i := range p {
			p[i] = rank - 1 - i
		}
	} else {
		if len(perm) != rank {
			return nil, fmt.Errorf("perm %v for rank %d", perm, rank)
		}
		seen := make([]bool, rank)
		for i, v := range perm {
			if v < 0 || int(v) >= rank || seen[v] {
				return nil, fmt.Errorf("perm %v is not a permutation of 0..%d", perm, rank-1)
			}
			seen[v] = true
			p[i] = int(v)
		}
	}
	shape := make([]int64, rank)
	identity := true
	for i, v := range p {
		shape[i] = x.Shape[v]
		if v != i {
			identity = false
		}
	}
	if identity {
		return view(name, x, shape), nil
	}
	st := strides(x.Shape)
	srcStride := make([]int, rank)
	for i, v := range p {
		srcStride[i] = st[v]
	}
	idx := walkIndex(shape, srcStride, 0)
	return newTensor(name, x.DType, shape, take(x.Data, idx)), nil
}

// walkIndex lists, for every element of shape in row-major order, the
// source offset base + sum(coord[d]*stride[d]).
func walkIndex(shape []int64, stride []int, base int) []int {
	n := sizeOf(shape, 0, len(shape))
	idx := make([]int, n)
	if n == 0 {
		return idx
	}
	rank := len(shape)
	if rank == 0 {
		idx[0] = base
		return idx
	}
	coord := make([]int, rank)
	last := rank - 1
	inner := int(shape[last])
	off := base
	for o := 0; o < n; o += inner {
		s := stride[last]
		for i := 0; i < inner; i++ {
			idx[o+i] = off + i*s
		}
		for d := last - 1; d >= 0; d-- {
			coord[d]++
			off += stride[d]
			if coord[d] < int(shape[d]) {
				break
			}
			off -= stride[d] * int(shape[d])
			coord[d] = 0
		}
	}
	return idx
}

func gatherFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	axis, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		it, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		indices, err := int64s(it)
		if err != nil {
			return nil, fmt.Errorf("indices: %w", err)
		}
		a, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		dim := x.Shape[a]
		shape := make([]int64, 0, len(x.Shape)-1+len(it.Shape))
		shape = append(append(append(shape, x.Shape[:a]...), it.Shape...), x.Shape[a+1:]...)
		outer := sizeOf(x.Shape, 0, a)
		inner := sizeOf(x.Shape, a+1, len(x.Shape))
		runs := make([]span, 0, outer*len(indices))
		for o := 0; o < outer; o++ {
			for j, v := range indices {
				if v < -dim || v >= dim {
					return nil, fmt.Errorf("index %d is out of range for dimension %d of %v", v, a, x.Shape)
				}
				if v < 0 {
					v += dim
				}
				runs = append(runs, span{src: (o*int(dim) + int(v)) * inner, dst: (o*len(indices) + j) * inner})
			}
		}
		out, err := makeTensor(name, x.DType, shape)
		if err != nil {
			return nil, err
		}
		if inner > 0 {
			copyRuns(out.Data, x.Data, runs, inner)
		}
		return out, nil
	}), nil
}

func shapeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	start, err := n.Int("start", 0)
	if err != nil {
		return nil, err
	}
	endAttr := n.Attr("end")
	end, err := n.Int("end", 0)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		r := int64(len(x.Shape))
		clamp := func(v int64) int64 {
			if v < 0 {
				v += r
			}
			return max(0, min(v, r))
		}
		lo, hi := clamp(start), r
		if endAttr != nil {
			hi = clamp(end)
		}
		if hi < lo {
			hi = lo
		}
		dims := append([]int64(nil), x.Shape[lo:hi]...)
		return newTensor(name, tensor.Int64, []int64{int64(len(dims))}, dims), nil
	}), nil
}

func sizeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		return newTensor(name, tensor.Int64, nil, []int64{int64(x.Len())}), nil
	}), nil
}

func sliceFactory(n *Node, opset int64) (Kernel, error) {
	var aStarts, aEnds, aAxes []int64
	if opset < 10 {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		var err error
		if aStarts, err = n.Ints("starts"); err != nil {
			return nil, err
		}
		if aEnds, err = n.Ints("ends"); err != nil {
			return nil, err
		}
		if aAxes, err = n.Ints("axes"); err != nil {
			return nil, err
		}
		if aStarts == nil || aEnds == nil {
			return nil, fmt.Errorf("attributes starts and ends are required")
		}
	} else if err := needInputs(n, 3, 5); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		starts, ends, axes := aStarts, aEnds, aAxes
		var steps []int64
		if opset >= 10 {
			vals := make([][]int64, 4)
			for i := range vals {
				t, err := optTensor(in, i+1)
				if err != nil {
					return nil, err
				}
				if t != nil {
					if vals[i], err = int64s(t); err != nil {
						return nil, err
					}
				}
			}
			starts, ends, axes, steps = vals[0], vals[1], vals[2], vals[3]
		}
		return sliceTensor(name, x, starts, ends, axes, steps)
	}), nil
}

func sliceTensor(name string, x *tensor.Tensor, starts, ends, axes, steps []int64) (*tensor.Tensor, error) {
	rank := len(x.Shape)
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, fmt.Errorf("starts, ends, axes and steps differ in length")
	}
	if axes == nil {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	ax, err := normAxes(axes, rank)
	if err != nil {
		return nil, err
	}
	begin := make([]int64, rank)
	step := make([]int64, rank)
	shape := append([]int64(nil), x.Shape...)
	for i := range step {
		step[i] = 1
	}
	for i, a := range ax {
		d := x.Shape[a]
		s, e, st := starts[i], ends[i], int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return nil, fmt.Errorf("slice step 0")
		}
		if s < 0 {
			s += d
		}
		if e < 0 {
			e += d
		}
		if st > 0 {
			s, e = max(0, min(s, d)), max(0, min(e, d))
		} else {
			s, e = max(0, min(s, d-1)), max(-1, min(e, d-1))
		}
		cnt := int64(0)
		if st > 0 && e > s {
			cnt = (e - s + st - 1) / st
		} else if st < 0 && s > e {
			cnt = (s - e + (-st) - 1) / (-st)
		}
		begin[a], step[a], shape[a] = s, st, cnt
	}
	st := strides(x.Shape)
	base := 0
	srcStride := make([]int, rank)
	for d := 0; d < rank; d++ {
		base += int(begin[d]) * st[d]
		srcStride[d] = int(step[d]) * st[d]
	}
	if tensor.NumElements(shape) == 0 {
		return makeTensor(name, x.DType, shape)
	}
	idx := walkIndex(shape, srcStride, base)
	return newTensor(name, x.DType, shape, take(x.Data, idx)), nil
}

func expandFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		s, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		target, err := int64s(s)
		if err != nil {
			return nil, fmt.Errorf("shape: %w", err)
		}
		shape, err := broadcastShape(x.Shape, target)
		if err != nil {
			return nil, err
		}
		return broadcastTo(name, x, shape)
	}), nil
}

// broadcastTo repeats x's elements to fill shape (x broadcasts to it).
func broadcastTo(name string, x *tensor.Tensor, shape []int64) (*tensor.Tensor, error) {
	n := tensor.NumElements(shape)
	if n < 0 || n > maxElements {
		return nil, fmt.Errorf("output shape %v is too large", shape)
	}
	st := make([]int, len(shape))
	xs := strides(x.Shape)
	off := len(shape) - len(x.Shape)
	for i := range x.Shape {
		if x.Shape[i] != 1 {
			st[off+i] = xs[i]
		}
	}
	idx := walkIndex(shape, st, 0)
	return newTensor(name, x.DType, shape, take(x.Data, idx)), nil
}

func tileFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		r, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		reps, err := int64s(r)
		if err != nil {
			return nil, fmt.Errorf("repeats: %w", err)
		}
		if len(reps) != len(x.Shape) {
			return nil, fmt.Errorf("%d repeats for rank %d", len(reps), len(x.Shape))
		}
		shape := make([]int64, len(reps))
		for i, k := range reps {
			if k < 0 {
				return nil, fmt.Errorf("negative repeat %d", k)
			}
			shape[i] = x.Shape[i] * k
		}
		total := tensor.NumElements(shape)
		if total < 0 || total > maxElements {
			return nil, fmt.Errorf("output shape %v is too large", shape)
		}
		// Walk the output; source coordinate = output coordinate mod dim.
		st := strides(x.Shape)
		idx := make([]int, total)
		coord := make([]int64, len(shape))
		for o := range idx {
			src := 0
			for d := range coord {
				src += int(coord[d]%x.Shape[d]) * st[d]
			}
			idx[o] = src
			for d := len(coord) - 1; d >= 0; d-- {
				coord[d]++
				if coord[d] < shape[d] {
					break
				}
				coord[d] = 0
			}
		}
		return newTensor(name, x.DType, shape, take(x.Data, idx)), nil
	}), nil
}

func rangeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 3, 3); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		var v [3]float64
		var ts [3]*tensor.Tensor
		for i := range v {
			t, err := inTensor(in, i)
			if err != nil {
				return nil, err
			}
			if v[i], err = scalarFloat(t); err != nil {
				return nil, err
			}
			ts[i] = t
		}
		if err := sameTypes(ts[:]...); err != nil {
			return nil, err
		}
		start, limit, delta := v[0], v[1], v[2]
		if delta == 0 {
			return nil, fmt.Errorf("Range with delta 0")
		}
		cnt := math.Ceil((limit - start) / delta)
		if cnt < 0 || math.IsNaN(cnt) {
			cnt = 0
		}
		if cnt > maxElements {
			return nil, fmt.Errorf("Range of %g elements", cnt)
		}
		k := int(cnt)
		shape := []int64{int64(k)}
		switch ts[0].DType {
		case tensor.Float32:
			s, d := float32(start), float32(delta)
			out := make([]float32, k)
			for i := range out {
				out[i] = s + float32(i)*d
			}
			return newTensor(name, tensor.Float32, shape, out), nil
		case tensor.Float64:
			out := make([]float64, k)
			for i := range out {
				out[i] = start + float64(i)*delta
			}
			return newTensor(name, tensor.Float64, shape, out), nil
		case tensor.Int64:
			s, d := ts[0].Data.([]int64)[0], ts[2].Data.([]int64)[0]
			out := make([]int64, k)
			for i := range out {
				out[i] = s + int64(i)*d
			}
			return newTensor(name, tensor.Int64, shape, out), nil
		case tensor.Int32:
			s, d := ts[0].Data.([]int32)[0], ts[2].Data.([]int32)[0]
			out := make([]int32, k)
			for i := range out {
				out[i] = s + int32(i)*d
			}
			return newTensor(name, tensor.Int32, shape, out), nil
		case tensor.Int16:
			s, d := ts[0].Data.([]int16)[0], ts[2].Data.([]int16)[0]
			out := make([]int16, k)
			for i := range out {
				out[i] = s + int16(i)*d
			}
			return newTensor(name, tensor.Int16, shape, out), nil
		}
		return nil, fmt.Errorf("Range of %v", ts[0].DType)
	}), nil
}

func nonZeroFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		var nz []bool
		if x.DType == tensor.String {
			s := x.Data.([]string)
			nz = make([]bool, len(s))
			for i, v := range s {
				nz[i] = v != ""
			}
		} else {
			f, err := x.Float64s()
			if err != nil {
				return nil, err
			}
			nz = make([]bool, len(f))
			for i, v := range f {
				nz[i] = v != 0
			}
		}
		shape := x.Shape
		if len(shape) == 0 {
			shape = []int64{1}
		}
		rank := len(shape)
		var pos []int
		for i, b := range nz {
			if b {
				pos = append(pos, i)
			}
		}
		out := make([]int64, rank*len(pos))
		st := strides(shape)
		for j, p := range pos {
			for d := 0; d < rank; d++ {
				out[d*len(pos)+j] = int64(p / st[d] % int(shape[d]))
			}
		}
		return newTensor(name, tensor.Int64, []int64{int64(rank), int64(len(pos))}, out), nil
	}), nil
}

func dropoutFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 3); err != nil {
		return nil, err
	}
	if opset < 7 {
		if t, _ := n.Int("is_test", 0); t == 0 {
			return nil, unsupportedError("Dropout in training mode (is_test=0)")
		}
	}
	nout := len(n.Outputs)
	return runN(nout, func(in, out []Value) error {
		x, err := inTensor(in, 0)
		if err != nil {
			return err
		}
		if t, err := optTensor(in, 2); err != nil {
			return err
		} else if t != nil {
			if b, ok := t.Data.([]bool); !ok || len(b) != 1 {
				return fmt.Errorf("training_mode must be a BOOL scalar")
			} else if b[0] {
				return unsupportedError("Dropout in training mode")
			}
		}
		out[0] = x
		if nout > 1 && n.Outputs[1] != "" {
			// onnxruntime returns an all-false (all-zero) mask before
			// opset 12 and an all-true one from then on.
			b := make([]bool, x.Len())
			if opset >= 12 {
				for i := range b {
					b[i] = true
				}
			}
			mask := newTensor(n.Outputs[1], tensor.Bool, x.Shape, b)
			if opset < 10 { // the mask had the input's type then
				var err error
				if mask, err = tensor.Cast(mask, x.DType); err != nil {
					return err
				}
				mask.Name = n.Outputs[1]
			}
			out[1] = mask
		}
		return nil
	}), nil
}

func constantFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 0, 0); err != nil {
		return nil, err
	}
	if len(n.Attrs) != 1 {
		return nil, fmt.Errorf("Constant needs exactly one value attribute, has %d", len(n.Attrs))
	}
	name := outName(n, 0)
	var t *tensor.Tensor
	for key, a := range n.Attrs {
		switch {
		case key == "value" && a.Type == AttrTensor && a.T != nil:
			t = a.T.Clone()
		case key == "value_float" && a.Type == AttrFloat:
			t = newTensor(name, tensor.Float32, nil, []float32{a.F})
		case key == "value_floats" && a.Type == AttrFloats:
			t = newTensor(name, tensor.Float32, []int64{int64(len(a.Floats))}, append([]float32{}, a.Floats...))
		case key == "value_int" && a.Type == AttrInt:
			t = newTensor(name, tensor.Int64, nil, []int64{a.I})
		case key == "value_ints" && a.Type == AttrInts:
			t = newTensor(name, tensor.Int64, []int64{int64(len(a.Ints))}, append([]int64{}, a.Ints...))
		case key == "value_string" && a.Type == AttrString:
			t = newTensor(name, tensor.String, nil, []string{a.S})
		case key == "value_strings" && a.Type == AttrStrings:
			t = newTensor(name, tensor.String, []int64{int64(len(a.Strings))}, append([]string{}, a.Strings...))
		case key == "sparse_value":
			return nil, unsupportedError("Constant with a sparse_value")
		default:
			return nil, fmt.Errorf("Constant attribute %q of type %d", key, a.Type)
		}
	}
	t.Name = name
	return kernel1(func(in []Value) (*tensor.Tensor, error) { return t, nil }), nil
}

func constantOfShapeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	value, err := n.TensorAttr("value")
	if err != nil {
		return nil, err
	}
	if value == nil {
		value = newTensor("", tensor.Float32, []int64{1}, []float32{0})
	}
	if value.Len() != 1 {
		return nil, fmt.Errorf("value must hold one element, has %d", value.Len())
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		s, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		shape, err := int64s(s)
		if err != nil {
			return nil, fmt.Errorf("shape: %w", err)
		}
		cnt := tensor.NumElements(shape)
		if cnt < 0 || cnt > maxElements {
			return nil, fmt.Errorf("shape %v is invalid or too large", shape)
		}
		idx := make([]int, cnt) // all zeros: every element is value[0]
		return newTensor(name, value.DType, shape, take(value.Data, idx)), nil
	}), nil
}
