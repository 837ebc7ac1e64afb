package onnx

import (
	"context"
	"math"
	"slices"
	"strconv"

	"github.com/kiln-ml/kiln/tensor"
)

func init() {
	register(mlDomain, "LabelEncoder", newMLLabelEncoder)
	register(mlDomain, "CategoryMapper", newMLCategoryMapper)
	register(mlDomain, "ZipMap", newMLZipMap)
	register(mlDomain, "DictVectorizer", newMLDictVectorizer)
	register(mlDomain, "CastMap", newMLCastMap)
}

// mlKeyKind is the kind of a LabelEncoder key.
type mlKeyKind uint8

const (
	mlKeyString mlKeyKind = iota
	mlKeyInt
	mlKeyFloat
)

// mlLabelEncoder is LabelEncoder 2 and 4: keys_* map to values_* (lists
// or, since 4, tensors), with a default for unknown keys; NaN keys match
// NaN. As in onnxruntime the first of repeated keys wins.
type mlLabelEncoder struct {
	node     *Node
	kind     mlKeyKind
	strIdx   map[string]int32
	intIdx   map[int64]int32
	fltIdx   map[float64]int32
	nanIdx   int32 // index of the NaN key, -1 if none
	values   *tensor.Tensor
	defValue *tensor.Tensor // one element, values' type
}

func newMLLabelEncoder(n *Node, opset int64) (Kernel, error) {
	if n.Attr("classes_strings") != nil || (opset < 2 && n.Attr("keys_strings") == nil && n.Attr("keys_int64s") == nil &&
		n.Attr("keys_floats") == nil && n.Attr("keys_tensor") == nil) {
		return newMLLabelEncoderV1(n)
	}
	k := &mlLabelEncoder{node: n, nanIdx: -1}
	keys, err := mlOneOf(n, "keys")
	if err != nil {
		return nil, err
	}
	values, err := mlOneOf(n, "values")
	if err != nil {
		return nil, err
	}
	if keys.Len() != values.Len() {
		return nil, n.Errorf("%d keys and %d values; they must have the same length", keys.Len(), values.Len())
	}
	k.values = values
	switch d := keys.Data.(type) {
	case []string:
		k.kind = mlKeyString
		k.strIdx = make(map[string]int32, len(d))
		for i, s := range d {
			if _, dup := k.strIdx[s]; !dup {
				k.strIdx[s] = int32(i)
			}
		}
	case []int64, []int32, []int16, []int8, []uint8, []uint16, []uint32, []uint64:
		k.kind = mlKeyInt
		f, _ := keys.Float64s()
		ints := make([]int64, len(f))
		switch d := keys.Data.(type) {
		case []int64:
			copy(ints, d)
		default:
			for i, v := range f {
				ints[i] = int64(v)
			}
		}
		k.intIdx = make(map[int64]int32, len(ints))
		for i, v := range ints {
			if _, dup := k.intIdx[v]; !dup {
				k.intIdx[v] = int32(i)
			}
		}
	case []float32, []float64:
		k.kind = mlKeyFloat
		f, _ := keys.Float64s()
		k.fltIdx = make(map[float64]int32, len(f))
		for i, v := range f {
			if math.IsNaN(v) {
				if k.nanIdx < 0 {
					k.nanIdx = int32(i)
				}
				continue
			}
			if _, dup := k.fltIdx[v]; !dup {
				k.fltIdx[v] = int32(i)
			}
		}
	default:
		return nil, n.Errorf("keys of type %v are not supported", keys.DType)
	}
	if k.defValue, err = mlLabelDefault(n, values.DType); err != nil {
		return nil, err
	}
	return k, nil
}

