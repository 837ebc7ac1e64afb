package onnx

import (
	"context"
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

// MatMul and Gemm. With float32 weights known at load time (the usual
// case: an initializer) the weights are stored transposed, so that every
// output element is one contiguous dot product.

func init() {
	register("", "MatMul", matmulFactory)
	register("", "Gemm", gemmFactory)
}

// dot32 is the inner product of a and b[:len(a)], with four accumulators
// to break the dependency chain.
func dot32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// transposed32 holds a [K, N] weight matrix as N rows of K.
type transposed32 struct {
	k, n int
	rows []float32 // n*k
}

func transpose32(b []float32, k, n int) *transposed32 {
	t := &transposed32{k: k, n: n, rows: make([]float32, k*n)}
	for i := 0; i < k; i++ {
		for j := 0; j < n; j++ {
			t.rows[j*k+i] = b[i*n+j]
		}
	}
	return t
}

// mulRows computes out[r, j] = dot(a[r, :], w[j, :]) for m rows of a.
// It works on blocks of two rows by four columns (eight accumulators), so
// each load of a feeds four products and each load of w two.
func (w *transposed32) mulRows(a []float32, m int, out []float32) {
	k, n := w.k, w.n
	r := 0
	for ; r+2 <= m; r += 2 {
		a0 := a[r*k : r*k+k]
		a1 := a[(r+1)*k : (r+1)*k+k]
		a1 = a1[:len(a0)]
		o0 := out[r*n : r*n+n]
		o1 := out[(r+1)*n : (r+1)*n+n]
		o1 = o1[:len(o0)]
		j := 0
		for ; j+4 <= n; j += 4 {
			w0 := w.rows[j*k : j*k+k]
			w1 := w.rows[(j+1)*k : (j+1)*k+k]
			w2 := w.rows[(j+2)*k : (j+2)*k+k]
			w3 := w.rows[(j+3)*k : (j+3)*k+k]
			w0, w1, w2, w3 = w0[:len(a0)], w1[:len(a0)], w2[:len(a0)], w3[:len(a0)]
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			for i, x := range a0 {
				y := a1[i]
				u0, u1, u2, u3 := w0[i], w1[i], w2[i], w3[i]
				s00 += x * u0
				s01 += x * u1
				s02 += x * u2
				s03 += x * u3
				s10 += y * u0
				s11 += y * u1
				s12 += y * u2
				s13 += y * u3
			}
			q0, q1 := o0[j:j+4:j+4], o1[j:j+4:j+4]
			q0[0], q0[1], q0[2], q0[3] = s00, s01, s02, s03
			q1[0], q1[1], q1[2], q1[3] = s10, s11, s12, s13
		}
		for ; j < n; j++ {
			wj := w.rows[j*k : j*k+k]
			o0[j] = dot32(a0, wj)
			o1[j] = dot32(a1, wj)
		}
	}
	for ; r < m; r++ {
		a0 := a[r*k : r*k+k]
		o0 := out[r*n : r*n+n]
		j := 0
		for ; j+4 <= n; j += 4 {
			w0 := w.rows[j*k : j*k+k]
			w1 := w.rows[(j+1)*k : (j+1)*k+k]
			w2 := w.rows[(j+2)*k : (j+2)*k+k]
			w3 := w.rows[(j+3)*k : (j+3)*k+k]
			w0, w1, w2, w3 = w0[:len(a0)], w1[:len(a0)], w2[:len(a0)], w3[:len(a0)]
			var s0, s1, s2, s3 float32
			for i, x := range a0 {
				s0 += x * w0[i]
				s1 += x * w1[i]
				s2 += x * w2[i]
				s3 += x * w3[i]
			}
			q := o0[j : j+4 : j+4]
			q[0], q[1], q[2], q[3] = s0, s1, s2, s3
		}
		for ; j < n; j++ {
			o0[j] = dot32(a0, w.rows[j*k:j*k+k])
		}
	}
}

func matmulFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	if b := staticTensor(n, 1); b != nil && b.DType == tensor.Float32 && len(b.Shape) == 2 {
		return &dense{name: name, w: transpose32(b.Data.([]float32), int(b.Shape[0]), int(b.Shape[1])), alpha: 1}, nil
	}
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		a, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		b, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		return matmulTensors(name, a, b)
	}), nil
}

