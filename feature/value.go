package feature

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The encoding of a row's feature values in the online store: a format
// byte (1), the number of values as a uvarint, then per value a tag byte
// and its payload:
//
//	0 null
//	1 int64:   zig-zag varint
//	2 float64: 8 bytes, IEEE 754 little-endian
//	3 string:  uvarint length, then the bytes
//	4 false, 5 true
//
// Values are in the order of the view's features; DecodeValues checks
// each tag against the feature's type.
const valueFormat = 1

const (
	tagNull = iota
	tagInt
	tagFloat
	tagString
	tagFalse
	tagTrue
)

// EncodeValues encodes one value per feature of v (nil for a null);
// values are converted with CoerceValue.
func EncodeValues(v *FeatureView, vals []any) ([]byte, error) {
	return appendValues(make([]byte, 0, 2+9*len(vals)), v, vals)
}

func appendValues(b []byte, v *FeatureView, vals []any) ([]byte, error) {
	fs := v.Spec.Features
	if len(vals) != len(fs) {
		return nil, fmt.Errorf("feature: %d values for the %d features of %s", len(vals), len(fs), v.Metadata.Name)
	}
	b = append(b, valueFormat)
	b = binary.AppendUvarint(b, uint64(len(vals)))
	for i, x := range vals {
		if x == nil {
			b = append(b, tagNull)
			continue
		}
		c, err := fastCoerce(fs[i].Type, x)
		if err != nil {
			return nil, fmt.Errorf("feature %s: %w", fs[i].Name, err)
		}
		switch c := c.(type) {
		case int64:
			b = append(b, tagInt)
			b = binary.AppendVarint(b, c)
		case float64:
			b = append(b, tagFloat)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c))
		case string:
			b = append(b, tagString)
			b = binary.AppendUvarint(b, uint64(len(c)))
			b = append(b, c...)
		case bool:
			if c {
				b = append(b, tagTrue)
			} else {
				b = append(b, tagFalse)
			}
		}
	}
	return b, nil
}

// fastCoerce is CoerceValue without its conversions for values that
// already have the feature's Go type.
func fastCoerce(typ string, x any) (any, error) {
	switch x.(type) {
	case int64:
		if typ == TypeInt64 {
			return x, nil
		}
	case float64:
		if typ == TypeFloat64 {
			return x, nil
		}
	case string:
		if typ == TypeString {
			return x, nil
		}
	case bool:
		if typ == TypeBool {
			return x, nil
		}
	}
	return CoerceValue(typ, x)
}

var errValues = errors.New("feature: malformed encoded values")

// DecodeValues decodes values encoded by EncodeValues for v: one per
// feature, nil for a null, int64, float64, string or bool by the
// feature's type.
func DecodeValues(v *FeatureView, b []byte) ([]any, error) {
	fs := v.Spec.Features
	if len(b) == 0 || b[0] != valueFormat {
		return nil, errValues
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errValues
	}
	b = b[k:]
	if n != uint64(len(fs)) {
		return nil, fmt.Errorf("feature: stored row has %d values, view %s has %d features (materialize it again)", n, v.Metadata.Name, len(fs))
	}
	out := make([]any, len(fs))
	for i := range fs {
		if len(b) == 0 {
			return nil, errValues
		}
		tag := b[0]
		b = b[1:]
		want := fs[i].Type
		switch tag {
		case tagNull:
			continue
		case tagInt:
			if want != TypeInt64 {
				return nil, typeErr(fs[i])
			}
			x, k := binary.Varint(b)
			if k <= 0 {
				return nil, errValues
			}
			out[i], b = x, b[k:]
		case tagFloat:
			if want != TypeFloat64 {
				return nil, typeErr(fs[i])
			}
			if len(b) < 8 {
				return nil, errValues
			}
			out[i], b = math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:]
		case tagString:
			if want != TypeString {
				return nil, typeErr(fs[i])
			}
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return nil, errValues
			}
			b = b[k:]
			out[i], b = string(b[:l]), b[l:]
		case tagFalse, tagTrue:
			if want != TypeBool {
				return nil, typeErr(fs[i])
			}
			out[i] = tag == tagTrue
		default:
			return nil, errValues
		}
	}
	if len(b) != 0 {
		return nil, errValues
	}
	return out, nil
}

func typeErr(f Feature) error {
	return fmt.Errorf("feature: stored value of %s is not a %s (materialize the view again)", f.Name, f.Type)
}
