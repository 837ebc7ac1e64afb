package serving

import (
	"encoding/binary"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

// Raw tensor contents are what the binary tensor data extension (REST) and
// raw_input_contents / raw_output_contents (gRPC) carry: the elements in
// row-major order, little-endian, BOOL as one byte, BYTES as a 4-byte
// little-endian length followed by the bytes, for each element.

// decodeRaw decodes raw contents of n elements of type dt for input name.
func decodeRaw(name string, dt tensor.DType, b []byte, n int) (any, error) {
	if dt == tensor.String {
		out := make([]string, 0, n)
		for len(b) > 0 {
			if len(b) < 4 {
				return nil, badRequest("input %q: truncated BYTES element length", name)
			}
			l := binary.LittleEndian.Uint32(b)
			b = b[4:]
			if uint64(l) > uint64(len(b)) {
				return nil, badRequest("input %q: BYTES element of %d bytes overruns the data", name, l)
			}
			if len(out) == n {
				return nil, badRequest("input %q: more than the %d BYTES elements its shape holds", name, n)
			}
			out = append(out, string(b[:l]))
			b = b[l:]
		}
		if len(out) != n {
			return nil, badRequest("input %q: %d BYTES elements for a shape of %d elements", name, len(out), n)
		}
		return out, nil
	}
	size := dt.Size()
	if size == 0 {
		return nil, badRequest("input %q: unsupported datatype %v", name, dt)
	}
	if len(b) != n*size {
		return nil, badRequest("input %q: %d bytes of %v data for a shape of %d elements (want %d bytes)", name, len(b), dt, n, n*size)
	}
	le := binary.LittleEndian
	switch dt {
	case tensor.Bool:
		d := make([]bool, n)
		for i := range d {
			d[i] = b[i] != 0
		}
		return d, nil
	case tensor.Uint8:
		return append([]uint8(nil), b...), nil
	case tensor.Int8:
		d := make([]int8, n)
		for i := range d {
			d[i] = int8(b[i])
		}
		return d, nil
	case tensor.Uint16, tensor.Float16:
		d := make([]uint16, n)
		for i := range d {
			d[i] = le.Uint16(b[2*i:])
		}
		return d, nil
	case tensor.Int16:
		d := make([]int16, n)
		for i := range d {
			d[i] = int16(le.Uint16(b[2*i:]))
		}
		return d, nil
	case tensor.Uint32:
		d := make([]uint32, n)
		for i := range d {
			d[i] = le.Uint32(b[4*i:])
		}
		return d, nil
	case tensor.Int32:
		d := make([]int32, n)
		for i := range d {
			d[i] = int32(le.Uint32(b[4*i:]))
		}
		return d, nil
	case tensor.Float32:
		d := make([]float32, n)
		for i := range d {
			d[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return d, nil
	case tensor.Uint64:
		d := make([]uint64, n)
		for i := range d {
			d[i] = le.Uint64(b[8*i:])
		}
		return d, nil
	case tensor.Int64:
		d := make([]int64, n)
		for i := range d {
			d[i] = int64(le.Uint64(b[8*i:]))
		}
		return d, nil
	case tensor.Float64:
		d := make([]float64, n)
		for i := range d {
			d[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return d, nil
	}
	return nil, badRequest("input %q: unsupported datatype %v", name, dt)
}

// rawSize is the size of t's raw contents.
func rawSize(t *tensor.Tensor) int {
	if s, ok := t.Data.([]string); ok {
		n := 4 * len(s)
		for _, e := range s {
			n += len(e)
		}
		return n
	}
	return t.Len() * t.DType.Size()
}

// appendRaw appends t's raw contents to dst.
func appendRaw(dst []byte, t *tensor.Tensor) []byte {
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []bool:
		for _, v := range d {
			if v {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
	case []uint8:
		dst = append(dst, d...)
	case []int8:
		for _, v := range d {
			dst = append(dst, byte(v))
		}
	case []uint16:
		for _, v := range d {
			dst = le.AppendUint16(dst, v)
		}
	case []int16:
		for _, v := range d {
			dst = le.AppendUint16(dst, uint16(v))
		}
	case []uint32:
		for _, v := range d {
			dst = le.AppendUint32(dst, v)
		}
	case []int32:
		for _, v := range d {
			dst = le.AppendUint32(dst, uint32(v))
		}
	case []float32:
		for _, v := range d {
			dst = le.AppendUint32(dst, math.Float32bits(v))
		}
	case []uint64:
		for _, v := range d {
			dst = le.AppendUint64(dst, v)
		}
	case []int64:
		for _, v := range d {
			dst = le.AppendUint64(dst, uint64(v))
		}
	case []float64:
		for _, v := range d {
			dst = le.AppendUint64(dst, math.Float64bits(v))
		}
	case []string:
		for _, v := range d {
			dst = le.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
	}
	return dst
}
