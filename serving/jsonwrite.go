package serving

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/tensor"
)

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat appends f in the shortest form that reads back as the same
// value of the given bit size. Non-finite values are written as NaN,
// Infinity and -Infinity, as Python's json module (and so MLflow and
// tritonclient) write and read them.
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	// Python's repr: fixed notation for 1e-4 <= |f| < 1e16, always with a
	// fraction, scientific notation otherwise.
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		return strconv.AppendFloat(b, f, 'e', -1, bits)
	}
	if f == math.Trunc(f) {
		b = strconv.AppendInt(b, int64(f), 10)
		if f == 0 && math.Signbit(f) {
			b = append(b[:len(b)-1], '-', '0')
		}
		return append(b, '.', '0')
	}
	return strconv.AppendFloat(b, f, 'f', -1, bits)
}

// appendElem appends element i of t as a JSON value. FP32 and FP16
// values are written in the shortest form of their float bits: 32 (the
// shortest that reads back as the same float32) or 64 (the float64 they
// widen to, as Python prints a numpy float32).
func appendElem(b []byte, t *tensor.Tensor, i, bits int) []byte {
	switch d := t.Data.(type) {
	case []float32:
		return appendFloat(b, float64(d[i]), bits)
	case []float64:
		return appendFloat(b, d[i], 64)
	case []int64:
		return strconv.AppendInt(b, d[i], 10)
	case []int32:
		return strconv.AppendInt(b, int64(d[i]), 10)
	case []int16:
		return strconv.AppendInt(b, int64(d[i]), 10)
	case []int8:
		return strconv.AppendInt(b, int64(d[i]), 10)
	case []uint64:
		return strconv.AppendUint(b, d[i], 10)
	case []uint32:
		return strconv.AppendUint(b, uint64(d[i]), 10)
	case []uint16:
		if t.DType == tensor.Float16 {
			return appendFloat(b, float64(tensor.HalfToFloat32(d[i])), bits)
		}
		return strconv.AppendUint(b, uint64(d[i]), 10)
	case []uint8:
		return strconv.AppendUint(b, uint64(d[i]), 10)
	case []bool:
		return strconv.AppendBool(b, d[i])
	case []string:
		return appendJSONString(b, d[i])
	}
	return append(b, "null"...)
}

// appendFlat appends elements [lo, hi) of t as a flat JSON array. The
// common types get a tight loop.
func appendFlat(b []byte, t *tensor.Tensor, lo, hi, bits int) []byte {
	b = append(b, '[')
	switch d := t.Data.(type) {
	case []float32:
		for i := lo; i < hi; i++ {
			if i > lo {
				b = append(b, ',')
			}
			b = appendFloat(b, float64(d[i]), bits)
		}
	case []float64:
		for i := lo; i < hi; i++ {
			if i > lo {
				b = append(b, ',')
			}
			b = appendFloat(b, d[i], 64)
		}
	case []int64:
		for i := lo; i < hi; i++ {
			if i > lo {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d[i], 10)
		}
	default:
		for i := lo; i < hi; i++ {
			if i > lo {
				b = append(b, ',')
			}
			b = appendElem(b, t, i, bits)
		}
	}
	return append(b, ']')
}

// appendNested appends elements of t starting at offset as nested JSON
// arrays of the given shape (a scalar for an empty shape). It returns the
// offset after the last element written.
func appendNested(b []byte, t *tensor.Tensor, shape []int64, off, bits int) ([]byte, int) {
	if len(shape) == 0 {
		return appendElem(b, t, off, bits), off + 1
	}
	if len(shape) == 1 {
		n := int(shape[0])
		return appendFlat(b, t, off, off+n, bits), off + n
	}
	b = append(b, '[')
	for i := int64(0); i < shape[0]; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b, off = appendNested(b, t, shape[1:], off, bits)
	}
	return append(b, ']'), off
}
