package xgboost

import (
	"fmt"
	"math"
	"strconv"

	"github.com/kiln-ml/kiln/runtime"
)

// kind is the type of a decoded document value.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
	// kindNumbers is an array whose elements are all numbers: a typed UBJ
	// array, or a JSON array of numbers. It keeps them unboxed in nums.
	kindNumbers
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray, kindNumbers:
		return "array"
	case kindObject:
		return "object"
	}
	return "unknown"
}

// value is one node of a decoded JSON or UBJSON document; both decoders
// produce the same tree, so the model is read by one code path. Numbers are
// kept as float64: JSON reals are rounded to float32 as XGBoost reads them
// (its JSON numbers are single precision), integers are exact up to 2^53,
// far beyond any count or index a model holds. A value is small (32 bytes)
// because a decoder's memory is bounded by a multiple of its input.
type value struct {
	kind kind
	num  float64 // number; 1 or 0 for a boolean
	// ref holds the payload: a string (kindString), []value (kindArray),
	// *object (kindObject) or []float64 (kindNumbers).
	ref any
}

type object struct {
	keys  []string
	items []value
}

func (v *value) str() string {
	s, _ := v.ref.(string)
	return s
}

func (v *value) array() []value {
	a, _ := v.ref.([]value)
	return a
}

func (v *value) numberArray() []float64 {
	a, _ := v.ref.([]float64)
	return a
}

// get returns the member key of an object.
func (v *value) get(key string) (*value, bool) {
	o, ok := v.ref.(*object)
	if v.kind != kindObject || !ok {
		return nil, false
	}
	for i, k := range o.keys {
		if k == key {
			return &o.items[i], true
		}
	}
	return nil, false
}

// maxBoxed bounds the number of values a decoder keeps boxed (everything
// but the elements of numeric arrays) for an input of n bytes. Real models
// box about one value per 20 bytes (a little more with many short feature
// names); the allowance keeps a hostile document, such as an array of a
// million empty arrays, from costing more than a few times its own size.
func maxBoxed(n int) int { return 1<<16 + n/4 }

// loc is the location of a value in the document, for error messages.
type loc string

func (p loc) at(key string) loc { return loc(string(p) + "/" + key) }

// fieldError reports a model field that is missing or malformed.
func fieldError(p loc, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", runtime.ErrInvalidModel, p, fmt.Sprintf(format, args...))
}

// member returns the required member key of object v.
func member(v *value, p loc, key string) (*value, error) {
	if v.kind != kindObject {
		return nil, fieldError(p, "is a %v, want an object", v.kind)
	}
	m, ok := v.get(key)
	if !ok {
		return nil, fieldError(p.at(key), "missing")
	}
	return m, nil
}

func (v *value) asObject(p loc) error {
	if v.kind != kindObject {
		return fieldError(p, "is a %v, want an object", v.kind)
	}
	return nil
}

func (v *value) asString(p loc) (string, error) {
	if v.kind != kindString {
		return "", fieldError(p, "is a %v, want a string", v.kind)
	}
	return v.str(), nil
}

// asInt reads an integer. XGBoost writes most counts as strings ("42"), so
// a string holding an integer is accepted too.
func (v *value) asInt(p loc, lo, hi int64) (int64, error) {
	var n int64
	switch v.kind {
	case kindNumber:
		if v.num != math.Trunc(v.num) || math.Abs(v.num) > 1<<53 {
			return 0, fieldError(p, "%v is not an integer", v.num)
		}
		n = int64(v.num)
	case kindString:
		var err error
		if n, err = strconv.ParseInt(v.str(), 10, 64); err != nil {
			return 0, fieldError(p, "%q is not an integer", v.str())
		}
	default:
		return 0, fieldError(p, "is a %v, want an integer", v.kind)
	}
	if n < lo || n > hi {
		return 0, fieldError(p, "%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func (v *value) asFloat(p loc) (float64, error) {
	if v.kind != kindNumber {
		return 0, fieldError(p, "is a %v, want a number", v.kind)
	}
	return v.num, nil
}

// numbers returns the elements of a numeric array. An empty array of either
// kind is fine.
func (v *value) numbers(p loc) ([]float64, error) {
	switch v.kind {
	case kindNumbers:
		return v.numberArray(), nil
	case kindArray:
		items := v.array()
		if len(items) == 0 {
			return nil, nil
		}
		out := make([]float64, len(items))
		for i := range items {
			it := &items[i]
			if it.kind != kindNumber && it.kind != kindBool {
				return nil, fieldError(p, "element %d is a %v, want a number", i, it.kind)
			}
			out[i] = it.num
		}
		return out, nil
	}
	return nil, fieldError(p, "is a %v, want an array of numbers", v.kind)
}

// ints returns the elements of a numeric array as integers in [lo, hi].
func (v *value) ints(p loc, lo, hi int64) ([]int32, error) {
	nums, err := v.numbers(p)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(nums))
	for i, f := range nums {
		if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return nil, fieldError(p, "element %d: %v is not an integer in [%d, %d]", i, f, lo, hi)
		}
		out[i] = int32(f)
	}
	return out, nil
}

// float32s returns the elements of a numeric array rounded to float32.
func (v *value) float32s(p loc) ([]float32, error) {
	nums, err := v.numbers(p)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(nums))
	for i, f := range nums {
		out[i] = float32(f)
	}
	return out, nil
}

// strings returns the elements of an array of strings.
func (v *value) strings(p loc) ([]string, error) {
	switch {
	case v.kind == kindNumbers && len(v.numberArray()) == 0:
		return nil, nil
	case v.kind != kindArray:
		return nil, fieldError(p, "is a %v, want an array of strings", v.kind)
	}
	items := v.array()
	out := make([]string, len(items))
	for i := range items {
		if items[i].kind != kindString {
			return nil, fieldError(p, "element %d is a %v, want a string", i, items[i].kind)
		}
		out[i] = items[i].str()
	}
	return out, nil
}

// length is the number of elements of an array value.
func (v *value) length() int {
	if v.kind == kindNumbers {
		return len(v.numberArray())
	}
	return len(v.array())
}
