package onnx

import (
	"context"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

func init() {
	register(mlDomain, "Scaler", newMLScaler)
	register(mlDomain, "Normalizer", newMLNormalizer)
	register(mlDomain, "Binarizer", newMLBinarizer)
	register(mlDomain, "Imputer", newMLImputer)
	register(mlDomain, "OneHotEncoder", newMLOneHotEncoder)
	register(mlDomain, "ArrayFeatureExtractor", newMLArrayFeatureExtractor)
	register(mlDomain, "FeatureVectorizer", newMLFeatureVectorizer)
}

// mlStride is the length of the last axis of t, for operators that treat
// [N, C] and [C] alike.
func mlStride(n *Node, t *tensor.Tensor) (int, error) {
	switch len(t.Shape) {
	case 1:
		return int(t.Shape[0]), nil
	case 2:
		return int(t.Shape[1]), nil
	}
	return 0, n.Errorf("input must have shape [N, C] or [C], got %v", t.Shape)
}

// Scaler: Y = (X - offset) * scale, float32.
type mlScaler struct {
	node          *Node
	offset, scale []float32
}

func newMLScaler(n *Node, _ int64) (Kernel, error) {
	scale, err := n.Floats("scale")
	if err != nil {
		return nil, err
	}
	offset, err := n.Floats("offset")
	if err != nil {
		return nil, err
	}
	if len(scale) == 0 {
		return nil, n.Errorf("attribute \"scale\" is required")
	}
	if len(offset) != len(scale) {
		return nil, n.Errorf("attributes \"scale\" (%d values) and \"offset\" (%d values) differ in length", len(scale), len(offset))
	}
	return &mlScaler{node: n, offset: offset, scale: scale}, nil
}

func (k *mlScaler) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	stride, err := mlStride(n, x)
	if err != nil {
		return nil, err
	}
	if len(k.scale) != 1 && len(k.scale) != stride {
		return nil, n.Errorf("scale and offset have %d values; the input has %d features (want 1 or %d)", len(k.scale), stride, stride)
	}
	out := make([]float32, x.Len())
	at := func(i int) int {
		if len(k.scale) == 1 {
			return 0
		}
		return i % stride
	}
	if d, ok := x.Data.([]float64); ok {
		for i, v := range d {
			j := at(i)
			out[i] = float32((v - float64(k.offset[j])) * float64(k.scale[j]))
		}
	} else {
		xs, err := mlFloat32s(n, x)
		if err != nil {
			return nil, err
		}
		for i, v := range xs {
			j := at(i)
			out[i] = (v - k.offset[j]) * k.scale[j]
		}
	}
	return []Value{mlFloatTensor(out, x.Shape...)}, nil
}

// Normalizer: each row divided by its max, L1 or L2 norm, float32.
type mlNormalizer struct {
	node *Node
	norm string
}

func newMLNormalizer(n *Node, _ int64) (Kernel, error) {
	norm, err := n.String("norm", "MAX")
	if err != nil {
		return nil, err
	}
	switch norm {
	case "MAX", "L1", "L2":
	default:
		return nil, n.Errorf("attribute norm: unknown value %q (want MAX, L1 or L2)", norm)
	}
	return &mlNormalizer{node: n, norm: norm}, nil
}

func (k *mlNormalizer) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	rows, cols, err := mlRowsCols(n, x)
	if err != nil {
		return nil, err
	}
	out := make([]float32, rows*cols)
	if d, ok := x.Data.([]float64); ok {
		mlNormalize(k.norm, d, out, rows, cols)
	} else {
		xs, err := mlFloat32s(n, x)
		if err != nil {
			return nil, err
		}
		mlNormalize(k.norm, xs, out, rows, cols)
	}
	return []Value{mlFloatTensor(out, x.Shape...)}, nil
}