type activation uint8

const (
	actNone activation = iota
	actRelu
	actSigmoid
	actTanh
)

// dense is a float32 product with weights known at load time (MatMul
// with a 2-D initializer, or Gemm), optionally followed by a bias row and
// an activation: the executor fuses in the Add and Relu/Sigmoid/Tanh
// nodes that follow a MatMul, so an MLP layer is one pass and one
// allocation. Each part computes exactly what its own node would.
type dense struct {
	name      string
	w         *transposed32
	alpha     float32
	bias      []float32 // nil, or one value per output column
	biasShape []int64   // the bias's shape in the model, which may add a leading 1
	act       activation
	gemm      bool // Gemm takes 2-D A only
}

func (d *dense) Run(_ context.Context, in []Value) ([]Value, error) {
	t, err := d.run(in)
	if err != nil {
		return nil, err
	}
	return []Value{t}, nil
}

func (d *dense) RunInto(_ context.Context, in, out []Value) error {
	t, err := d.run(in)
	out[0] = t
	return err
}

func (d *dense) run(in []Value) (*tensor.Tensor, error) { return d.runReuse(in, nil) }

func (d *dense) runReuse(in []Value, prev *tensor.Tensor) (*tensor.Tensor, error) {
	a, err := inTensor(in, 0)
	if err != nil {
		return nil, err
	}
	x, ok := a.Data.([]float32)
	if !ok {
		return nil, fmt.Errorf("inputs have different types %v and FP32", a.DType)
	}
	r := len(a.Shape)
	if r == 0 || (d.gemm && r != 2) {
		return nil, fmt.Errorf("cannot multiply a tensor of shape %v by [%d %d] weights", a.Shape, d.w.k, d.w.n)
	}
	k := int(a.Shape[r-1])
	if k != d.w.k {
		return nil, fmt.Errorf("cannot multiply %v by [%d %d]: inner dimensions differ", a.Shape, d.w.k, d.w.n)
	}
	var buf [8]int64
	shape := buf[:0]
	for i := len(a.Shape); i < len(d.biasShape); i++ {
		shape = append(shape, 1)
	}
	shape = append(append(shape, a.Shape[:r-1]...), int64(d.w.n))
	rows := sizeOf(a.Shape, 0, r-1)
	n := d.w.n
	var out []float32
	if prev != nil {
		if p, ok := prev.Data.([]float32); ok && len(p) == rows*n && cap(prev.Shape) >= len(shape) {
			out = p
		}
	}
	if out == nil {
		prev = nil
		out = make([]float32, rows*n)
	}
	d.w.mulRows(x, rows, out)
	if d.alpha != 1 {
		for i := range out {
			out[i] *= d.alpha
		}
	}
	if d.bias != nil {
		bias := d.bias[:n]
		for r := 0; r < rows; r++ {
			row := out[r*n : r*n+n]
			for j := range row {
				row[j] += bias[j]
			}
		}
	}
	switch d.act {
	case actRelu:
		for i, v := range out {
			if v < 0 {
				out[i] = 0
			}
		}
	case actSigmoid:
		for i, v := range out {
			out[i] = float32(sigmoid(float64(v)))
		}
	case actTanh:
		for i, v := range out {
			out[i] = float32(math.Tanh(float64(v)))
		}
	}
	if prev != nil {
		prev.Shape = prev.Shape[:len(shape)]
		copy(prev.Shape, shape)
		return prev, nil
	}
	return newTensor(d.name, tensor.Float32, shape, out), nil
}

// biasRow returns the values of a static tensor usable as dense's bias
// for n columns: shape [n] or [1, n].
func biasRow(t *tensor.Tensor, n int) ([]float32, bool) {
	if t == nil || t.DType != tensor.Float32 {
		return nil, false
	}
	if (len(t.Shape) == 1 && t.Shape[0] == int64(n)) || (len(t.Shape) == 2 && t.Shape[0] == 1 && t.Shape[1] == int64(n)) {
		return append([]float32(nil), t.Data.([]float32)...), true
	}
	return nil, false
}