// mlOneOf reads the one set attribute among prefix+"_strings",
// "_int64s", "_floats" and "_tensor" as a tensor.
func mlOneOf(n *Node, prefix string) (*tensor.Tensor, error) {
	var found []*tensor.Tensor
	var names []string
	if v, err := n.Strings(prefix + "_strings"); err != nil {
		return nil, err
	} else if n.Attr(prefix+"_strings") != nil {
		found, names = append(found, &tensor.Tensor{DType: tensor.String, Data: v}), append(names, prefix+"_strings")
	}
	if v, err := n.Ints(prefix + "_int64s"); err != nil {
		return nil, err
	} else if n.Attr(prefix+"_int64s") != nil {
		found, names = append(found, &tensor.Tensor{DType: tensor.Int64, Data: v}), append(names, prefix+"_int64s")
	}
	if v, err := n.Floats(prefix + "_floats"); err != nil {
		return nil, err
	} else if n.Attr(prefix+"_floats") != nil {
		found, names = append(found, &tensor.Tensor{DType: tensor.Float32, Data: v}), append(names, prefix+"_floats")
	}
	if v, err := n.TensorAttr(prefix + "_tensor"); err != nil {
		return nil, err
	} else if v != nil {
		found, names = append(found, v), append(names, prefix+"_tensor")
	}
	switch len(found) {
	case 0:
		return nil, n.Errorf("one of the attributes %s_strings, %s_int64s, %s_floats or %s_tensor is required", prefix, prefix, prefix, prefix)
	case 1:
		t := found[0]
		if t.Data == nil {
			d, err := tensor.MakeSlice(t.DType, 0)
			if err != nil {
				return nil, err
			}
			t = &tensor.Tensor{DType: t.DType, Data: d}
		}
		t.Shape = []int64{int64(t.Len())}
		return t, nil
	}
	return nil, n.Errorf("attributes %v are all set; exactly one is allowed", names)
}

// mlLabelDefault is the default value: default_tensor, else the
// default_* attribute of the values' kind.
func mlLabelDefault(n *Node, dt tensor.DType) (*tensor.Tensor, error) {
	if t, err := n.TensorAttr("default_tensor"); err != nil {
		return nil, err
	} else if t != nil {
		if t.Len() < 1 {
			return nil, n.Errorf("attribute \"default_tensor\" is empty")
		}
		c, err := tensor.Cast(t, dt)
		if err != nil {
			return nil, n.Errorf("attribute \"default_tensor\": %v", err)
		}
		one, _ := tensor.MakeSlice(dt, 1)
		mlCopyFirst(one, c.Data)
		return &tensor.Tensor{DType: dt, Shape: []int64{1}, Data: one}, nil
	}
	var t *tensor.Tensor
	switch {
	case dt == tensor.String:
		s, err := n.String("default_string", "_Unused")
		if err != nil {
			return nil, err
		}
		t = &tensor.Tensor{DType: tensor.String, Data: []string{s}}
	case dt.IsFloat():
		f, err := n.Float("default_float", float32(math.Copysign(0, -1)))
		if err != nil {
			return nil, err
		}
		t = &tensor.Tensor{DType: tensor.Float32, Data: []float32{f}}
	default:
		v, err := n.Int("default_int64", -1)
		if err != nil {
			return nil, err
		}
		t = &tensor.Tensor{DType: tensor.Int64, Data: []int64{v}}
	}
	t.Shape = []int64{1}
	return tensor.Cast(t, dt)
}

func mlCopyFirst(dst, src any) {
	switch d := dst.(type) {
	case []string:
		d[0] = src.([]string)[0]
	case []float32:
		d[0] = src.([]float32)[0]
	case []float64:
		d[0] = src.([]float64)[0]
	case []int64:
		d[0] = src.([]int64)[0]
	case []int32:
		d[0] = src.([]int32)[0]
	case []int16:
		d[0] = src.([]int16)[0]
	case []int8:
		d[0] = src.([]int8)[0]
	case []uint8:
		d[0] = src.([]uint8)[0]
	case []uint16:
		d[0] = src.([]uint16)[0]
	case []uint32:
		d[0] = src.([]uint32)[0]
	case []uint64:
		d[0] = src.([]uint64)[0]
	case []bool:
		d[0] = src.([]bool)[0]
	}
}

func (k *mlLabelEncoder) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	idx := make([]int32, x.Len())
	switch k.kind {
	case mlKeyString:
		s, ok := x.Data.([]string)
		if !ok {
			return nil, n.Errorf("input of type %v; the keys are strings", x.DType)
		}
		for i, v := range s {
			j, ok := k.strIdx[v]
			if !ok {
				j = -1
			}
			idx[i] = j
		}
	case mlKeyInt:
		if !x.DType.IsInteger() {
			return nil, n.Errorf("input of type %v; the keys are integers", x.DType)
		}
		var ints []int64
		if d, ok := x.Data.([]int64); ok {
			ints = d
		} else {
			c, err := tensor.Cast(x, tensor.Int64)
			if err != nil {
				return nil, n.Errorf("%v", err)
			}
			ints = c.Data.([]int64)
		}
		for i, v := range ints {
			j, ok := k.intIdx[v]
			if !ok {
				j = -1
			}
			idx[i] = j
		}
	case mlKeyFloat:
		if !x.DType.IsFloat() {
			return nil, n.Errorf("input of type %v; the keys are floating point", x.DType)
		}
		f, err := mlFloat64s(n, x)
		if err != nil {
			return nil, err
		}
		for i, v := range f {
			j, ok := k.fltIdx[v]
			if math.IsNaN(v) {
				j, ok = k.nanIdx, k.nanIdx >= 0
			}
			if !ok {
				j = -1
			}
			idx[i] = j
		}
	}
	out, err := mlGatherValues(k.values, k.defValue, idx)
	if err != nil {
		return nil, n.Errorf("%v", err)
	}
	out.Shape = append([]int64(nil), x.Shape...)
	return []Value{out}, nil
}

