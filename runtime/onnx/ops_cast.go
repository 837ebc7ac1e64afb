package onnx

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/tensor"
)

// Cast and CastLike. The conversions follow onnxruntime on x86-64 where
// C++ leaves them undefined, so results match the reference outputs:
// floats to 32-bit and narrower integers go through a 32-bit conversion
// (NaN and out-of-range values become math.MinInt32, then truncate),
// floats to 64-bit integers through a 64-bit one; numbers format as
// printf's %.8g ("NaN", "INF", "-INF"), booleans as "1" and "0"; strings
// parse their longest numeric prefix, like strtod/strtoll.

func init() {
	register("", "Cast", castFactory)
	register("", "CastLike", castLikeFactory)
}

var castNames = map[string]int32{
	"FLOAT": onnxFloat, "UINT8": onnxUint8, "INT8": onnxInt8, "UINT16": onnxUint16, "INT16": onnxInt16,
	"INT32": onnxInt32, "INT64": onnxInt64, "STRING": onnxString, "BOOL": onnxBool, "FLOAT16": onnxFloat16,
	"DOUBLE": onnxDouble, "UINT32": onnxUint32, "UINT64": onnxUint64,
}

func castFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	a := n.Attr("to")
	if a == nil {
		return nil, fmt.Errorf("attribute to is required")
	}
	var to int32
	switch a.Type {
	case AttrInt:
		to = int32(a.I)
	case AttrString: // opset 1 to 5 named the type
		v, ok := castNames[strings.ToUpper(a.S)]
		if !ok {
			return nil, unsupportedError("Cast to %q", a.S)
		}
		to = v
	default:
		return nil, fmt.Errorf("attribute to has type %d", a.Type)
	}
	dt, ok := dtypeFromONNX(to)
	if !ok {
		return nil, unsupportedError("Cast to %s", onnxTypeName(to))
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		return castTensor(name, x, dt)
	}), nil
}

func castLikeFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 2, 2); err != nil {
		return nil, err
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		like, err := inTensor(in, 1)
		if err != nil {
			return nil, err
		}
		return castTensor(name, x, like.DType)
	}), nil
}

// castTensor converts x to dt; an x already of type dt is returned as it
// is.
func castTensor(name string, x *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	if x.DType == dt {
		return x, nil
	}
	switch {
	case dt == tensor.String:
		return newTensor(name, dt, x.Shape, formatElements(x)), nil
	case x.DType == tensor.String:
		return parseStrings(name, x, dt)
	case (x.DType == tensor.Float32 || x.DType == tensor.Float64 || x.DType == tensor.Float16) && dt.IsInteger():
		f, _ := x.Float64s()
		data, _ := tensor.MakeSlice(dt, len(f))
		for i, v := range f {
			setInt(data, i, floatToIntBits(v, dt))
		}
		return newTensor(name, dt, x.Shape, data), nil
	}
	if data, ok := castNumeric(x, dt); ok {
		return newTensor(name, dt, x.Shape, data), nil
	}
	t, err := tensor.Cast(x, dt)
	if err != nil {
		return nil, err
	}
	t.Name = name
	return t, nil
}

// castNumeric converts between the plain numeric types (Go conversions:
// integers truncate in two's complement, as C++ does) in one pass.
func castNumeric(x *tensor.Tensor, dt tensor.DType) (any, bool) {
	if x.DType == tensor.Float16 {
		return nil, false
	}
	switch s := x.Data.(type) {
	case []float32:
		return convertTo(s, dt)
	case []float64:
		return convertTo(s, dt)
	case []int64:
		return convertTo(s, dt)
	case []int32:
		return convertTo(s, dt)
	case []int16:
		return convertTo(s, dt)
	case []int8:
		return convertTo(s, dt)
	case []uint64:
		return convertTo(s, dt)
	case []uint32:
		return convertTo(s, dt)
	case []uint16:
		return convertTo(s, dt)
	case []uint8:
		return convertTo(s, dt)
	}
	return nil, false
}

func convertTo[S numeric](s []S, dt tensor.DType) (any, bool) {
	switch dt {
	case tensor.Float32:
		return convertSlice[S, float32](s), true
	case tensor.Float64:
		return convertSlice[S, float64](s), true
	case tensor.Int64:
		return convertSlice[S, int64](s), true
	case tensor.Int32:
		return convertSlice[S, int32](s), true
	case tensor.Int16:
		return convertSlice[S, int16](s), true
	case tensor.Int8:
		return convertSlice[S, int8](s), true
	case tensor.Uint64:
		return convertSlice[S, uint64](s), true
	case tensor.Uint32:
		return convertSlice[S, uint32](s), true
	case tensor.Uint16:
		return convertSlice[S, uint16](s), true
	case tensor.Uint8:
		return convertSlice[S, uint8](s), true
	}
	return nil, false
}

func convertSlice[S, D numeric](s []S) []D {
	out := make([]D, len(s))
	for i, v := range s {
		out[i] = D(v)
	}
	return out
}

