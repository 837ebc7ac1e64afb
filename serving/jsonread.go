package serving

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// jsonReader is a small pull parser over a JSON document held in memory.
// The request decoders use it instead of encoding/json so that an
// inference request decodes straight into typed slices, without
// reflection or intermediate values. Besides standard JSON it accepts the
// tokens NaN, Infinity and -Infinity that Python's json module writes for
// non-finite floats.
type jsonReader struct {
	b     []byte
	pos   int
	depth int
}

// maxJSONDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxJSONDepth = 128

func (r *jsonReader) errorf(format string, args ...any) error {
	return badRequest("invalid JSON at offset %d: %s", r.pos, fmt.Sprintf(format, args...))
}

func (r *jsonReader) ws() {
	for r.pos < len(r.b) {
		switch r.b[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it (0 at the end).
func (r *jsonReader) peek() byte {
	r.ws()
	if r.pos >= len(r.b) {
		return 0
	}
	return r.b[r.pos]
}

func (r *jsonReader) expect(c byte) error {
	if r.peek() != c {
		if r.pos >= len(r.b) {
			return r.errorf("unexpected end of input, want %q", c)
		}
		return r.errorf("unexpected %q, want %q", r.b[r.pos], c)
	}
	r.pos++
	return nil
}

// end checks that nothing but white space follows the document.
func (r *jsonReader) end() error {
	if r.ws(); r.pos < len(r.b) {
		return r.errorf("unexpected data after the JSON value")
	}
	return nil
}

// beginObject consumes '{'.
func (r *jsonReader) beginObject() error {
	if err := r.expect('{'); err != nil {
		return err
	}
	r.depth++
	if r.depth > maxJSONDepth {
		return r.errorf("nesting deeper than %d", maxJSONDepth)
	}
	return nil
}

// nextKey advances to the next member of an object opened by beginObject:
// it returns the key (unescaped; valid until the reader's buffer is
// reused) and done=true after the closing '}'.
func (r *jsonReader) nextKey(first bool) (key []byte, done bool, err error) {
	c := r.peek()
	if c == '}' {
		r.pos++
		r.depth--
		return nil, true, nil
	}
	if !first {
		if c != ',' {
			return nil, false, r.errorf("want ',' or '}' in object")
		}
		r.pos++
		c = r.peek()
	}
	if c != '"' {
		return nil, false, r.errorf("want a string key in object")
	}
	key, err = r.stringBytes()
	if err != nil {
		return nil, false, err
	}
	if err := r.expect(':'); err != nil {
		return nil, false, err
	}
	return key, false, nil
}

// beginArray consumes '['.
func (r *jsonReader) beginArray() error {
	if err := r.expect('['); err != nil {
		return err
	}
	r.depth++
	if r.depth > maxJSONDepth {
		return r.errorf("nesting deeper than %d", maxJSONDepth)
	}
	return nil
}

// nextElem advances to the next element of an array opened by
// beginArray; done=true after the closing ']'.
func (r *jsonReader) nextElem(first bool) (done bool, err error) {
	c := r.peek()
	if c == ']' {
		r.pos++
		r.depth--
		return true, nil
	}
	if !first {
		if c != ',' {
			return false, r.errorf("want ',' or ']' in array")
		}
		r.pos++
		if r.peek() == ']' {
			return false, r.errorf("trailing ',' in array")
		}
	} else if c == 0 {
		return false, r.errorf("unexpected end of input in array")
	}
	return false, nil
}

// stringBytes reads a string. Without escapes it returns a view into the
// input; with escapes, a new unescaped slice.
func (r *jsonReader) stringBytes() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	start := r.pos
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		switch {
		case c == '"':
			s := r.b[start:r.pos]
			r.pos++
			return s, nil
		case c == '\\':
			return r.unescape(start)
		case c < 0x20:
			return nil, r.errorf("control character in string")
		}
		r.pos++
	}
	return nil, r.errorf("unterminated string")
}

// str reads a string into a new Go string.
func (r *jsonReader) str() (string, error) {
	b, err := r.stringBytes()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (r *jsonReader) unescape(start int) ([]byte, error) {
	out := make([]byte, 0, r.pos-start+16)
	out = append(out, r.b[start:r.pos]...)
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		switch {
		case c == '"':
			r.pos++
			return out, nil
		case c < 0x20:
			return nil, r.errorf("control character in string")
		case c != '\\':
			out = append(out, c)
			r.pos++
			continue
		}
		r.pos++
		if r.pos >= len(r.b) {
			break
		}
		e := r.b[r.pos]
		r.pos++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			c1, ok := r.hex4()
			if !ok {
				return nil, r.errorf("invalid \\u escape")
			}
			ru := rune(c1)
			if utf16.IsSurrogate(ru) {
				ru = utf8.RuneError
				if r.pos+1 < len(r.b) && r.b[r.pos] == '\\' && r.b[r.pos+1] == 'u' {
					save := r.pos
					r.pos += 2
					if c2, ok := r.hex4(); ok {
						if d := utf16.DecodeRune(rune(c1), rune(c2)); d != utf8.RuneError {
							ru = d
						} else {
							r.pos = save
						}
					} else {
						r.pos = save
					}
				}
			}
			out = utf8.AppendRune(out, ru)
		default:
			return nil, r.errorf("invalid escape '\\%c'", e)
		}
	}
	return nil, r.errorf("unterminated string")
}