// matmulTensors is numpy's matmul: 1-D operands are promoted and the
// promoted dimension removed again; batch dimensions broadcast.
func matmulTensors(name string, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if err := sameTypes(a, b); err != nil {
		return nil, err
	}
	if len(a.Shape) == 0 || len(b.Shape) == 0 {
		return nil, fmt.Errorf("MatMul of a scalar")
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int64{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int64{bs[0], 1}
	}
	m, k := as[len(as)-2], as[len(as)-1]
	k2, nn := bs[len(bs)-2], bs[len(bs)-1]
	if k != k2 {
		return nil, fmt.Errorf("MatMul of %v by %v: inner dimensions differ", a.Shape, b.Shape)
	}
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	shape := append(append([]int64{}, batch...), m, nn)
	p, err := planBroadcast(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	// Offsets of each batch's matrices.
	nb := sizeOf(batch, 0, len(batch))
	aOff, bOff := make([]int, 0, nb), make([]int, 0, nb)
	var offs [2]int
	rl := p.rowLen()
	p.rows(offs[:], func(o int, offs []int) {
		for i := 0; i < rl; i++ {
			aOff = append(aOff, (offs[0]+i*step(p.scal[0]))*int(m*k))
			bOff = append(bOff, (offs[1]+i*step(p.scal[1]))*int(k*nn))
		}
	})
	var data any
	switch x := a.Data.(type) {
	case []float32:
		data = matmul(x, b.Data.([]float32), aOff, bOff, int(m), int(k), int(nn))
	case []float64:
		data = matmul(x, b.Data.([]float64), aOff, bOff, int(m), int(k), int(nn))
	case []int64:
		data = matmul(x, b.Data.([]int64), aOff, bOff, int(m), int(k), int(nn))
	case []int32:
		data = matmul(x, b.Data.([]int32), aOff, bOff, int(m), int(k), int(nn))
	case []uint64:
		data = matmul(x, b.Data.([]uint64), aOff, bOff, int(m), int(k), int(nn))
	case []uint32:
		data = matmul(x, b.Data.([]uint32), aOff, bOff, int(m), int(k), int(nn))
	default:
		return nil, fmt.Errorf("MatMul of %v tensors", a.DType)
	}
	if len(a.Shape) == 1 {
		shape = append(shape[:len(shape)-2], shape[len(shape)-1])
	}
	if len(b.Shape) == 1 {
		shape = shape[:len(shape)-1]
	}
	return newTensor(name, a.DType, shape, data), nil
}

// matmul multiplies len(aOff) pairs of [m,k]x[k,n] matrices in i-k-j
// order, so the innermost loop runs along contiguous rows.
func matmul[T numeric](a, b []T, aOff, bOff []int, m, k, n int) []T {
	out := make([]T, len(aOff)*m*n)
	for bi := range aOff {
		am := a[aOff[bi] : aOff[bi]+m*k]
		bm := b[bOff[bi] : bOff[bi]+k*n]
		om := out[bi*m*n : (bi+1)*m*n]
		for i := 0; i < m; i++ {
			or := om[i*n : i*n+n]
			for p := 0; p < k; p++ {
				x := am[i*k+p]
				br := bm[p*n : p*n+n]
				for j := range or {
					or[j] += x * br[j]
				}
			}
		}
	}
	return out
}

func gemmFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 3); err != nil {
		return nil, err
	}
	if opset < 11 && !hasInput(n, 2) {
		return nil, fmt.Errorf("input C is required before opset 11")
	}
	alpha, err := n.Float("alpha", 1)
	if err != nil {
		return nil, err
	}
	beta, err := n.Float("beta", 1)
	if err != nil {
		return nil, err
	}
	transA, err := n.Int("transA", 0)
	if err != nil {
		return nil, err
	}
	transB, err := n.Int("transB", 0)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)

	// Float32 weights known at load time and a bias of one row (C of
	// shape [N] or [1, N], or a scalar), pre-scaled by beta: dense.
	if b := staticTensor(n, 1); b != nil && b.DType == tensor.Float32 && len(b.Shape) == 2 && transA == 0 {
		d := &dense{name: name, alpha: alpha, gemm: true}
		if transB != 0 {
			d.w = &transposed32{k: int(b.Shape[1]), n: int(b.Shape[0]), rows: b.Data.([]float32)}
		} else {
			d.w = transpose32(b.Data.([]float32), int(b.Shape[0]), int(b.Shape[1]))
		}
		c := staticTensor(n, 2)
		switch {
		case !hasInput(n, 2) || beta == 0:
			return d, nil
		case c != nil && c.DType == tensor.Float32 && c.Len() == 1:
			d.bias = make([]float32, d.w.n)
			for j := range d.bias {
				d.bias[j] = beta * c.Data.([]float32)[0]
			}
			return d, nil
		}
		if row, ok := biasRow(c, d.w.n); ok {
			for j := range row {
				row[j] *= beta
			}
			d.bias = row
			return d, nil
		}
	}
	var cache planCache
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		a, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		b, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		c, err := optTensor(in, 2)
		if err != nil {
			return nil, err
		}
		if len(a.Shape) != 2 || len(b.Shape) != 2 {
			return nil, fmt.Errorf("Gemm takes 2-D inputs, got %v and %v", a.Shape, b.Shape)
		}
		return gemmGeneral(name, &cache, a, b, c, alpha, beta, transA != 0, transB != 0)
	}), nil
}