// floatToIntBits converts like x86-64's cvttsd2si of the width a C++
// static_cast uses for dt, returning the bits to truncate into dt.
func floatToIntBits(v float64, dt tensor.DType) int64 {
	switch dt {
	case tensor.Int64, tensor.Uint32:
		if v != v || v >= 9223372036854775808.0 || v < -9223372036854775808.0 {
			return math.MinInt64
		}
		return int64(v)
	case tensor.Uint64:
		if v >= 9223372036854775808.0 && v < 18446744073709551616.0 {
			return int64(uint64(v))
		}
		if v != v || v >= 9223372036854775808.0 || v < -9223372036854775808.0 {
			return math.MinInt64
		}
		return int64(v)
	}
	if v != v || v >= 2147483648.0 || v <= -2147483649.0 {
		return math.MinInt32
	}
	return int64(int32(v))
}

// setInt stores the low bits of v at data[i] (an integer slice).
func setInt(data any, i int, v int64) {
	switch d := data.(type) {
	case []int8:
		d[i] = int8(v)
	case []int16:
		d[i] = int16(v)
	case []int32:
		d[i] = int32(v)
	case []int64:
		d[i] = v
	case []uint8:
		d[i] = uint8(v)
	case []uint16:
		d[i] = uint16(v)
	case []uint32:
		d[i] = uint32(v)
	case []uint64:
		d[i] = uint64(v)
	}
}

func formatElements(x *tensor.Tensor) []string {
	out := make([]string, x.Len())
	switch d := x.Data.(type) {
	case []bool:
		for i, v := range d {
			if v {
				out[i] = "1"
			} else {
				out[i] = "0"
			}
		}
	case []float32:
		for i, v := range d {
			out[i] = formatFloat(float64(v))
		}
	case []float64:
		for i, v := range d {
			out[i] = formatFloat(v)
		}
	case []uint64:
		for i, v := range d {
			out[i] = strconv.FormatUint(v, 10)
		}
	default:
		f, _ := x.Float64s()
		if x.DType == tensor.Float16 {
			for i, v := range f {
				out[i] = formatFloat(v)
			}
			break
		}
		if d, ok := x.Data.([]int64); ok {
			for i, v := range d {
				out[i] = strconv.FormatInt(v, 10)
			}
			break
		}
		for i, v := range f {
			out[i] = strconv.FormatInt(int64(v), 10)
		}
	}
	return out
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "INF"
	case math.IsInf(v, -1):
		return "-INF"
	}
	return strconv.FormatFloat(v, 'g', 8, 64)
}

func parseStrings(name string, x *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	src := x.Data.([]string)
	data, err := tensor.MakeSlice(dt, len(src))
	if err != nil {
		return nil, err
	}
	for i, s := range src {
		switch d := data.(type) {
		case []float32:
			v, err := parseFloatPrefix(s)
			if err != nil {
				return nil, err
			}
			d[i] = float32(v)
		case []float64:
			v, err := parseFloatPrefix(s)
			if err != nil {
				return nil, err
			}
			d[i] = v
		case []bool:
			v, err := parseIntPrefix(s)
			if err != nil {
				return nil, err
			}
			d[i] = v != 0
		default:
			if dt == tensor.Float16 {
				v, err := parseFloatPrefix(s)
				if err != nil {
					return nil, err
				}
				d.([]uint16)[i] = tensor.Float32ToHalf(float32(v))
				continue
			}
			v, err := parseIntPrefix(s)
			if err != nil {
				return nil, err
			}
			setInt(data, i, v)
		}
	}
	return newTensor(name, dt, x.Shape, data), nil
}

// parseFloatPrefix reads the longest numeric prefix of s after leading
// white space, as strtod does (hexadecimal integers included).
func parseFloatPrefix(s string) (float64, error) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	if v, err := strconv.ParseFloat(t, 64); err == nil || isRangeErr(err) {
		return v, nil
	}
	body := strings.TrimLeft(t, "+-")
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		end := 2
		for end < len(body) && strings.IndexByte("0123456789abcdefABCDEF", body[end]) >= 0 {
			end++
		}
		if end > 2 {
			u, err := strconv.ParseUint(body[2:end], 16, 64)
			if err == nil {
				v := float64(u)
				if strings.HasPrefix(t, "-") {
					v = -v
				}
				return v, nil
			}
		}
	}
	for end := len(t) - 1; end > 0; end-- {
		if v, err := strconv.ParseFloat(t[:end], 64); err == nil || isRangeErr(err) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("cannot cast %q to a number", s)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseIntPrefix reads an optionally signed decimal integer prefix, as
// strtoll does.
func parseIntPrefix(s string) (int64, error) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	end := 0
	if end < len(t) && (t[end] == '+' || t[end] == '-') {
		end++
	}
	digits := end
	for end < len(t) && t[end] >= '0' && t[end] <= '9' {
		end++
	}
	if end == digits {
		return 0, fmt.Errorf("cannot cast %q to an integer", s)
	}
	v, err := strconv.ParseInt(t[:end], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot cast %q to an integer: out of range", s)
	}
	return v, nil
}
