// Package tensor is the data model of inference: typed, row-major,
// n-dimensional arrays shared by the runtimes (runtime/...) and the wire
// protocols (serving/). A Tensor holds its elements in a Go slice of the
// matching element type, so a runtime works on []float32 directly and a
// protocol decodes straight into it.
package tensor

import (
	"errors"
	"fmt"
	"strings"
)

// DType is an element type. The names are the Open Inference Protocol's.
type DType uint8

// The element types. String holds OIP BYTES and ONNX string elements (a Go
// string may carry arbitrary bytes). Float16 elements are kept as their IEEE
// 754 half-precision bit patterns in a []uint16.
const (
	Invalid DType = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	Float16
	Float32
	Float64
	String
)

var dtypeNames = [...]string{
	Invalid: "INVALID", Bool: "BOOL", Uint8: "UINT8", Uint16: "UINT16", Uint32: "UINT32",
	Uint64: "UINT64", Int8: "INT8", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	Float16: "FP16", Float32: "FP32", Float64: "FP64", String: "BYTES",
}

// String returns the OIP name of d ("FP32", "INT64", "BYTES", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", d)
}

// ErrDType reports an unknown or unsupported element type.
var ErrDType = errors.New("unsupported datatype")

// ParseDType parses an OIP datatype name (case-insensitive).
func ParseDType(s string) (DType, error) {
	for d, n := range dtypeNames {
		if d != int(Invalid) && strings.EqualFold(n, s) {
			return DType(d), nil
		}
	}
	return Invalid, fmt.Errorf("%w %q", ErrDType, s)
}

// Size is the size in bytes of one element (0 for String).
func (d DType) Size() int {
	switch d {
	case Bool, Uint8, Int8:
		return 1
	case Uint16, Int16, Float16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64:
		return 8
	}
	return 0
}

// IsFloat, IsInteger report the kind of d.
func (d DType) IsFloat() bool { return d == Float16 || d == Float32 || d == Float64 }

// IsInteger reports whether d is a signed or unsigned integer type.
func (d DType) IsInteger() bool { return d >= Uint8 && d <= Int64 }

// Tensor is a named, typed, row-major n-dimensional array. Data is one of
// []bool, []uint8, []uint16 (also Float16 bits), []uint32, []uint64, []int8,
// []int16, []int32, []int64, []float32, []float64 or []string, matching
// DType, with exactly NumElements(Shape) elements. A scalar has an empty
// Shape and one element.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  any
}

// ErrShape reports data that does not fit a shape.
var ErrShape = errors.New("shape mismatch")

// NumElements is the product of shape (1 for a scalar). It returns -1 when a
// dimension is negative or the product overflows int.
func NumElements(shape []int64) int {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > (1<<62)/d {
			return -1
		}
		n *= d
	}
	return int(n)
}

// New returns a zero-filled tensor of the given type and shape.
func New(name string, dt DType, shape ...int64) (*Tensor, error) {
	n := NumElements(shape)
	if n < 0 {
		return nil, fmt.Errorf("%w: invalid shape %v", ErrShape, shape)
	}
	data, err := MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	return &Tensor{Name: name, DType: dt, Shape: append([]int64(nil), shape...), Data: data}, nil
}