func (r *jsonReader) hex4() (uint16, bool) {
	if r.pos+4 > len(r.b) {
		return 0, false
	}
	var v uint16
	for _, c := range r.b[r.pos : r.pos+4] {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= uint16(c - '0')
		case c >= 'a' && c <= 'f':
			v |= uint16(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v |= uint16(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	r.pos += 4
	return v, true
}

// numKind is what a number token looks like.
type numKind uint8

const (
	numInt     numKind = iota // -?digits
	numFloat                  // with a fraction or exponent
	numSpecial                // NaN, Infinity, -Infinity
)

// number reads a number token (JSON grammar, plus NaN/Infinity) and
// returns its bytes.
func (r *jsonReader) number() ([]byte, numKind, error) {
	start, _, _, kind, _, _, err := r.scanNumber()
	if err != nil {
		return nil, 0, err
	}
	return r.b[start:r.pos], kind, nil
}

// float reads a number as a float of the given bit size, correctly
// rounded (±Inf beyond the largest float, as an overflowing literal
// means): the decoders' hot path.
func (r *jsonReader) float(bits int) (float64, error) {
	start, w, q, kind, neg, fits, err := r.scanNumber()
	if err != nil {
		return 0, err
	}
	f, ok := floatOf(r.b[start:r.pos], kind, w, q, neg, fits, bits)
	if !ok {
		return 0, badRequest("%s is not a number", r.b[start:r.pos])
	}
	return f, nil
}

// floatOf converts what scanNumber read; ok is false only for a malformed
// special token.
func floatOf(tok []byte, kind numKind, w uint64, q int, neg, fits bool, bits int) (float64, bool) {
	if fits && kind != numSpecial {
		if w == 0 {
			if neg {
				return math.Copysign(0, -1), true
			}
			return 0, true
		}
		if f, ok := fastFloat(w, q, bits); ok {
			if neg {
				f = -f
			}
			return f, true
		}
	}
	return parseFloatTok(tok, kind, bits)
}

// intOf is the value of an integer token's digits w when it fits in an
// int64.
func intOf(w uint64, neg bool) (int64, bool) {
	if neg {
		if w > 1<<63 {
			return 0, false
		}
		return -int64(w), true
	}
	if w > math.MaxInt64 {
		return 0, false
	}
	return int64(w), true
}

// scanNumber reads a number token, r.b[start:r.pos] afterwards; w and q
// are its digits and decimal exponent (the value is ±w·10^q) when fits.
func (r *jsonReader) scanNumber() (start int, w uint64, q int, kind numKind, neg, fits bool, err error) {
	r.ws()
	start = r.pos
	b := r.b
	i := r.pos
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i < len(b) && (b[i] == 'N' || b[i] == 'I') {
		for _, tok := range [...]string{"NaN", "Infinity"} {
			if len(b)-i >= len(tok) && string(b[i:i+len(tok)]) == tok {
				if tok == "NaN" && i != start {
					break
				}
				r.pos = i + len(tok)
				return start, 0, 0, numSpecial, neg, false, nil
			}
		}
		return start, 0, 0, 0, false, false, r.errorf("invalid number")
	}
	digits := i
	i, w = digitRun(b, i, w)
	if i == digits || (b[digits] == '0' && i-digits > 1) {
		r.pos = start
		return start, 0, 0, 0, false, false, r.errorf("invalid number")
	}
	nd := i - digits
	kind = numInt
	if i < len(b) && b[i] == '.' {
		i++
		f := i
		i, w = digitRun(b, i, w)
		if i == f {
			return start, 0, 0, 0, false, false, r.errorf("invalid number")
		}
		nd += i - f
		q = f - i
		kind = numFloat
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		e, x := i, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if x < 100000 {
				x = x*10 + int(b[i]-'0')
			}
			i++
		}
		if i == e {
			return start, 0, 0, 0, false, false, r.errorf("invalid number")
		}
		if eneg {
			x = -x
		}
		q += x
		kind = numFloat
	}
	r.pos = i
	return start, w, q, kind, neg, nd <= 19 && q > -100000 && q < 100000, nil
}

// digitRun consumes the ASCII digits from b[i], eight at a time where it
// can, appending them to w (which wraps past 19 digits: the caller counts
// them), and returns where they end.
func digitRun(b []byte, i int, w uint64) (int, uint64) {
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		if !eightDigits(x) {
			break
		}
		w = w*1e8 + eightDigitsValue(x)
		i += 8
	}
	for i < len(b) {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		w = w*10 + uint64(c)
		i++
	}
	return i, w
}

// eightDigits reports whether the 8 bytes of x (little-endian) are all
// ASCII digits.
func eightDigits(x uint64) bool {
	return (x&0xf0f0f0f0f0f0f0f0)|(((x+0x0606060606060606)&0xf0f0f0f0f0f0f0f0)>>4) == 0x3333333333333333
}

// eightDigitsValue is the number the 8 ASCII digits of x spell, the
// first digit in the lowest byte: pairs, then quads, then the eight
// combined by multiplication (three multiplications instead of eight).
func eightDigitsValue(x uint64) uint64 {
	x -= 0x3030303030303030
	x = x*10 + x>>8 // each even byte: two digits
	x = ((x&0x000000ff000000ff)*(100+1000000<<32) + (x>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return x
}

// literal consumes one of true, false, null if it is next.
func (r *jsonReader) literal(lit string) bool {
	r.ws()
	if len(r.b)-r.pos >= len(lit) && string(r.b[r.pos:r.pos+len(lit)]) == lit {
		r.pos += len(lit)
		return true
	}
	return false
}

func (r *jsonReader) boolean() (bool, error) {
	switch {
	case r.literal("true"):
		return true, nil
	case r.literal("false"):
		return false, nil
	}
	return false, r.errorf("want true or false")
}

// skip consumes one value of any type.
func (r *jsonReader) skip() error {
	switch c := r.peek(); c {
	case '{':
		if err := r.beginObject(); err != nil {
			return err
		}
		for first := true; ; first = false {
			_, done, err := r.nextKey(first)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			if err := r.skip(); err != nil {
				return err
			}
		}
	case '[':
		if err := r.beginArray(); err != nil {
			return err
		}
		for first := true; ; first = false {
			done, err := r.nextElem(first)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			if err := r.skip(); err != nil {
				return err
			}
		}
	case '"':
		_, err := r.stringBytes()
		return err
	case 't', 'f':
		_, err := r.boolean()
		return err
	case 'n':
		if r.literal("null") {
			return nil
		}
		return r.errorf("invalid literal")
	case 0:
		return r.errorf("unexpected end of input")
	default:
		_, _, err := r.number()
		return err
	}
}

// bstr views b as a string without copying; the string must not outlive
// b or be retained (strconv's parsers copy what they keep in errors).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseFloatTok parses a number token as a float of the given bit size:
// the special tokens, and what floatOf's fast paths leave.
func parseFloatTok(tok []byte, kind numKind, bits int) (float64, bool) {
	if kind == numSpecial {
		switch bstr(tok) {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
		return 0, false
	}
	// Out of range, parseFloat returns ±Inf (and false, as ParseFloat
	// returns ErrRange), which is what an overflowing literal means.
	f, _ := parseFloat(tok, bits)
	return f, true
}

// parseIntTok parses a number token as an integer within [lo, hi]. A
// float token is accepted when it has an integral value.
func parseIntTok(tok []byte, kind numKind, lo, hi int64) (int64, bool) {
	switch kind {
	case numInt:
		if len(tok) < 19 {
			neg := tok[0] == '-'
			d := tok
			if neg {
				d = d[1:]
			}
			var v int64
			for _, c := range d {
				v = v*10 + int64(c-'0')
			}
			if neg {
				v = -v
			}
			return v, v >= lo && v <= hi
		}
		v, err := strconv.ParseInt(bstr(tok), 10, 64)
		return v, err == nil && v >= lo && v <= hi
	case numFloat:
		f, err := strconv.ParseFloat(bstr(tok), 64)
		if err != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) || f >= 0x1p63 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// parseUintTok parses a number token as an unsigned integer ≤ hi.
func parseUintTok(tok []byte, kind numKind, hi uint64) (uint64, bool) {
	switch kind {
	case numInt:
		if tok[0] == '-' {
			return 0, len(tok) == 2 && tok[1] == '0' // -0
		}
		v, err := strconv.ParseUint(bstr(tok), 10, 64)
		return v, err == nil && v <= hi
	case numFloat:
		f, err := strconv.ParseFloat(bstr(tok), 64)
		if err != nil || f != math.Trunc(f) || f < 0 || f > float64(hi) || f >= 0x1p64 {
			return 0, false
		}
		return uint64(f), true
	}
	return 0, false
}
