package xgboost

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds the nesting of decoded documents. An XGBoost model nests
// about six levels deep; anything much deeper is not a model.
const maxDepth = 64

// errSyntax is wrapped by every decoding error of both document formats.
var errSyntax = errors.New("malformed document")

// jsonDecoder reads the JSON that XGBoost writes: standard JSON plus the
// NaN, Infinity and -Infinity literals its writer emits for non-finite
// numbers.
type jsonDecoder struct {
	data  []byte
	pos   int
	depth int
	boxed int // values left to box, see maxBoxed
}

func decodeJSON(data []byte) (value, error) {
	d := jsonDecoder{data: data, boxed: maxBoxed(len(data))}
	v, err := d.value()
	if err != nil {
		return value{}, err
	}
	d.space()
	if d.pos != len(d.data) {
		return value{}, d.errorf("trailing data after the document")
	}
	return v, nil
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: JSON at byte %d: %s", errSyntax, d.pos, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value() (value, error) {
	d.space()
	if d.pos >= len(d.data) {
		return value{}, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, err := d.string()
		return value{kind: kindString, ref: s}, err
	case c == 't':
		return value{kind: kindBool, num: 1}, d.literal("true")
	case c == 'f':
		return value{kind: kindBool}, d.literal("false")
	case c == 'n':
		return value{}, d.literal("null")
	case isNumberStart(c):
		f, err := d.number()
		return value{kind: kindNumber, num: f}, err
	default:
		return value{}, d.errorf("unexpected character %q", c)
	}
}

func isNumberStart(c byte) bool {
	return c == '-' || c == '+' || (c >= '0' && c <= '9') || c == 'N' || c == 'I'
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.errorf("invalid literal, want %q", word)
	}
	d.pos += len(word)
	return nil
}

// box accounts for one more boxed value.
func (d *jsonDecoder) box() error {
	d.boxed--
	if d.boxed < 0 {
		return d.errorf("more values than a model of %d bytes can hold", len(d.data))
	}
	return nil
}

func (d *jsonDecoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.errorf("nested deeper than %d levels", maxDepth)
	}
	return nil
}

func (d *jsonDecoder) object() (value, error) {
	if err := d.enter(); err != nil {
		return value{}, err
	}
	defer func() { d.depth-- }()
	d.pos++ // {
	o := &object{}
	v := value{kind: kindObject, ref: o}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return v, nil
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return value{}, d.errorf("want an object key")
		}
		key, err := d.string()
		if err != nil {
			return value{}, err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return value{}, d.errorf("want ':' after object key")
		}
		d.pos++
		item, err := d.value()
		if err != nil {
			return value{}, err
		}
		if err := d.box(); err != nil {
			return value{}, err
		}
		o.keys = append(o.keys, key)
		o.items = append(o.items, item)
		d.space()
		if d.pos >= len(d.data) {
			return value{}, d.errorf("unterminated object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return v, nil
		default:
			return value{}, d.errorf("want ',' or '}' in object")
		}
	}
}

// array decodes an array, keeping a run of numbers unboxed: tree models are
// mostly long arrays of numbers.
func (d *jsonDecoder) array() (value, error) {
	if err := d.enter(); err != nil {
		return value{}, err
	}
	defer func() { d.depth-- }()
	d.pos++ // [
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return value{kind: kindArray, ref: []value(nil)}, nil
	}
	numeric := true
	var nums []float64
	var items []value
	for {
		d.space()
		if d.pos >= len(d.data) {
			return value{}, d.errorf("unterminated array")
		}
		if numeric && isNumberStart(d.data[d.pos]) {
			f, err := d.number()
			if err != nil {
				return value{}, err
			}
			nums = append(nums, f)
		} else {
			if numeric {
				numeric = false
				d.boxed -= len(nums)
				items = make([]value, len(nums), len(nums)+1)
				for i, f := range nums {
					items[i] = value{kind: kindNumber, num: f}
				}
				nums = nil
			}
			item, err := d.value()
			if err != nil {
				return value{}, err
			}
			if err := d.box(); err != nil {
				return value{}, err
			}
			items = append(items, item)
		}
		d.space()
		if d.pos >= len(d.data) {
			return value{}, d.errorf("unterminated array")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			if numeric {
				return value{kind: kindNumbers, ref: nums}, nil
			}
			return value{kind: kindArray, ref: items}, nil
		default:
			return value{}, d.errorf("want ',' or ']' in array")
		}
	}
}

// number reads a JSON number, or one of NaN, Infinity, -Infinity. Reals are
// rounded to float32, as XGBoost stores them.
func (d *jsonDecoder) number() (float64, error) {
	start := d.pos
	switch c := d.data[d.pos]; {
	case c == 'N' || c == 'I' || (len(d.data)-d.pos > 1 && (c == '-' || c == '+') && d.data[d.pos+1] == 'I'):
		for _, lit := range [...]struct {
			s string
			v float64
		}{{"NaN", math.NaN()}, {"Infinity", math.Inf(1)}, {"-Infinity", math.Inf(-1)}, {"+Infinity", math.Inf(1)}} {
			if bytes.HasPrefix(d.data[d.pos:], []byte(lit.s)) {
				d.pos += len(lit.s)
				return lit.v, nil
			}
		}
		return 0, d.errorf("invalid literal")
	}
	// Integers, most of a tree's numbers, are read here; reals and
	// anything unusual go to strconv.
	neg := d.data[d.pos] == '-'
	if neg {
		d.pos++
	}
	var n uint64
	digits := 0
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' && digits < 18 {
		n = n*10 + uint64(d.data[d.pos]-'0')
		d.pos++
		digits++
	}
	if digits > 0 && (d.pos == len(d.data) || !isNumberByte(d.data[d.pos])) {
		if neg {
			return -float64(n), nil
		}
		return float64(n), nil
	}
	d.pos = start
	real := false
	for d.pos < len(d.data) && isNumberByte(d.data[d.pos]) {
		c := d.data[d.pos]
		real = real || c == '.' || c == 'e' || c == 'E'
		d.pos++
	}
	b := d.data[start:d.pos]
	if len(b) == 0 {
		return 0, d.errorf("invalid number")
	}
	// strconv does not keep its argument, so the bytes need no copy.
	s := unsafe.String(&b[0], len(b))
	if !real {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return float64(n), nil
		}
	}
	f, err := strconv.ParseFloat(s, 32)
	if err != nil {
		var ne *strconv.NumError
		if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
			d.pos = start
			return 0, d.errorf("invalid number %q", b)
		}
	}
	return f, nil
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// string reads a quoted string at d.pos.
func (d *jsonDecoder) string() (string, error) {
	d.pos++ // "
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", d.errorf("control character in string")
		}
		d.pos++
	}
	buf := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), nil
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			d.pos++
			continue
		}
		d.pos++ // backslash
		if d.pos >= len(d.data) {
			break
		}
		e := d.data[d.pos]
		d.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if len(d.data)-d.pos >= 2 && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
					d.pos += 2
					r2, ok := d.hex4()
					if !ok {
						return "", d.errorf("invalid \\u escape")
					}
					r = utf16.DecodeRune(r, r2)
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.errorf("invalid escape \\%c", e)
		}
	}
	return "", d.errorf("unterminated string")
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.data)-d.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.pos += 4
	return r, true
}