// MakeSlice allocates a zeroed slice of n elements of type dt.
func MakeSlice(dt DType, n int) (any, error) {
	switch dt {
	case Bool:
		return make([]bool, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Uint16, Float16:
		return make([]uint16, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Int8:
		return make([]int8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Int64:
		return make([]int64, n), nil
	case Float32:
		return make([]float32, n), nil
	case Float64:
		return make([]float64, n), nil
	case String:
		return make([]string, n), nil
	}
	return nil, fmt.Errorf("%w %v", ErrDType, dt)
}

// FromSlice wraps data (one of the slice types above) in a tensor, inferring
// the DType. With no shape the tensor is one-dimensional.
func FromSlice(name string, data any, shape ...int64) (*Tensor, error) {
	dt, n := sliceType(data)
	if dt == Invalid {
		return nil, fmt.Errorf("%w: Go type %T", ErrDType, data)
	}
	if len(shape) == 0 {
		shape = []int64{int64(n)}
	}
	if NumElements(shape) != n {
		return nil, fmt.Errorf("%w: %d elements do not fill shape %v", ErrShape, n, shape)
	}
	return &Tensor{Name: name, DType: dt, Shape: append([]int64(nil), shape...), Data: data}, nil
}

func sliceType(data any) (DType, int) {
	switch s := data.(type) {
	case []bool:
		return Bool, len(s)
	case []uint8:
		return Uint8, len(s)
	case []uint16:
		return Uint16, len(s)
	case []uint32:
		return Uint32, len(s)
	case []uint64:
		return Uint64, len(s)
	case []int8:
		return Int8, len(s)
	case []int16:
		return Int16, len(s)
	case []int32:
		return Int32, len(s)
	case []int64:
		return Int64, len(s)
	case []float32:
		return Float32, len(s)
	case []float64:
		return Float64, len(s)
	case []string:
		return String, len(s)
	}
	return Invalid, 0
}

// Len is the number of elements held in Data.
func (t *Tensor) Len() int {
	_, n := sliceType(t.Data)
	return n
}

// Validate checks that Data matches DType and fills Shape exactly.
func (t *Tensor) Validate() error {
	dt, n := sliceType(t.Data)
	if dt == Invalid {
		return fmt.Errorf("tensor %q: %w: Go type %T", t.Name, ErrDType, t.Data)
	}
	if dt != t.DType && !(t.DType == Float16 && dt == Uint16) {
		return fmt.Errorf("tensor %q: data of type %v for datatype %v", t.Name, dt, t.DType)
	}
	if want := NumElements(t.Shape); want != n {
		return fmt.Errorf("tensor %q: %w: %d elements for shape %v", t.Name, ErrShape, n, t.Shape)
	}
	return nil
}

// Rows is the size of the first dimension (1 for a scalar).
func (t *Tensor) Rows() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return int(t.Shape[0])
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := *t
	c.Shape = append([]int64(nil), t.Shape...)
	c.Data = cloneSlice(t.Data)
	return &c
}

func cloneSlice(data any) any {
	switch s := data.(type) {
	case []bool:
		return append([]bool(nil), s...)
	case []uint8:
		return append([]uint8(nil), s...)
	case []uint16:
		return append([]uint16(nil), s...)
	case []uint32:
		return append([]uint32(nil), s...)
	case []uint64:
		return append([]uint64(nil), s...)
	case []int8:
		return append([]int8(nil), s...)
	case []int16:
		return append([]int16(nil), s...)
	case []int32:
		return append([]int32(nil), s...)
	case []int64:
		return append([]int64(nil), s...)
	case []float32:
		return append([]float32(nil), s...)
	case []float64:
		return append([]float64(nil), s...)
	case []string:
		return append([]string(nil), s...)
	}
	return data
}

// Float64s returns the elements of a numeric or boolean tensor as float64
// (a fresh slice). Strings are an error.
func (t *Tensor) Float64s() ([]float64, error) {
	switch s := t.Data.(type) {
	case []float64:
		return append([]float64(nil), s...), nil
	case []float32:
		return convert(s), nil
	case []int64:
		return convert(s), nil
	case []int32:
		return convert(s), nil
	case []int16:
		return convert(s), nil
	case []int8:
		return convert(s), nil
	case []uint64:
		return convert(s), nil
	case []uint32:
		return convert(s), nil
	case []uint16:
		if t.DType == Float16 {
			out := make([]float64, len(s))
			for i, h := range s {
				out[i] = float64(HalfToFloat32(h))
			}
			return out, nil
		}
		return convert(s), nil
	case []uint8:
		return convert(s), nil
	case []bool:
		out := make([]float64, len(s))
		for i, b := range s {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: %w: %v is not numeric", t.Name, ErrDType, t.DType)
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

func convert[T number](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