// mlGatherValues returns values[idx[i]], or def where idx[i] < 0.
func mlGatherValues(values, def *tensor.Tensor, idx []int32) (*tensor.Tensor, error) {
	var data any
	switch v := values.Data.(type) {
	case []string:
		data = mlGather(v, def.Data.([]string)[0], idx)
	case []float32:
		data = mlGather(v, def.Data.([]float32)[0], idx)
	case []float64:
		data = mlGather(v, def.Data.([]float64)[0], idx)
	case []int64:
		data = mlGather(v, def.Data.([]int64)[0], idx)
	case []int32:
		data = mlGather(v, def.Data.([]int32)[0], idx)
	case []int16:
		data = mlGather(v, def.Data.([]int16)[0], idx)
	case []int8:
		data = mlGather(v, def.Data.([]int8)[0], idx)
	case []uint8:
		data = mlGather(v, def.Data.([]uint8)[0], idx)
	case []uint16:
		data = mlGather(v, def.Data.([]uint16)[0], idx)
	case []uint32:
		data = mlGather(v, def.Data.([]uint32)[0], idx)
	case []uint64:
		data = mlGather(v, def.Data.([]uint64)[0], idx)
	case []bool:
		data = mlGather(v, def.Data.([]bool)[0], idx)
	default:
		return nil, tensor.ErrDType
	}
	return &tensor.Tensor{DType: values.DType, Data: data}, nil
}

func mlGather[T any](vals []T, def T, idx []int32) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		if j >= 0 {
			out[i] = vals[j]
		} else {
			out[i] = def
		}
	}
	return out
}

// newMLLabelEncoderV1 is LabelEncoder 1: strings to their index in
// classes_strings (default_int64 otherwise), integers to the class at
// that index (default_string otherwise).
func newMLLabelEncoderV1(n *Node) (Kernel, error) {
	classes, err := n.Strings("classes_strings")
	if err != nil {
		return nil, err
	}
	defStr, err := n.String("default_string", "_Unused")
	if err != nil {
		return nil, err
	}
	defInt, err := n.Int("default_int64", -1)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int64, len(classes))
	for i, c := range classes {
		index[c] = int64(i)
	}
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		x, err := n.Tensor(in, 0)
		if err != nil {
			return nil, err
		}
		shape := append([]int64(nil), x.Shape...)
		switch d := x.Data.(type) {
		case []string:
			out := make([]int64, len(d))
			for i, s := range d {
				v, ok := index[s]
				if !ok {
					v = defInt
				}
				out[i] = v
			}
			return []Value{&tensor.Tensor{DType: tensor.Int64, Shape: shape, Data: out}}, nil
		case []int64:
			out := make([]string, len(d))
			for i, v := range d {
				if v >= 0 && v < int64(len(classes)) {
					out[i] = classes[v]
				} else {
					out[i] = defStr
				}
			}
			return []Value{&tensor.Tensor{DType: tensor.String, Shape: shape, Data: out}}, nil
		}
		return nil, n.Errorf("input of type %v; LabelEncoder 1 takes strings or int64", x.DType)
	}), nil
}

