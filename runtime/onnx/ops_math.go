package onnx

import (
	"cmp"
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

// Elementwise operators of ai.onnx: arithmetic with numpy broadcasting,
// comparisons, logic, Where, Clip, the variadic Max/Min/Sum/Mean and the
// unary math functions and activations.

func init() {
	for name, op := range map[string]arithOp{"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv} {
		register("", name, arithFactory(op))
	}
	register("", "Pow", powFactory)
	register("", "Mod", modFactory)
	for name, op := range map[string]cmpOp{"Equal": cmpEq, "Less": cmpLt, "Greater": cmpGt, "LessOrEqual": cmpLe, "GreaterOrEqual": cmpGe} {
		register("", name, compareFactory(op))
	}
	for name, op := range map[string]logicOp{"And": logicAnd, "Or": logicOr, "Xor": logicXor} {
		register("", name, logicFactory(op))
	}
	register("", "Not", notFactory)
	register("", "Where", whereFactory)
	register("", "Clip", clipFactory)
	for name, op := range map[string]arithOp{"Max": opMax, "Min": opMin, "Sum": opAdd, "Mean": opMean} {
		register("", name, variadicFactory(op))
	}
	register("", "IsNaN", isNaNFactory)
	register("", "IsInf", isInfFactory)
	register("", "PRelu", preluFactory)

	for name, f := range map[string]func(float64) float64{
		"Exp": math.Exp, "Log": math.Log, "Sqrt": math.Sqrt, "Erf": math.Erf,
		"Floor": math.Floor, "Ceil": math.Ceil, "Round": math.RoundToEven,
		"Tanh": math.Tanh, "Sigmoid": sigmoid, "Reciprocal": func(x float64) float64 { return 1 / x },
		"Softsign": func(x float64) float64 { return x / (1 + math.Abs(x)) },
		"Softplus": softplus,
		"Sin":      math.Sin, "Cos": math.Cos,
	} {
		register("", name, floatUnaryFactory(f))
	}
	register("", "Relu", reluFactory)
	register("", "Abs", signedUnaryFactory(unaryAbs))
	register("", "Neg", signedUnaryFactory(unaryNeg))
	register("", "Sign", signedUnaryFactory(unarySign))
	register("", "LeakyRelu", paramUnaryFactory(func(n *Node) (func(float64) float64, error) {
		alpha, err := n.Float("alpha", 0.01)
		a := float64(alpha)
		return func(x float64) float64 {
			if x < 0 {
				return a * x
			}
			return x
		}, err
	}))
	register("", "Elu", paramUnaryFactory(func(n *Node) (func(float64) float64, error) {
		alpha, err := n.Float("alpha", 1)
		a := float64(alpha)
		return func(x float64) float64 {
			if x < 0 {
				return a * (math.Exp(x) - 1)
			}
			return x
		}, err
	}))
	register("", "Selu", paramUnaryFactory(func(n *Node) (func(float64) float64, error) {
		alpha, err := n.Float("alpha", 1.67326319217681884765625)
		if err != nil {
			return nil, err
		}
		gamma, err := n.Float("gamma", 1.05070102214813232421875)
		a, g := float64(alpha), float64(gamma)
		return func(x float64) float64 {
			if x <= 0 {
				return g * (a*math.Exp(x) - a)
			}
			return g * x
		}, err
	}))
	register("", "HardSigmoid", paramUnaryFactory(func(n *Node) (func(float64) float64, error) {
		alpha, err := n.Float("alpha", 0.2)
		if err != nil {
			return nil, err
		}
		beta, err := n.Float("beta", 0.5)
		a, b := float64(alpha), float64(beta)
		return func(x float64) float64 { return math.Max(0, math.Min(1, a*x+b)) }, err
	}))
	register("", "Gelu", paramUnaryFactory(func(n *Node) (func(float64) float64, error) {
		approx, err := n.String("approximate", "none")
		switch approx {
		case "none":
			return func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }, err
		case "tanh":
			return func(x float64) float64 {
				return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
			}, err
		}
		return nil, fmt.Errorf("approximate=%q is not none or tanh", approx)
	}))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

type arithOp uint8

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opMax
	opMin
	opMean // Sum, then divided by the count (variadic Mean only)
)