func gemmGeneral(name string, cache *planCache, a, b, c *tensor.Tensor, alpha, beta float32, transA, transB bool) (*tensor.Tensor, error) {
	if transA {
		a = transpose2D(a)
	}
	if transB {
		b = transpose2D(b)
	}
	t, err := matmulTensors(name, a, b)
	if err != nil {
		return nil, err
	}
	if alpha != 1 {
		scaleTensor(t, float64(alpha))
	}
	if c != nil && beta != 0 {
		if err := addScaled(cache, t, c, beta); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// addScaled adds beta*c (unidirectionally broadcast) to t in place.
func addScaled(cache *planCache, t, c *tensor.Tensor, beta float32) error {
	if c.DType != t.DType {
		return fmt.Errorf("C has type %v, A and B %v", c.DType, t.DType)
	}
	if beta != 1 {
		c = c.Clone()
		scaleTensor(c, float64(beta))
	}
	p, err := cache.get(t.Shape, c.Shape)
	if err != nil {
		return err
	}
	if !sameShape(p.shape, t.Shape) {
		return fmt.Errorf("C of shape %v does not broadcast to %v", c.Shape, t.Shape)
	}
	switch d := t.Data.(type) {
	case []float32:
		binaryMap(p, d, c.Data.([]float32), d, addRow[float32])
	case []float64:
		binaryMap(p, d, c.Data.([]float64), d, addRow[float64])
	case []int64:
		binaryMap(p, d, c.Data.([]int64), d, addRow[int64])
	case []int32:
		binaryMap(p, d, c.Data.([]int32), d, addRow[int32])
	case []uint64:
		binaryMap(p, d, c.Data.([]uint64), d, addRow[uint64])
	case []uint32:
		binaryMap(p, d, c.Data.([]uint32), d, addRow[uint32])
	default:
		return fmt.Errorf("Gemm of %v tensors", t.DType)
	}
	return nil
}

func scaleTensor(t *tensor.Tensor, f float64) {
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] *= float32(f)
		}
	case []float64:
		for i := range d {
			d[i] *= f
		}
	case []int64:
		for i := range d {
			d[i] = int64(float64(d[i]) * f)
		}
	case []int32:
		for i := range d {
			d[i] = int32(float64(d[i]) * f)
		}
	case []uint64:
		for i := range d {
			d[i] = uint64(float64(d[i]) * f)
		}
	case []uint32:
		for i := range d {
			d[i] = uint32(float64(d[i]) * f)
		}
	}
}

// transpose2D returns the transpose of a 2-D tensor.
func transpose2D(t *tensor.Tensor) *tensor.Tensor {
	r, c := int(t.Shape[0]), int(t.Shape[1])
	idx := make([]int, r*c)
	for i := 0; i < c; i++ {
		for j := 0; j < r; j++ {
			idx[i*r+j] = j*c + i
		}
	}
	return newTensor(t.Name, t.DType, []int64{int64(c), int64(r)}, take(t.Data, idx))
}
