package onnx

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

// The normalization layers small PyTorch MLPs export: BatchNormalization
// (inference) and LayerNormalization.

func init() {
	register("", "BatchNormalization", batchNormFactory)
	register("", "LayerNormalization", layerNormFactory)
	register("", "LpNormalization", lpNormFactory)
}

func lpNormFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	axis, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	p, err := n.Int("p", 2)
	if err != nil {
		return nil, err
	}
	if p != 1 && p != 2 {
		return nil, fmt.Errorf("p=%d is not 1 or 2", p)
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
		outer, dim, inner := sizeOf(x.Shape, 0, a), int(x.Shape[a]), sizeOf(x.Shape, a+1, len(x.Shape))
		switch d := x.Data.(type) {
		case []float32:
			out := make([]float32, len(d))
			lpNorm(d, out, outer, dim, inner, p)
			return newTensor(name, x.DType, x.Shape, out), nil
		case []float64:
			out := make([]float64, len(d))
			lpNorm(d, out, outer, dim, inner, p)
			return newTensor(name, x.DType, x.Shape, out), nil
		}
		return nil, fmt.Errorf("LpNormalization of %v tensors", x.DType)
	}), nil
}

// lpNorm divides each vector along the axis by its L1 or L2 norm; a zero
// vector stays zero.
func lpNorm[T floating](x, out []T, outer, dim, inner int, p int64) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*dim*inner + i
			var norm float64
			for j := 0; j < dim; j++ {
				v := float64(x[base+j*inner])
				if p == 1 {
					norm += math.Abs(v)
				} else {
					norm += v * v
				}
			}
			if p == 2 {
				norm = math.Sqrt(norm)
			}
			for j := 0; j < dim; j++ {
				v := float64(x[base+j*inner])
				if norm != 0 {
					v /= norm
				}
				out[base+j*inner] = T(v)
			}
		}
	}
}

func batchNormFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 5, 5); err != nil {
		return nil, err
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	if opset >= 14 {
		if tm, err := n.Int("training_mode", 0); err != nil {
			return nil, err
		} else if tm != 0 {
			return nil, unsupportedError("BatchNormalization in training mode")
		}
	}
	if opset < 9 {
		if sp, _ := n.Int("spatial", 1); sp == 0 {
			return nil, unsupportedError("BatchNormalization with spatial=0")
		}
	}
	if len(n.Outputs) > 1 {
		for _, o := range n.Outputs[1:] {
			if o != "" {
				return nil, unsupportedError("BatchNormalization's training outputs (running mean and variance)")
			}
		}
	}
	name := outName(n, 0)
	// y = x*a + b per channel, a = scale/sqrt(var+eps), b = bias - mean*a,
	// computed once when the parameters are constants.
	coeffs := func(in []Value) (a, b []float64, err error) {
		var p [4][]float64
		for i := range p {
			t, err := inTensor(in, i+1)
			if err != nil {
				return nil, nil, err
			}
			if p[i], err = t.Float64s(); err != nil {
				return nil, nil, err
			}
			if len(p[i]) != len(p[0]) {
				return nil, nil, fmt.Errorf("scale, bias, mean and variance differ in length")
			}
		}
		a, b = make([]float64, len(p[0])), make([]float64, len(p[0]))
		for c := range a {
			a[c] = p[0][c] / math.Sqrt(p[3][c]+float64(eps))
			b[c] = p[1][c] - p[2][c]*a[c]
		}
		return a, b, nil
	}
	var sa, sb []float64
	if staticTensor(n, 1) != nil && staticTensor(n, 2) != nil && staticTensor(n, 3) != nil && staticTensor(n, 4) != nil {
		if sa, sb, err = coeffs(n.Static); err != nil {
			return nil, err
		}
	}
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		a, b := sa, sb
		if a == nil {
			if a, b, err = coeffs(in); err != nil {
				return nil, err
			}
		}
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("BatchNormalization takes [N, C, ...], got shape %v", x.Shape)
		}
		c := int(x.Shape[1])
		if c != len(a) {
			return nil, fmt.Errorf("%d channels, %d parameters", c, len(a))
		}
		inner := sizeOf(x.Shape, 2, len(x.Shape))
		switch d := x.Data.(type) {
		case []float32:
			out := make([]float32, len(d))
			for i, v := range d {
				ch := i / inner % c
				out[i] = float32(float64(v)*a[ch] + b[ch])
			}
			return newTensor(name, x.DType, x.Shape, out), nil
		case []float64:
			out := make([]float64, len(d))
			for i, v := range d {
				ch := i / inner % c
				out[i] = v*a[ch] + b[ch]
			}
			return newTensor(name, x.DType, x.Shape, out), nil
		}
		return nil, fmt.Errorf("BatchNormalization of %v tensors", x.DType)
	}), nil
}

func layerNormFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 3); err != nil {
		return nil, err
	}
	axis, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	nout := len(n.Outputs)
	return runN(nout, func(in, out []Value) error {
		x, err := inTensor(in, 0)
		if err != nil {
			return err
		}
		scale, err := inTensor(in, 1)
		if err != nil {
			return err
		}
		bias, err := optTensor(in, 2)
		if err != nil {
			return err
		}
		a, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return err
		}
		rows := sizeOf(x.Shape, 0, a)
		width := sizeOf(x.Shape, a, len(x.Shape))
		xs, err := x.Float64s()
		if err != nil {
			return err
		}
		// Scale and bias broadcast to the normalized dimensions.
		norm := x.Shape[a:]
		expand := func(t *tensor.Tensor) ([]float64, error) {
			if t == nil {
				return nil, nil
			}
			full, err := broadcastShape(norm, t.Shape)
			if err != nil || !sameShape(full, norm) {
				return nil, fmt.Errorf("scale or bias of shape %v for normalized shape %v", t.Shape, norm)
			}
			bt, err := broadcastTo("", t, norm)
			if err != nil {
				return nil, err
			}
			return bt.Float64s()
		}
		sc, err := expand(scale)
		if err != nil {
			return err
		}
		bs, err := expand(bias)
		if err != nil {
			return err
		}
		y := make([]float64, len(xs))
		mean := make([]float64, rows)
		inv := make([]float64, rows)
		for r := 0; r < rows; r++ {
			row := xs[r*width : (r+1)*width]
			var m float64
			for _, v := range row {
				m += v
			}
			m /= float64(width)
			var v2 float64
			for _, v := range row {
				v2 += (v - m) * (v - m)
			}
			is := 1 / math.Sqrt(v2/float64(width)+float64(eps))
			mean[r], inv[r] = m, is
			for j, v := range row {
				o := (v - m) * is * sc[j]
				if bs != nil {
					o += bs[j]
				}
				y[r*width+j] = o
			}
		}
		yt, err := tensor.Cast(newTensor("", tensor.Float64, x.Shape, y), x.DType)
		if err != nil {
			return err
		}
		yt.Name = outName(n, 0)
		out[0] = yt
		statShape := append(append([]int64(nil), x.Shape[:a]...), make([]int64, len(x.Shape)-a)...)
		for i := a; i < len(statShape); i++ {
			statShape[i] = 1
		}
		for i, stat := range [][]float64{mean, inv} {
			if nout > i+1 && n.Outputs[i+1] != "" {
				st, err := tensor.Cast(newTensor("", tensor.Float64, statShape, stat), tensor.Float32)
				if err != nil {
					return err
				}
				st.Name = n.Outputs[i+1]
				out[i+1] = st
			}
		}
		return nil
	}), nil
}