func arithFactory(op arithOp) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 2, 2); err != nil {
			return nil, err
		}
		if opset < 7 {
			if b, _ := n.Int("broadcast", 0); b == 0 && n.Attr("axis") != nil {
				return nil, unsupportedError("%s with the opset-%d axis attribute", n.OpType, opset)
			}
		}
		name := outName(n, 0)
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
			return arithTensors(op, &cache, name, a, b)
		}), nil
	}
}

func arithTensors(op arithOp, cache *planCache, name string, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if err := sameTypes(a, b); err != nil {
		return nil, err
	}
	p, err := cache.get(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	var data any
	switch x := a.Data.(type) {
	case []float32:
		data, err = arith(op, p, x, b.Data.([]float32))
	case []float64:
		data, err = arith(op, p, x, b.Data.([]float64))
	case []int64:
		data, err = arith(op, p, x, b.Data.([]int64))
	case []int32:
		data, err = arith(op, p, x, b.Data.([]int32))
	case []int16:
		data, err = arith(op, p, x, b.Data.([]int16))
	case []int8:
		data, err = arith(op, p, x, b.Data.([]int8))
	case []uint64:
		data, err = arith(op, p, x, b.Data.([]uint64))
	case []uint32:
		data, err = arith(op, p, x, b.Data.([]uint32))
	case []uint8:
		data, err = arith(op, p, x, b.Data.([]uint8))
	case []uint16:
		if a.DType == tensor.Float16 {
			return nil, unsupportedError("arithmetic on FP16 tensors")
		}
		data, err = arith(op, p, x, b.Data.([]uint16))
	default:
		return nil, fmt.Errorf("arithmetic on %v tensors", a.DType)
	}
	if err != nil {
		return nil, err
	}
	return newTensor(name, a.DType, p.shape, data), nil
}

func isInteger[T numeric]() bool { return T(1)/T(2) == 0 }

func arith[T numeric](op arithOp, p *bplan, a, b []T) ([]T, error) {
	if op == opDiv && isInteger[T]() {
		for _, v := range b {
			if v == 0 {
				return nil, fmt.Errorf("integer division by zero")
			}
		}
	}
	out := make([]T, p.n)
	var row func(out, a, b []T, sa, sb bool)
	switch op {
	case opAdd, opMean:
		row = addRow[T]
	case opSub:
		row = subRow[T]
	case opMul:
		row = mulRow[T]
	case opDiv:
		row = divRow[T]
	case opMax:
		row = maxRow[T]
	case opMin:
		row = minRow[T]
	}
	binaryMap(p, a, b, out, row)
	return out, nil
}

func addRow[T numeric](out, a, b []T, sa, sb bool) {
	switch {
	case !sa && !sb:
		a, b = a[:len(out)], b[:len(out)]
		for i := range out {
			out[i] = a[i] + b[i]
		}
	case sa && !sb:
		x := a[0]
		b = b[:len(out)]
		for i := range out {
			out[i] = x + b[i]
		}
	case !sa && sb:
		y := b[0]
		a = a[:len(out)]
		for i := range out {
			out[i] = a[i] + y
		}
	default:
		v := a[0] + b[0]
		for i := range out {
			out[i] = v
		}
	}
}

func subRow[T numeric](out, a, b []T, sa, sb bool) {
	switch {
	case !sa && !sb:
		a, b = a[:len(out)], b[:len(out)]
		for i := range out {
			out[i] = a[i] - b[i]
		}
	case sa && !sb:
		x := a[0]
		b = b[:len(out)]
		for i := range out {
			out[i] = x - b[i]
		}
	case !sa && sb:
		y := b[0]
		a = a[:len(out)]
		for i := range out {
			out[i] = a[i] - y
		}
	default:
		v := a[0] - b[0]
		for i := range out {
			out[i] = v
		}
	}
}

func mulRow[T numeric](out, a, b []T, sa, sb bool) {
	switch {
	case !sa && !sb:
		a, b = a[:len(out)], b[:len(out)]
		for i := range out {
			out[i] = a[i] * b[i]
		}
	case sa && !sb:
		x := a[0]
		b = b[:len(out)]
		for i := range out {
			out[i] = x * b[i]
		}
	case !sa && sb:
		y := b[0]
		a = a[:len(out)]
		for i := range out {
			out[i] = a[i] * y
		}
	default:
		v := a[0] * b[0]
		for i := range out {
			out[i] = v
		}
	}
}

func divRow[T numeric](out, a, b []T, sa, sb bool) {
	switch {
	case !sa && !sb:
		a, b = a[:len(out)], b[:len(out)]
		for i := range out {
			out[i] = a[i] / b[i]
		}
	case sa && !sb:
		x := a[0]
		b = b[:len(out)]
		for i := range out {
			out[i] = x / b[i]
		}
	case !sa && sb:
		y := b[0]
		a = a[:len(out)]
		for i := range out {
			out[i] = a[i] / y
		}
	default:
		v := a[0] / b[0]
		for i := range out {
			out[i] = v
		}
	}
}

// maxRow and minRow propagate NaN (numpy's maximum/minimum).
func maxRow[T numeric](out, a, b []T, sa, sb bool) {
	ia, ib := step(sa), step(sb)
	for i := range out {
		x, y := a[i*ia], b[i*ib]
		if y > x || y != y {
			x = y
		}
		out[i] = x
	}
}

func minRow[T numeric](out, a, b []T, sa, sb bool) {
	ia, ib := step(sa), step(sb)
	for i := range out {
		x, y := a[i*ia], b[i*ib]
		if y < x || y != y {
			x = y
		}
		out[i] = x
	}
}

// step is an operand's index step along a row: 0 when it repeats.
func step(scalar bool) int {
	if scalar {
		return 0
	}
	return 1
}

func variadicFactory(op arithOp) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 1, -1); err != nil {
			return nil, err
		}
		name := outName(n, 0)
		caches := make([]planCache, len(n.Inputs))
		return kernel1(func(in []Value) (*tensor.Tensor, error) {
			acc, err := inTensor(in, 0)
			if err != nil {
				return nil, err
			}
			if len(in) == 1 {
				acc = acc.Clone()
				acc.Name = name
			}
			for i := 1; i < len(in); i++ {
				t, err := inTensor(in, i)
				if err != nil {
					return nil, err
				}
				o := op
				if o == opMean {
					o = opAdd
				}
				if acc, err = arithTensors(o, &caches[i], name, acc, t); err != nil {
					return nil, err
				}
			}
			if op == opMean && len(in) > 1 {
				k := float64(len(in))
				switch d := acc.Data.(type) {
				case []float32:
					for i := range d {
						d[i] = float32(float64(d[i]) / k)
					}
				case []float64:
					for i := range d {
						d[i] /= k
					}
				default:
					return nil, fmt.Errorf("Mean of %v tensors", acc.DType)
				}
			}
			return acc, nil
		}), nil
	}
}

func powFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	name := outName(n, 0)
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
		e, err := b.Float64s()
		if err != nil {
			return nil, fmt.Errorf("exponent: %w", err)
		}
		p, err := cache.get(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		var data any
		switch x := a.Data.(type) {
		case []float32:
			data = pow(p, x, e)
		case []float64:
			data = pow(p, x, e)
		case []int64:
			data = pow(p, x, e)
		case []int32:
			data = pow(p, x, e)
		default:
			return nil, fmt.Errorf("Pow of %v tensors", a.DType)
		}
		return newTensor(name, a.DType, p.shape, data), nil
	}), nil
}

func pow[T numeric](p *bplan, a []T, e []float64) []T {
	out := make([]T, p.n)
	binaryMap(p, a, e, out, func(out []T, a []T, e []float64, sa, sb bool) {
		if sb {
			switch e[0] {
			case 2:
				ia := step(sa)
				for i := range out {
					x := a[i*ia]
					out[i] = x * x
				}
				return
			case 1:
				ia := step(sa)
				for i := range out {
					out[i] = a[i*ia]
				}
				return
			}
		}
		ia, ib := step(sa), step(sb)
		for i := range out {
			out[i] = T(math.Pow(float64(a[i*ia]), e[i*ib]))
		}
	})
	return out
}

func modFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	fmod, err := n.Int("fmod", 0)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
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
		if err := sameTypes(a, b); err != nil {
			return nil, err
		}
		p, err := cache.get(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		var data any
		switch x := a.Data.(type) {
		case []float32:
			if fmod == 0 {
				return nil, fmt.Errorf("Mod of floats needs fmod=1")
			}
			data = modFloat(p, x, b.Data.([]float32))
		case []float64:
			if fmod == 0 {
				return nil, fmt.Errorf("Mod of floats needs fmod=1")
			}
			data = modFloat(p, x, b.Data.([]float64))
		case []int64:
			data, err = modInt(p, x, b.Data.([]int64), fmod != 0)
		case []int32:
			data, err = modInt(p, x, b.Data.([]int32), fmod != 0)
		default:
			return nil, fmt.Errorf("Mod of %v tensors", a.DType)
		}
		if err != nil {
			return nil, err
		}
		return newTensor(name, a.DType, p.shape, data), nil
	}), nil
}

func modFloat[T floating](p *bplan, a, b []T) []T {
	out := make([]T, p.n)
	binaryMap(p, a, b, out, func(out, a, b []T, sa, sb bool) {
		ia, ib := step(sa), step(sb)
		for i := range out {
			out[i] = T(math.Mod(float64(a[i*ia]), float64(b[i*ib])))
		}
	})
	return out
}

func modInt[T int32 | int64](p *bplan, a, b []T, fmod bool) ([]T, error) {
	for _, v := range b {
		if v == 0 {
			return nil, fmt.Errorf("integer modulo by zero")
		}
	}
	out := make([]T, p.n)
	binaryMap(p, a, b, out, func(out, a, b []T, sa, sb bool) {
		ia, ib := step(sa), step(sb)
		for i := range out {
			x, y := a[i*ia], b[i*ib]
			r := x % y
			if !fmod && r != 0 && (r < 0) != (y < 0) {
				r += y // the sign of the divisor, as numpy
			}
			out[i] = r
		}
	})
	return out, nil
}

type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpLt
	cmpGt
	cmpLe
	cmpGe
)

func compareFactory(op cmpOp) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 2, 2); err != nil {
			return nil, err
		}
		name := outName(n, 0)
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
			if err := sameTypes(a, b); err != nil {
				return nil, err
			}
			p, err := cache.get(a.Shape, b.Shape)
			if err != nil {
				return nil, err
			}
			out := make([]bool, p.n)
			switch x := a.Data.(type) {
			case []float32:
				compare(op, p, x, b.Data.([]float32), out)
			case []float64:
				compare(op, p, x, b.Data.([]float64), out)
			case []int64:
				compare(op, p, x, b.Data.([]int64), out)
			case []int32:
				compare(op, p, x, b.Data.([]int32), out)
			case []int16:
				compare(op, p, x, b.Data.([]int16), out)
			case []int8:
				compare(op, p, x, b.Data.([]int8), out)
			case []uint64:
				compare(op, p, x, b.Data.([]uint64), out)
			case []uint32:
				compare(op, p, x, b.Data.([]uint32), out)
			case []uint8:
				compare(op, p, x, b.Data.([]uint8), out)
			case []uint16:
				if a.DType == tensor.Float16 {
					af, _ := a.Float64s()
					bf, _ := b.Float64s()
					compare(op, p, af, bf, out)
				} else {
					compare(op, p, x, b.Data.([]uint16), out)
				}
			case []string:
				compare(op, p, x, b.Data.([]string), out)
			case []bool:
				if op != cmpEq {
					return nil, fmt.Errorf("%s of BOOL tensors", n.OpType)
				}
				binaryMap(p, x, b.Data.([]bool), out, func(out, a, b []bool, sa, sb bool) {
					ia, ib := step(sa), step(sb)
					for i := range out {
						out[i] = a[i*ia] == b[i*ib]
					}
				})
			default:
				return nil, fmt.Errorf("%s of %v tensors", n.OpType, a.DType)
			}
			return newTensor(name, tensor.Bool, p.shape, out), nil
		}), nil
	}
}