// mlNormalize follows onnxruntime: the norm in float32, squares and
// absolute values in the input type, Y = X when the divisor is 0.
func mlNormalize[T mlFloat](norm string, x []T, out []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		xr := x[r*cols : (r+1)*cols]
		o := out[r*cols : (r+1)*cols]
		switch norm {
		case "MAX":
			m := float32(-math.MaxFloat32)
			for _, v := range xr {
				m = max(m, float32(v))
			}
			for i, v := range xr {
				if m != 0 {
					o[i] = float32(v) / m
				} else {
					o[i] = float32(v)
				}
			}
		case "L1":
			var sum float32
			for _, v := range xr {
				if v < 0 {
					v = -v
				}
				sum += float32(v)
			}
			for i, v := range xr {
				if sum != 0 {
					o[i] = float32(v) / sum
				} else {
					o[i] = float32(v)
				}
			}
		case "L2":
			var sum float32
			for i, v := range xr {
				o[i] = float32(v * v)
				sum += o[i]
			}
			for i, v := range xr {
				switch {
				case sum == 0:
					o[i] = float32(v)
				case v < 0:
					o[i] = -float32(math.Sqrt(float64(o[i] / sum)))
				default:
					o[i] = float32(math.Sqrt(float64(o[i] / sum)))
				}
			}
		}
	}
}

// Binarizer: 1 where X > threshold, else 0, in X's type. NaN is an error
// (as in onnxruntime).
type mlBinarizer struct {
	node      *Node
	threshold float32
}

func newMLBinarizer(n *Node, _ int64) (Kernel, error) {
	// onnxruntime's default threshold is 1 (the ONNX spec says 0); skl2onnx
	// always writes it.
	th, err := n.Float("threshold", 1)
	if err != nil {
		return nil, err
	}
	return &mlBinarizer{node: n, threshold: th}, nil
}

func (k *mlBinarizer) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	var data any
	switch d := x.Data.(type) {
	case []float32:
		o := make([]float32, len(d))
		for i, v := range d {
			if v != v {
				return nil, n.Errorf("input element %d is NaN", i)
			}
			if v > k.threshold {
				o[i] = 1
			}
		}
		data = o
	case []float64:
		o := make([]float64, len(d))
		for i, v := range d {
			if v != v {
				return nil, n.Errorf("input element %d is NaN", i)
			}
			if v > float64(k.threshold) {
				o[i] = 1
			}
		}
		data = o
	case []int64:
		o := make([]int64, len(d))
		for i, v := range d {
			if float32(v) > k.threshold {
				o[i] = 1
			}
		}
		data = o
	case []int32:
		o := make([]int32, len(d))
		for i, v := range d {
			if float32(v) > k.threshold {
				o[i] = 1
			}
		}
		data = o
	default:
		return nil, n.Errorf("input of type %v; Binarizer takes float, double, int64 or int32", x.DType)
	}
	return []Value{&tensor.Tensor{DType: x.DType, Shape: x.Shape, Data: data}}, nil
}

// Imputer: replaces elements equal to the replaced value (NaN matches
// NaN) by the imputed value of their feature.
type mlImputer struct {
	node        *Node
	floats      []float32
	ints        []int64
	replacedF   float32
	replacedInt int64
}

func newMLImputer(n *Node, _ int64) (Kernel, error) {
	k := &mlImputer{node: n}
	var err error
	if k.floats, err = n.Floats("imputed_value_floats"); err != nil {
		return nil, err
	}
	if k.ints, err = n.Ints("imputed_value_int64s"); err != nil {
		return nil, err
	}
	if (len(k.floats) == 0) == (len(k.ints) == 0) {
		return nil, n.Errorf("exactly one of the attributes \"imputed_value_floats\" and \"imputed_value_int64s\" must be set")
	}
	if k.replacedF, err = n.Float("replaced_value_float", 0); err != nil {
		return nil, err
	}
	if k.replacedInt, err = n.Int("replaced_value_int64", 0); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *mlImputer) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	stride, err := mlStride(n, x)
	if err != nil {
		return nil, err
	}
	var data any
	switch d := x.Data.(type) {
	case []float32:
		data, err = mlImpute(n, d, k.floats, k.replacedF, stride, true)
	case []float64:
		data, err = mlImpute(n, d, mlConvert[float64](k.floats), float64(k.replacedF), stride, true)
	case []int64:
		data, err = mlImpute(n, d, k.ints, k.replacedInt, stride, false)
	case []int32:
		data, err = mlImpute(n, d, mlConvert[int32](k.ints), int32(k.replacedInt), stride, false)
	default:
		return nil, n.Errorf("input of type %v; Imputer takes float, double, int64 or int32", x.DType)
	}
	if err != nil {
		return nil, err
	}
	return []Value{&tensor.Tensor{DType: x.DType, Shape: x.Shape, Data: data}}, nil
}

