package xgboost

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// ubjDecoder reads Universal Binary JSON (ubjson.org, draft 12), the format
// of XGBoost's .ubj files: big-endian numbers, length-prefixed strings and
// keys, and optimized containers ('$' element type, '#' count) that XGBoost
// uses for its numeric arrays. Counts and lengths are checked against the
// bytes left, so a corrupt file fails instead of allocating without bound.
type ubjDecoder struct {
	data  []byte
	pos   int
	depth int
	boxed int // values left to box, see maxBoxed
}

func decodeUBJ(data []byte) (value, error) {
	d := ubjDecoder{data: data, boxed: maxBoxed(len(data))}
	v, err := d.value()
	if err != nil {
		return value{}, err
	}
	for d.pos < len(d.data) && d.data[d.pos] == 'N' { // trailing no-ops
		d.pos++
	}
	if d.pos != len(d.data) {
		return value{}, d.errorf("trailing data after the document")
	}
	return v, nil
}

func (d *ubjDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: UBJSON at byte %d: %s", errSyntax, d.pos, fmt.Sprintf(format, args...))
}

func (d *ubjDecoder) byte() (byte, error) {
	if d.pos >= len(d.data) {
		return 0, d.errorf("unexpected end of input")
	}
	c := d.data[d.pos]
	d.pos++
	return c, nil
}

// take returns the next n bytes.
func (d *ubjDecoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.data)-d.pos < n {
		return nil, d.errorf("unexpected end of input (%d bytes wanted, %d left)", n, len(d.data)-d.pos)
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// marker reads a type marker, skipping no-op markers.
func (d *ubjDecoder) marker() (byte, error) {
	for {
		c, err := d.byte()
		if err != nil || c != 'N' {
			return c, err
		}
	}
}

// numberSize is the payload size of a numeric marker, or 0.
func numberSize(m byte) int {
	switch m {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return 0
}

// numberPayload decodes the payload b of numeric marker m.
func numberPayload(m byte, b []byte) float64 {
	switch m {
	case 'i':
		return float64(int8(b[0]))
	case 'U', 'C':
		return float64(b[0])
	case 'I':
		return float64(int16(binary.BigEndian.Uint16(b)))
	case 'l':
		return float64(int32(binary.BigEndian.Uint32(b)))
	case 'L':
		return float64(int64(binary.BigEndian.Uint64(b)))
	case 'd':
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case 'D':
		return math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	return 0
}

// length reads a string length or a count of elements of at least one
// byte each, which the bytes left bound.
func (d *ubjDecoder) length() (int, error) {
	n, err := d.count()
	if err != nil {
		return 0, err
	}
	if n > len(d.data)-d.pos {
		return 0, d.errorf("length %d is more than the %d bytes left", n, len(d.data)-d.pos)
	}
	return n, nil
}

// count reads a count or length: an integer with its own marker.
func (d *ubjDecoder) count() (int, error) {
	m, err := d.marker()
	if err != nil {
		return 0, err
	}
	var n int64
	switch m {
	case 'i', 'U', 'I', 'l', 'L':
		b, err := d.take(numberSize(m))
		if err != nil {
			return 0, err
		}
		f := numberPayload(m, b)
		if m == 'L' {
			n = int64(binary.BigEndian.Uint64(b))
		} else {
			n = int64(f)
		}
	default:
		return 0, d.errorf("length has marker %q, want an integer", m)
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, d.errorf("length %d is out of range", n)
	}
	return int(n), nil
}

func (d *ubjDecoder) str() (string, error) {
	n, err := d.length()
	if err != nil {
		return "", err
	}
	b, err := d.take(n)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *ubjDecoder) value() (value, error) {
	m, err := d.marker()
	if err != nil {
		return value{}, err
	}
	return d.valueOf(m)
}

// valueOf decodes a value whose marker m has been read.
func (d *ubjDecoder) valueOf(m byte) (value, error) {
	switch m {
	case 'Z':
		return value{}, nil
	case 'T':
		return value{kind: kindBool, num: 1}, nil
	case 'F':
		return value{kind: kindBool}, nil
	case 'i', 'U', 'I', 'l', 'L', 'd', 'D', 'C':
		b, err := d.take(numberSize(m))
		if err != nil {
			return value{}, err
		}
		return value{kind: kindNumber, num: numberPayload(m, b)}, nil
	case 'H':
		s, err := d.str()
		if err != nil {
			return value{}, err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return value{}, d.errorf("invalid high-precision number %q", s)
		}
		return value{kind: kindNumber, num: f}, nil
	case 'S':
		s, err := d.str()
		return value{kind: kindString, ref: s}, err
	case '[':
		return d.container(false)
	case '{':
		return d.container(true)
	}
	return value{}, d.errorf("unknown marker %q", m)
}

// container decodes an array or an object after its opening marker.
func (d *ubjDecoder) container(isObject bool) (value, error) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		return value{}, d.errorf("nested deeper than %d levels", maxDepth)
	}
	var elemType byte
	count := -1
	if d.pos < len(d.data) && d.data[d.pos] == '$' {
		d.pos++
		t, err := d.byte()
		if err != nil {
			return value{}, err
		}
		if t == 'N' || t == ']' || t == '}' {
			return value{}, d.errorf("invalid element type %q", t)
		}
		elemType = t
		if d.pos >= len(d.data) || d.data[d.pos] != '#' {
			return value{}, d.errorf("typed container without a '#' count")
		}
	}
	if d.pos < len(d.data) && d.data[d.pos] == '#' {
		d.pos++
		n, err := d.count()
		if err != nil {
			return value{}, err
		}
		// Elements of null and boolean type take no bytes: the budget of
		// boxed values bounds them. Every other element takes a byte at
		// least.
		if elemType == 'Z' || elemType == 'T' || elemType == 'F' {
			if n > d.boxed {
				return value{}, d.errorf("more values than a model of %d bytes can hold", len(d.data))
			}
		} else if n > len(d.data)-d.pos {
			return value{}, d.errorf("count %d is more than the %d bytes left", n, len(d.data)-d.pos)
		}
		count = n
	}
	if !isObject && count >= 0 && numberSize(elemType) > 0 {
		size := numberSize(elemType)
		b, err := d.take(count * size)
		if err != nil {
			return value{}, err
		}
		nums := make([]float64, count)
		for i := range nums {
			nums[i] = numberPayload(elemType, b[i*size:])
		}
		return value{kind: kindNumbers, ref: nums}, nil
	}

	var keys []string
	var items []value
	numeric := !isObject
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			m, err := d.marker()
			if err != nil {
				return value{}, err
			}
			if (isObject && m == '}') || (!isObject && m == ']') {
				break
			}
			d.pos-- // not a marker of the value: give it back
		}
		if isObject {
			key, err := d.str()
			if err != nil {
				return value{}, err
			}
			keys = append(keys, key)
		}
		var item value
		var err error
		if elemType != 0 {
			item, err = d.valueOf(elemType)
		} else {
			item, err = d.value()
		}
		if err != nil {
			return value{}, err
		}
		numeric = numeric && item.kind == kindNumber
		d.boxed--
		if d.boxed < 0 {
			return value{}, d.errorf("more values than a model of %d bytes can hold", len(d.data))
		}
		items = append(items, item)
	}
	if isObject {
		return value{kind: kindObject, ref: &object{keys: keys, items: items}}, nil
	}
	if numeric && len(items) > 0 {
		nums := make([]float64, len(items))
		for i := range items {
			nums[i] = items[i].num
		}
		return value{kind: kindNumbers, ref: nums}, nil
	}
	return value{kind: kindArray, ref: items}, nil
}