func compare[T cmp.Ordered](op cmpOp, p *bplan, a, b []T, out []bool) {
	binaryMap(p, a, b, out, func(out []bool, a, b []T, sa, sb bool) {
		ia, ib := step(sa), step(sb)
		switch op {
		case cmpEq:
			for i := range out {
				out[i] = a[i*ia] == b[i*ib]
			}
		case cmpLt:
			for i := range out {
				out[i] = a[i*ia] < b[i*ib]
			}
		case cmpGt:
			for i := range out {
				out[i] = a[i*ia] > b[i*ib]
			}
		case cmpLe:
			for i := range out {
				out[i] = a[i*ia] <= b[i*ib]
			}
		case cmpGe:
			for i := range out {
				out[i] = a[i*ia] >= b[i*ib]
			}
		}
	})
}

type logicOp uint8

const (
	logicAnd logicOp = iota
	logicOr
	logicXor
)

func logicFactory(op logicOp) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 2, 2); err != nil {
			return nil, err
		}
		name := outName(n, 0)
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
			x, ok1 := a.Data.([]bool)
			y, ok2 := b.Data.([]bool)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s takes BOOL tensors, got %v and %v", n.OpType, a.DType, b.DType)
			}
			p, err := cache.get(a.Shape, b.Shape)
			if err != nil {
				return nil, err
			}
			out := make([]bool, p.n)
			binaryMap(p, x, y, out, func(out, a, b []bool, sa, sb bool) {
				ia, ib := step(sa), step(sb)
				for i := range out {
					u, v := a[i*ia], b[i*ib]
					switch op {
					case logicAnd:
						out[i] = u && v
					case logicOr:
						out[i] = u || v
					default:
						out[i] = u != v
					}
				}
			})
			return newTensor(name, tensor.Bool, p.shape, out), nil
		}), nil
	}
}

func notFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		a, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		x, ok := a.Data.([]bool)
		if !ok {
			return nil, fmt.Errorf("Not takes a BOOL tensor, got %v", a.DType)
		}
		out := make([]bool, len(x))
		for i, v := range x {
			out[i] = !v
		}
		return newTensor(name, tensor.Bool, a.Shape, out), nil
	}), nil
}

func whereFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 3, 3); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	var cache planCache
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		c, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		x, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		y, err := inTensor(in, 2)
		if err != nil {
			return nil, err
		}
		cond, ok := c.Data.([]bool)
		if !ok {
			return nil, fmt.Errorf("condition is %v, want BOOL", c.DType)
		}
		if err := sameTypes(x, y); err != nil {
			return nil, err
		}
		p, err := cache.get(c.Shape, x.Shape, y.Shape)
		if err != nil {
			return nil, err
		}
		var data any
		switch xd := x.Data.(type) {
		case []float32:
			data = where(p, cond, xd, y.Data.([]float32))
		case []float64:
			data = where(p, cond, xd, y.Data.([]float64))
		case []int64:
			data = where(p, cond, xd, y.Data.([]int64))
		case []int32:
			data = where(p, cond, xd, y.Data.([]int32))
		case []int16:
			data = where(p, cond, xd, y.Data.([]int16))
		case []int8:
			data = where(p, cond, xd, y.Data.([]int8))
		case []uint64:
			data = where(p, cond, xd, y.Data.([]uint64))
		case []uint32:
			data = where(p, cond, xd, y.Data.([]uint32))
		case []uint16:
			data = where(p, cond, xd, y.Data.([]uint16))
		case []uint8:
			data = where(p, cond, xd, y.Data.([]uint8))
		case []bool:
			data = where(p, cond, xd, y.Data.([]bool))
		case []string:
			data = where(p, cond, xd, y.Data.([]string))
		default:
			return nil, fmt.Errorf("Where of %v tensors", x.DType)
		}
		return newTensor(name, x.DType, p.shape, data), nil
	}), nil
}

func where[T any](p *bplan, c []bool, x, y []T) []T {
	out := make([]T, p.n)
	n := p.rowLen()
	ic, ix, iy := step(p.scal[0]), step(p.scal[1]), step(p.scal[2])
	var offs [3]int
	p.rows(offs[:], func(o int, offs []int) {
		cr, xr, yr := c[offs[0]:], x[offs[1]:], y[offs[2]:]
		dst := out[o : o+n]
		for i := range dst {
			if cr[i*ic] {
				dst[i] = xr[i*ix]
			} else {
				dst[i] = yr[i*iy]
			}
		}
	})
	return out
}

func clipFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 3); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	attrMin, attrMax := math.Inf(-1), math.Inf(1)
	if opset < 11 {
		lo, err := n.Float("min", float32(math.Inf(-1)))
		if err != nil {
			return nil, err
		}
		hi, err := n.Float("max", float32(math.Inf(1)))
		if err != nil {
			return nil, err
		}
		attrMin, attrMax = float64(lo), float64(hi)
	}
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		lo, hi := attrMin, attrMax
		for i, dst := range []*float64{&lo, &hi} {
			t, err := optTensor(in, i+1)
			if err != nil {
				return nil, err
			}
			if t != nil {
				if t.DType != x.DType {
					return nil, fmt.Errorf("bound of type %v for a %v input", t.DType, x.DType)
				}
				if *dst, err = scalarFloat(t); err != nil {
					return nil, fmt.Errorf("bound: %w", err)
				}
			}
		}
		var data any
		switch d := x.Data.(type) {
		case []float32:
			data = clip(d, float32(lo), float32(hi))
		case []float64:
			data = clip(d, lo, hi)
		case []int64:
			data = clip(d, clampInt[int64](lo), clampInt[int64](hi))
		case []int32:
			data = clip(d, clampInt[int32](lo), clampInt[int32](hi))
		case []int16:
			data = clip(d, clampInt[int16](lo), clampInt[int16](hi))
		case []int8:
			data = clip(d, clampInt[int8](lo), clampInt[int8](hi))
		case []uint64:
			data = clip(d, clampInt[uint64](lo), clampInt[uint64](hi))
		case []uint32:
			data = clip(d, clampInt[uint32](lo), clampInt[uint32](hi))
		case []uint8:
			data = clip(d, clampInt[uint8](lo), clampInt[uint8](hi))
		default:
			return nil, fmt.Errorf("Clip of %v tensors", x.DType)
		}
		return newTensor(name, x.DType, x.Shape, data), nil
	}), nil
}

// clampInt converts a bound to an integer type, saturating the
// infinities that stand for "no bound".
func clampInt[T int8 | int16 | int32 | int64 | uint8 | uint32 | uint64](v float64) T {
	var lo, hi T
	switch any(lo).(type) {
	case int8:
		lo, hi = any(int8(math.MinInt8)).(T), any(int8(math.MaxInt8)).(T)
	case int16:
		lo, hi = any(int16(math.MinInt16)).(T), any(int16(math.MaxInt16)).(T)
	case int32:
		lo, hi = any(int32(math.MinInt32)).(T), any(int32(math.MaxInt32)).(T)
	case int64:
		lo, hi = any(int64(math.MinInt64)).(T), any(int64(math.MaxInt64)).(T)
	default: // unsigned
		hi = ^lo
	}
	switch {
	case v <= float64(lo):
		return lo
	case v >= float64(hi):
		return hi
	}
	return T(v)
}

func clip[T numeric](x []T, lo, hi T) []T {
	out := make([]T, len(x))
	for i, v := range x {
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		out[i] = v
	}
	return out
}

func isNaNFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		out := make([]bool, x.Len())
		switch d := x.Data.(type) {
		case []float32:
			for i, v := range d {
				out[i] = v != v
			}
		case []float64:
			for i, v := range d {
				out[i] = v != v
			}
		default:
			if x.DType != tensor.Float16 {
				return nil, fmt.Errorf("IsNaN of %v tensors", x.DType)
			}
			for i, h := range x.Data.([]uint16) {
				out[i] = h&0x7c00 == 0x7c00 && h&0x3ff != 0
			}
		}
		return newTensor(name, tensor.Bool, x.Shape, out), nil
	}), nil
}

func isInfFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	neg, err := n.Int("detect_negative", 1)
	if err != nil {
		return nil, err
	}
	pos, err := n.Int("detect_positive", 1)
	if err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		if !x.DType.IsFloat() {
			return nil, fmt.Errorf("IsInf of %v tensors", x.DType)
		}
		f, _ := x.Float64s()
		out := make([]bool, len(f))
		for i, v := range f {
			out[i] = (pos != 0 && math.IsInf(v, 1)) || (neg != 0 && math.IsInf(v, -1))
		}
		return newTensor(name, tensor.Bool, x.Shape, out), nil
	}), nil
}