func mlImpute[T mlNumber](n *Node, x, imputed []T, replaced T, stride int, float bool) ([]T, error) {
	if len(imputed) == 0 {
		if float {
			return nil, n.Errorf("a floating-point input needs the attribute \"imputed_value_floats\"")
		}
		return nil, n.Errorf("an integer input needs the attribute \"imputed_value_int64s\"")
	}
	perFeature := len(imputed) == stride
	nanRepl := replaced != replaced
	out := make([]T, len(x))
	for i, v := range x {
		if v == replaced || (nanRepl && v != v) {
			if perFeature {
				v = imputed[i%stride]
			} else {
				v = imputed[0]
			}
		}
		out[i] = v
	}
	return out, nil
}

// OneHotEncoder: Y has X's shape plus one axis of len(categories).
type mlOneHotEncoder struct {
	node    *Node
	ints    map[int64]int
	strings map[string]int
	count   int
	zeros   bool
}

func newMLOneHotEncoder(n *Node, _ int64) (Kernel, error) {
	ints, err := n.Ints("cats_int64s")
	if err != nil {
		return nil, err
	}
	strs, err := n.Strings("cats_strings")
	if err != nil {
		return nil, err
	}
	if (len(ints) == 0) == (len(strs) == 0) {
		return nil, n.Errorf("exactly one of the attributes \"cats_int64s\" and \"cats_strings\" must be set")
	}
	zeros, err := n.Int("zeros", 1)
	if err != nil {
		return nil, err
	}
	k := &mlOneHotEncoder{node: n, zeros: zeros != 0}
	if len(ints) > 0 {
		k.ints = make(map[int64]int, len(ints))
		for i, c := range ints {
			k.ints[c] = i
		}
		k.count = len(ints)
	} else {
		k.strings = make(map[string]int, len(strs))
		for i, c := range strs {
			k.strings[c] = i
		}
		k.count = len(strs)
	}
	return k, nil
}

func (k *mlOneHotEncoder) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) > 2 {
		return nil, n.Errorf("input has rank %d; OneHotEncoder takes rank 2 at most", len(x.Shape))
	}
	m := x.Len()
	out := make([]float32, m*k.count)
	unknown := func(i int) error {
		if !k.zeros {
			return n.Errorf("input element %d is not a known category and zeros is 0", i)
		}
		return nil
	}
	if x.DType == tensor.String {
		if k.strings == nil {
			return nil, n.Errorf("string input but the categories are integers")
		}
		for i, s := range x.Data.([]string) {
			if j, ok := k.strings[s]; ok {
				out[i*k.count+j] = 1
			} else if err := unknown(i); err != nil {
				return nil, err
			}
		}
	} else {
		if k.ints == nil {
			return nil, n.Errorf("numeric input but the categories are strings")
		}
		if err := k.encodeNumbers(x, out, unknown); err != nil {
			return nil, err
		}
	}
	shape := append(append([]int64(nil), x.Shape...), int64(k.count))
	return []Value{mlFloatTensor(out, shape...)}, nil
}

func (k *mlOneHotEncoder) encodeNumbers(x *tensor.Tensor, out []float32, unknown func(int) error) error {
	if d, ok := x.Data.([]int64); ok {
		for i, v := range d {
			if j, ok := k.ints[v]; ok {
				out[i*k.count+j] = 1
			} else if err := unknown(i); err != nil {
				return err
			}
		}
		return nil
	}
	vals, err := mlFloat64s(k.node, x)
	if err != nil {
		return err
	}
	for i, v := range vals {
		// Other types are cast to int64 (truncating) before the lookup.
		j, ok := 0, false
		if !math.IsNaN(v) && math.Abs(v) < 1<<63 {
			j, ok = k.ints[int64(v)]
		}
		if ok {
			out[i*k.count+j] = 1
		} else if err := unknown(i); err != nil {
			return err
		}
	}
	return nil
}