// newMLCategoryMapper is CategoryMapper: strings to int64 and back through
// the parallel lists cats_strings and cats_int64s.
func newMLCategoryMapper(n *Node, _ int64) (Kernel, error) {
	ints, err := n.Ints("cats_int64s")
	if err != nil {
		return nil, err
	}
	strs, err := n.Strings("cats_strings")
	if err != nil {
		return nil, err
	}
	if len(ints) != len(strs) {
		return nil, n.Errorf("attributes \"cats_int64s\" (%d values) and \"cats_strings\" (%d values) differ in length", len(ints), len(strs))
	}
	defStr, err := n.String("default_string", "_Unused")
	if err != nil {
		return nil, err
	}
	defInt, err := n.Int("default_int64", -1)
	if err != nil {
		return nil, err
	}
	toInt := make(map[string]int64, len(strs))
	toStr := make(map[int64]string, len(ints))
	for i := range ints {
		if _, dup := toInt[strs[i]]; !dup {
			toInt[strs[i]] = ints[i]
		}
		if _, dup := toStr[ints[i]]; !dup {
			toStr[ints[i]] = strs[i]
		}
	}
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		x, err := n.Tensor(in, 0)
		if err != nil {
			return nil, err
		}
		shape := append([]int64(nil), x.Shape...)
		switch d := x.Data.(type) {
		case []string:
			out := make([]int64, len(d))
			for i, s := range d {
				v, ok := toInt[s]
				if !ok {
					v = defInt
				}
				out[i] = v
			}
			return []Value{&tensor.Tensor{DType: tensor.Int64, Shape: shape, Data: out}}, nil
		case []int64:
			out := make([]string, len(d))
			for i, v := range d {
				s, ok := toStr[v]
				if !ok {
					s = defStr
				}
				out[i] = s
			}
			return []Value{&tensor.Tensor{DType: tensor.String, Shape: shape, Data: out}}, nil
		}
		return nil, n.Errorf("input of type %v; CategoryMapper takes strings or int64", x.DType)
	}), nil
}

// newMLZipMap is ZipMap: each row of scores becomes a map from the class
// labels to the scores, in a sequence. The maps share their key slice.
func newMLZipMap(n *Node, _ int64) (Kernel, error) {
	labels, err := mlReadLabels(n, "classlabels_int64s", "classlabels_strings")
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		x, err := n.Tensor(in, 0)
		if err != nil {
			return nil, err
		}
		rows, cols, err := mlRowsCols(n, x)
		if err != nil {
			return nil, err
		}
		if cols != labels.len() {
			return nil, n.Errorf("input has %d columns for %d class labels", cols, labels.len())
		}
		xs, err := mlFloat32s(n, x)
		if err != nil {
			return nil, err
		}
		maps := make([]Map, rows)
		vals := make([]tensor.Tensor, rows)
		seq := make(Sequence, rows)
		shape := []int64{int64(cols)}
		for i := range maps {
			vals[i] = tensor.Tensor{DType: tensor.Float32, Shape: shape, Data: xs[i*cols : (i+1)*cols : (i+1)*cols]}
			maps[i] = Map{Int64Keys: labels.ints, StringKeys: labels.strings, Values: &vals[i]}
			seq[i] = &maps[i]
		}
		return []Value{seq}, nil
	}), nil
}

// newMLDictVectorizer is DictVectorizer: a map becomes a [1, V] tensor
// holding the value of each vocabulary key (zero when absent).
func newMLDictVectorizer(n *Node, _ int64) (Kernel, error) {
	ints, err := n.Ints("int64_vocabulary")
	if err != nil {
		return nil, err
	}
	strs, err := n.Strings("string_vocabulary")
	if err != nil {
		return nil, err
	}
	if (len(ints) == 0) == (len(strs) == 0) {
		return nil, n.Errorf("exactly one of the attributes \"int64_vocabulary\" and \"string_vocabulary\" must be set")
	}
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		if len(in) == 0 || in[0] == nil {
			return nil, n.Errorf("input 0 is missing")
		}
		m, ok := in[0].(*Map)
		if !ok || m.Values == nil {
			return nil, n.Errorf("input 0 is a %T, not a map", in[0])
		}
		if keys := max(len(m.Int64Keys), len(m.StringKeys)); keys != m.Values.Len() {
			return nil, n.Errorf("map has %d keys and %d values", keys, m.Values.Len())
		}
		idx := make([]int32, max(len(ints), len(strs)))
		for i := range idx {
			idx[i] = -1
		}
		switch {
		case strs != nil && m.StringKeys != nil:
			pos := make(map[string]int32, len(m.StringKeys))
			for j, key := range m.StringKeys {
				pos[key] = int32(j)
			}
			for i, key := range strs {
				if j, ok := pos[key]; ok {
					idx[i] = j
				}
			}
		case ints != nil && m.Int64Keys != nil:
			pos := make(map[int64]int32, len(m.Int64Keys))
			for j, key := range m.Int64Keys {
				pos[key] = int32(j)
			}
			for i, key := range ints {
				if j, ok := pos[key]; ok {
					idx[i] = j
				}
			}
		default:
			return nil, n.Errorf("the map's key type does not match the vocabulary")
		}
		zero, err := tensor.New("", m.Values.DType, 1)
		if err != nil {
			return nil, n.Errorf("%v", err)
		}
		out, err := mlGatherValues(m.Values, zero, idx)
		if err != nil {
			return nil, n.Errorf("map values: %v", err)
		}
		out.Shape = []int64{1, int64(len(idx))}
		return []Value{out}, nil
	}), nil
}

