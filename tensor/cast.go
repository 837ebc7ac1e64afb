package tensor

import (
	"fmt"
	"math"
	"strconv"
)

// Cast returns t converted to dt (t itself when it already has that type).
// Numeric conversions follow Go's conversion rules (floats truncate toward
// zero into integers; NaN into an integer is 0), booleans become 0/1 and
// any non-zero number becomes true; strings parse as numbers (ONNX Cast
// semantics) and numbers format as their shortest representation.
func Cast(t *Tensor, dt DType) (*Tensor, error) {
	if t.DType == dt {
		return t, nil
	}
	out := &Tensor{Name: t.Name, DType: dt, Shape: append([]int64(nil), t.Shape...)}
	n := t.Len()
	if dt == String {
		s := make([]string, n)
		if t.DType == Bool {
			for i, b := range t.Data.([]bool) {
				s[i] = strconv.FormatBool(b)
			}
		} else {
			f, err := t.Float64s()
			if err != nil {
				return nil, err
			}
			for i, v := range f {
				s[i] = formatNumber(v, t.DType)
			}
		}
		out.Data = s
		return out, nil
	}
	var src []float64
	if t.DType == String {
		src = make([]float64, n)
		for i, s := range t.Data.([]string) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				switch s {
				case "true", "True":
					v = 1
				case "false", "False":
					v = 0
				default:
					return nil, fmt.Errorf("tensor %q: cannot cast %q to %v", t.Name, s, dt)
				}
			}
			src[i] = v
		}
	} else {
		// Integer to integer keeps exact 64-bit values.
		if t.DType.IsInteger() && (dt.IsInteger()) {
			return castInt(t, dt)
		}
		var err error
		if src, err = t.Float64s(); err != nil {
			return nil, err
		}
	}
	data, err := MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	switch d := data.(type) {
	case []bool:
		for i, v := range src {
			d[i] = v != 0
		}
	case []float32:
		for i, v := range src {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, src)
	case []uint16:
		if dt == Float16 {
			for i, v := range src {
				d[i] = Float32ToHalf(float32(v))
			}
		} else {
			fillInt(d, src)
		}
	case []int8:
		fillInt(d, src)
	case []int16:
		fillInt(d, src)
	case []int32:
		fillInt(d, src)
	case []int64:
		fillInt(d, src)
	case []uint8:
		fillInt(d, src)
	case []uint32:
		fillInt(d, src)
	case []uint64:
		fillInt(d, src)
	}
	out.Data = data
	return out, nil
}

func formatNumber(v float64, from DType) string {
	if from.IsInteger() {
		return strconv.FormatInt(int64(v), 10)
	}
	bits := 64
	if from == Float32 || from == Float16 {
		bits = 32
	}
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "INF"
	case math.IsInf(v, -1):
		return "-INF"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}

func fillInt[T ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64](d []T, src []float64) {
	for i, v := range src {
		if math.IsNaN(v) {
			continue
		}
		d[i] = T(int64(v))
	}
}

func castInt(t *Tensor, dt DType) (*Tensor, error) {
	n := t.Len()
	v := make([]int64, n)
	switch s := t.Data.(type) {
	case []int8:
		for i, x := range s {
			v[i] = int64(x)
		}
	case []int16:
		for i, x := range s {
			v[i] = int64(x)
		}
	case []int32:
		for i, x := range s {
			v[i] = int64(x)
		}
	case []int64:
		copy(v, s)
	case []uint8:
		for i, x := range s {
			v[i] = int64(x)
		}
	case []uint16:
		for i, x := range s {
			v[i] = int64(x)
		}
	case []uint32:
		for i, x := range s {
			v[i] = int64(x)
		}
	case []uint64:
		for i, x := range s {
			v[i] = int64(x)
		}
	}
	data, err := MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	switch d := data.(type) {
	case []int8:
		for i, x := range v {
			d[i] = int8(x)
		}
	case []int16:
		for i, x := range v {
			d[i] = int16(x)
		}
	case []int32:
		for i, x := range v {
			d[i] = int32(x)
		}
	case []int64:
		copy(d, v)
	case []uint8:
		for i, x := range v {
			d[i] = uint8(x)
		}
	case []uint16:
		for i, x := range v {
			d[i] = uint16(x)
		}
	case []uint32:
		for i, x := range v {
			d[i] = uint32(x)
		}
	case []uint64:
		for i, x := range v {
			d[i] = uint64(x)
		}
	}
	return &Tensor{Name: t.Name, DType: dt, Shape: append([]int64(nil), t.Shape...), Data: data}, nil
}

// HalfToFloat32 converts IEEE 754 half-precision bits to a float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for frac&0x400 == 0 {
			frac <<= 1
			exp--
		}
		exp++
		frac &= 0x3ff
		fallthrough
	case exp < 31:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	default: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
}

// Float32ToHalf converts a float32 to IEEE 754 half-precision bits, rounding
// to nearest even.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	frac := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		frac |= 0x800000
		shift := uint32(14 - exp)
		h := frac >> shift
		rem := frac & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}