// ArrayFeatureExtractor: selects indices Y along X's last axis.
func newMLArrayFeatureExtractor(n *Node, _ int64) (Kernel, error) {
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		x, err := n.Tensor(in, 0)
		if err != nil {
			return nil, err
		}
		yt, err := n.Tensor(in, 1)
		if err != nil {
			return nil, err
		}
		idx, ok := yt.Data.([]int64)
		if !ok {
			return nil, n.Errorf("indices are %v, want int64", yt.DType)
		}
		if len(x.Shape) == 0 {
			return nil, n.Errorf("input X is a scalar")
		}
		if len(idx) == 0 {
			return nil, n.Errorf("no indices")
		}
		stride := int(x.Shape[len(x.Shape)-1])
		for i, j := range idx {
			if j < 0 || j >= int64(stride) {
				return nil, n.Errorf("index %d (%d) is out of range [0, %d)", i, j, stride)
			}
		}
		var shape []int64
		if len(x.Shape) == 1 {
			shape = []int64{1, int64(len(idx))}
		} else {
			shape = append([]int64(nil), x.Shape...)
			shape[len(shape)-1] = int64(len(idx))
		}
		outer := 0
		if stride > 0 {
			outer = x.Len() / stride
		}
		var data any
		switch d := x.Data.(type) {
		case []float32:
			data = mlPick(d, idx, outer, stride)
		case []float64:
			data = mlPick(d, idx, outer, stride)
		case []int64:
			data = mlPick(d, idx, outer, stride)
		case []int32:
			data = mlPick(d, idx, outer, stride)
		case []string:
			data = mlPick(d, idx, outer, stride)
		default:
			return nil, n.Errorf("input of type %v; ArrayFeatureExtractor takes float, double, int64, int32 or string", x.DType)
		}
		return []Value{&tensor.Tensor{DType: x.DType, Shape: shape, Data: data}}, nil
	}), nil
}

func mlPick[T any](x []T, idx []int64, outer, stride int) []T {
	out := make([]T, 0, outer*len(idx))
	for r := 0; r < outer; r++ {
		row := x[r*stride : (r+1)*stride]
		for _, j := range idx {
			out = append(out, row[j])
		}
	}
	return out
}

// FeatureVectorizer: concatenates its inputs' rows, each cut or padded
// with zeros to its entry of inputdimensions, as float32.
func newMLFeatureVectorizer(n *Node, _ int64) (Kernel, error) {
	dims, err := n.Ints("inputdimensions")
	if err != nil {
		return nil, err
	}
	total := 0
	for i, d := range dims {
		if d < 0 || d > math.MaxInt32 {
			return nil, n.Errorf("attribute \"inputdimensions\": entry %d is %d", i, d)
		}
		total += int(d)
	}
	if total > 1<<24 {
		return nil, n.Errorf("attribute \"inputdimensions\" adds up to %d features", total)
	}
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		if len(in) != len(dims) {
			return nil, n.Errorf("%d inputs for %d inputdimensions", len(in), len(dims))
		}
		x0, err := n.Tensor(in, 0)
		if err != nil {
			return nil, err
		}
		rows := 1
		if len(x0.Shape) > 1 {
			rows = int(x0.Shape[0])
		}
		out := make([]float32, rows*total)
		off := 0
		for i := range in {
			x, err := n.Tensor(in, i)
			if err != nil {
				return nil, err
			}
			xs, err := mlFloat32s(n, x)
			if err != nil {
				return nil, err
			}
			xr, size := 1, len(xs)
			if len(x.Shape) > 1 {
				xr = int(x.Shape[0])
				if xr > 0 {
					size = len(xs) / xr
				}
			}
			if xr != rows {
				return nil, n.Errorf("input %d has %d rows, input 0 has %d", i, xr, rows)
			}
			w := min(size, int(dims[i]))
			for r := 0; r < rows; r++ {
				copy(out[r*total+off:r*total+off+w], xs[r*size:r*size+w])
			}
			off += int(dims[i])
		}
		return []Value{mlFloatTensor(out, int64(rows), int64(total))}, nil
	}), nil
}