// floatUnaryFactory makes a float32/float64 elementwise kernel computing f
// in float64.
func floatUnaryFactory(f func(float64) float64) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		return floatUnaryKernel(outName(n, 0), n.OpType, f), nil
	}
}

func paramUnaryFactory(mk func(n *Node) (func(float64) float64, error)) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		f, err := mk(n)
		if err != nil {
			return nil, err
		}
		return floatUnaryKernel(outName(n, 0), n.OpType, f), nil
	}
}

func floatUnaryKernel(name, op string, f func(float64) float64) Kernel {
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		switch d := x.Data.(type) {
		case []float32:
			out := make([]float32, len(d))
			for i, v := range d {
				out[i] = float32(f(float64(v)))
			}
			return newTensor(name, x.DType, x.Shape, out), nil
		case []float64:
			out := make([]float64, len(d))
			for i, v := range d {
				out[i] = f(v)
			}
			return newTensor(name, x.DType, x.Shape, out), nil
		}
		return nil, fmt.Errorf("%s of %v tensors (want FP32 or FP64)", op, x.DType)
	})
}

func reluFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		var data any
		switch d := x.Data.(type) {
		case []float32:
			data = relu(d)
		case []float64:
			data = relu(d)
		case []int64:
			data = relu(d)
		case []int32:
			data = relu(d)
		case []int8:
			data = relu(d)
		default:
			return nil, fmt.Errorf("Relu of %v tensors", x.DType)
		}
		return newTensor(name, x.DType, x.Shape, data), nil
	}), nil
}

func relu[T numeric](x []T) []T {
	out := make([]T, len(x))
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		out[i] = v
	}
	return out
}

type signedOp uint8

const (
	unaryAbs signedOp = iota
	unaryNeg
	unarySign
)

func signedUnaryFactory(op signedOp) Factory {
	return func(n *Node, opset int64) (Kernel, error) {
		if err := needInputs(n, 1, 1); err != nil {
			return nil, err
		}
		name := outName(n, 0)
		return kernel1(func(in []Value) (*tensor.Tensor, error) {
			x, err := inTensor(in, 0)
			if err != nil {
				return nil, err
			}
			var data any
			switch d := x.Data.(type) {
			case []float32:
				data = signed(op, d)
			case []float64:
				data = signed(op, d)
			case []int64:
				data = signed(op, d)
			case []int32:
				data = signed(op, d)
			case []int16:
				data = signed(op, d)
			case []int8:
				data = signed(op, d)
			case []uint64:
				data = signed(op, d)
			case []uint32:
				data = signed(op, d)
			case []uint8:
				data = signed(op, d)
			default:
				return nil, fmt.Errorf("%s of %v tensors", n.OpType, x.DType)
			}
			return newTensor(name, x.DType, x.Shape, data), nil
		}), nil
	}
}

func signed[T numeric](op signedOp, x []T) []T {
	out := make([]T, len(x))
	for i, v := range x {
		switch op {
		case unaryAbs:
			if v < 0 {
				v = -v
			} else if v == 0 {
				v = 0 // -0 becomes +0
			}
		case unaryNeg:
			v = -v
		case unarySign:
			switch {
			case v > 0:
				v = 1
			case v < 0:
				v = 0
				v--
			case v == 0:
				v = 0
			}
		}
		out[i] = v
	}
	return out
}

func preluFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	var cache planCache
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		s, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		if err := sameTypes(x, s); err != nil {
			return nil, err
		}
		p, err := cache.get(x.Shape, s.Shape)
		if err != nil {
			return nil, err
		}
		var data any
		switch d := x.Data.(type) {
		case []float32:
			data = prelu(p, d, s.Data.([]float32))
		case []float64:
			data = prelu(p, d, s.Data.([]float64))
		default:
			return nil, fmt.Errorf("PRelu of %v tensors", x.DType)
		}
		return newTensor(name, x.DType, p.shape, data), nil
	}), nil
}

func prelu[T floating](p *bplan, x, s []T) []T {
	out := make([]T, p.n)
	binaryMap(p, x, s, out, func(out, a, b []T, sa, sb bool) {
		ia, ib := step(sa), step(sb)
		for i := range out {
			v := a[i*ia]
			if v < 0 {
				v *= b[i*ib]
			}
			out[i] = v
		}
	})
	return out
}