// newMLCastMap is CastMap: an int64-keyed map to a [1, n] tensor ordered
// by key (DENSE) or indexed by key up to max_map (SPARSE).
func newMLCastMap(n *Node, _ int64) (Kernel, error) {
	castTo, err := n.String("cast_to", "TO_FLOAT")
	if err != nil {
		return nil, err
	}
	var dt tensor.DType
	switch castTo {
	case "TO_FLOAT":
		dt = tensor.Float32
	case "TO_STRING":
		dt = tensor.String
	case "TO_INT64":
		dt = tensor.Int64
	default:
		return nil, n.Errorf("attribute cast_to: unknown value %q (want TO_FLOAT, TO_STRING or TO_INT64)", castTo)
	}
	form, err := n.String("map_form", "DENSE")
	if err != nil {
		return nil, err
	}
	if form != "DENSE" && form != "SPARSE" {
		return nil, n.Errorf("attribute map_form: unknown value %q (want DENSE or SPARSE)", form)
	}
	maxMap, err := n.Int("max_map", 1)
	if err != nil {
		return nil, err
	}
	if form == "SPARSE" && (maxMap < 0 || maxMap > 1<<24) {
		return nil, n.Errorf("attribute \"max_map\" is %d", maxMap)
	}
	return KernelFunc(func(_ context.Context, in []Value) ([]Value, error) {
		if len(in) == 0 || in[0] == nil {
			return nil, n.Errorf("input 0 is missing")
		}
		m, ok := in[0].(*Map)
		if !ok || m.Values == nil || m.Int64Keys == nil {
			return nil, n.Errorf("input 0 is a %T, not a map with int64 keys", in[0])
		}
		if len(m.Int64Keys) != m.Values.Len() {
			return nil, n.Errorf("map has %d keys and %d values", len(m.Int64Keys), m.Values.Len())
		}
		order := make([]int, len(m.Int64Keys))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			ka, kb := m.Int64Keys[a], m.Int64Keys[b]
			switch {
			case ka < kb:
				return -1
			case ka > kb:
				return 1
			}
			return 0
		})
		cast := func(j int) (any, error) { return mlCastMapValue(m.Values, j, dt) }
		size := len(order)
		if form == "SPARSE" {
			size = int(maxMap)
		}
		data, _ := tensor.MakeSlice(dt, size)
		set := func(i int, v any) {
			switch d := data.(type) {
			case []float32:
				d[i] = v.(float32)
			case []int64:
				d[i] = v.(int64)
			case []string:
				d[i] = v.(string)
			}
		}
		if form == "DENSE" {
			for i, j := range order {
				v, err := cast(j)
				if err != nil {
					return nil, n.Errorf("%v", err)
				}
				set(i, v)
			}
		} else {
			if s, ok := data.([]string); ok {
				for i := range s {
					s[i] = "0.f"
				}
			}
			for _, j := range order {
				key := m.Int64Keys[j]
				if key < 0 {
					return nil, n.Errorf("negative key %d in a SPARSE map", key)
				}
				if key >= maxMap {
					continue
				}
				v, err := cast(j)
				if err != nil {
					return nil, n.Errorf("%v", err)
				}
				set(int(key), v)
			}
		}
		return []Value{&tensor.Tensor{DType: dt, Shape: []int64{1, int64(size)}, Data: data}}, nil
	}), nil
}

func mlCastMapValue(vals *tensor.Tensor, j int, dt tensor.DType) (any, error) {
	switch d := vals.Data.(type) {
	case []string:
		s := d[j]
		switch dt {
		case tensor.Float32:
			f, err := strconv.ParseFloat(s, 32)
			if err != nil {
				return nil, err
			}
			return float32(f), nil
		case tensor.Int64:
			return strconv.ParseInt(s, 10, 64)
		}
		return s, nil
	case []float32:
		f := d[j]
		switch dt {
		case tensor.Float32:
			return f, nil
		case tensor.Int64:
			if f != f || math.Abs(float64(f)) >= 1<<63 {
				return int64(math.MinInt64), nil
			}
			return int64(f), nil
		}
		// std::to_string formats with six decimals.
		return strconv.FormatFloat(float64(f), 'f', 6, 32), nil
	}
	return nil, tensor.ErrDType
}
