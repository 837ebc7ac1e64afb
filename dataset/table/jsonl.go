package table

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONLine bounds one JSON Lines record, so a file without newlines
// cannot exhaust memory.
const maxJSONLine = 64 << 20

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonFalse
	jsonTrue
	jsonNumber
	jsonString
)

// jsonField is one member of a flat object: key and value are ranges of
// the line or of the decoding scratch buffer (when escaped).
type jsonField struct {
	key, val []byte
	kind     jsonKind
	isInt    bool
}

// jsonScanner parses flat JSON objects, one per line, without allocating
// per value.
type jsonScanner struct {
	buf     []byte // decoded strings
	fields  []jsonField
	spans   [][4]int // key start/end and value start/end in buf, -1 when in line
	line    []byte
	pos     int
	nesting string // key of a nested value, set with ErrNested
}

type jsonSyntaxError struct {
	off int
	msg string
}

func (e *jsonSyntaxError) Error() string { return fmt.Sprintf("byte %d: %s", e.off+1, e.msg) }

func (s *jsonScanner) fail(msg string) error { return &jsonSyntaxError{off: s.pos, msg: msg} }

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.line) {
		switch s.line[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// scan parses line as one object. On a nested value it returns ErrNested
// with s.nesting naming the key.
func (s *jsonScanner) scan(line []byte) ([]jsonField, error) {
	s.line, s.pos, s.buf, s.fields, s.spans = line, 0, s.buf[:0], s.fields[:0], s.spans[:0]
	s.skipSpace()
	if s.pos >= len(line) || line[s.pos] != '{' {
		return nil, s.fail("expected a JSON object")
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(line) && line[s.pos] == '}' {
		s.pos++
	} else {
		for {
			s.skipSpace()
			var sp [4]int
			var f jsonField
			var err error
			if s.pos >= len(line) || line[s.pos] != '"' {
				return nil, s.fail("expected a string key")
			}
			if sp[0], sp[1], err = s.str(); err != nil {
				return nil, err
			}
			s.skipSpace()
			if s.pos >= len(line) || line[s.pos] != ':' {
				return nil, s.fail("expected ':'")
			}
			s.pos++
			s.skipSpace()
			if s.pos >= len(line) {
				return nil, s.fail("unexpected end of line")
			}
			sp[2], sp[3] = s.pos, s.pos
			switch c := line[s.pos]; {
			case c == '"':
				f.kind = jsonString
				if sp[2], sp[3], err = s.str(); err != nil {
					return nil, err
				}
			case c == '{' || c == '[':
				s.spans = append(s.spans, sp)
				s.fields = append(s.fields, f)
				s.resolve()
				s.nesting = string(s.fields[len(s.fields)-1].key)
				return nil, ErrNested
			case c == 't':
				f.kind = jsonTrue
				err = s.literal("true")
			case c == 'f':
				f.kind = jsonFalse
				err = s.literal("false")
			case c == 'n':
				f.kind = jsonNull
				err = s.literal("null")
			case c == '-' || (c >= '0' && c <= '9'):
				f.kind = jsonNumber
				f.isInt, err = s.number()
				sp[3] = s.pos
			default:
				return nil, s.fail(fmt.Sprintf("unexpected character %q", c))
			}
			if err != nil {
				return nil, err
			}
			s.spans = append(s.spans, sp)
			s.fields = append(s.fields, f)
			s.skipSpace()
			if s.pos >= len(line) {
				return nil, s.fail("unexpected end of line")
			}
			if line[s.pos] == ',' {
				s.pos++
				continue
			}
			if line[s.pos] == '}' {
				s.pos++
				break
			}
			return nil, s.fail("expected ',' or '}'")
		}
	}
	s.skipSpace()
	if s.pos != len(line) {
		return nil, s.fail("text after the object")
	}
	s.resolve()
	return s.fields, nil
}

// resolve turns spans into slices once buf no longer grows. A span start
// below zero encodes an offset into buf as -(offset+1).
func (s *jsonScanner) resolve() {
	at := func(a, b int) []byte {
		if a < 0 {
			return s.buf[-(a + 1):-(b + 1)]
		}
		return s.line[a:b]
	}
	for i, sp := range s.spans {
		s.fields[i].key = at(sp[0], sp[1])
		s.fields[i].val = at(sp[2], sp[3])
	}
}

func (s *jsonScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.line[s.pos:], []byte(lit)) {
		return s.fail("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

// number validates a JSON number and reports whether it is integral.
func (s *jsonScanner) number() (isInt bool, err error) {
	l := s.line
	i := s.pos
	if i < len(l) && l[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(l) && l[i] >= '0' && l[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(l) && l[i] == '0' {
		i++
	} else if digits() == 0 {
		s.pos = i
		return false, s.fail("invalid number")
	}
	isInt = true
	if i < len(l) && l[i] == '.' {
		i++
		isInt = false
		if digits() == 0 {
			s.pos = i
			return false, s.fail("invalid number")
		}
	}
	if i < len(l) && (l[i] == 'e' || l[i] == 'E') {
		i++
		isInt = false
		if i < len(l) && (l[i] == '+' || l[i] == '-') {
			i++
		}
		if digits() == 0 {
			s.pos = i
			return false, s.fail("invalid number")
		}
	}
	s.pos = i
	return isInt, nil
}

// str scans a string at s.pos and returns its span: in the line when it
// has no escapes, else in buf (encoded as negative offsets).
func (s *jsonScanner) str() (int, int, error) {
	l := s.line
	s.pos++ // opening quote
	start := s.pos
	for i := start; i < len(l); i++ {
		c := l[i]
		if c == '"' {
			s.pos = i + 1
			return start, i, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			s.pos = i
			return 0, 0, s.fail("control character in string")
		}
	}
	// Slow path: decode escapes into buf.
	bstart := len(s.buf)
	i := start
	for {
		if i >= len(l) {
			s.pos = i
			return 0, 0, s.fail("unterminated string")
		}
		c := l[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return -(bstart + 1), -(len(s.buf) + 1), nil
		case c < 0x20:
			s.pos = i
			return 0, 0, s.fail("control character in string")
		case c != '\\':
			s.buf = append(s.buf, c)
			i++
			continue
		}
		if i+1 >= len(l) {
			s.pos = i
			return 0, 0, s.fail("unterminated string")
		}
		e := l[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			s.buf = append(s.buf, e)
		case 'b':
			s.buf = append(s.buf, '\b')
		case 'f':
			s.buf = append(s.buf, '\f')
		case 'n':
			s.buf = append(s.buf, '\n')
		case 'r':
			s.buf = append(s.buf, '\r')
		case 't':
			s.buf = append(s.buf, '\t')
		case 'u':
			r, ok := hex4(l, i)
			if !ok {
				s.pos = i
				return 0, 0, s.fail("invalid \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(l, i+2); ok && i+1 < len(l) && l[i] == '\\' && l[i+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			s.buf = utf8.AppendRune(s.buf, r)
		default:
			s.pos = i - 1
			return 0, 0, s.fail("invalid escape")
		}
	}
}

func hex4(l []byte, i int) (rune, bool) {
	if i+4 > len(l) {
		return 0, false
	}
	var r rune
	for _, c := range l[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

type jsonlReader struct {
	src      io.ReaderAt
	size     int64
	opts     Options
	br       *bufio.Reader
	long     []byte
	line     int
	scan     jsonScanner
	cols     map[string]int // file column → schema position (-1 when projected out)
	names    []string
	schema   Schema
	builders []*builder
	seen     []int // row stamp per schema column, to find duplicate keys
	row      int
	pending  [][]byte
	plines   []int
	done     bool
}

func openJSONL(ctx context.Context, src io.ReaderAt, size int64, opts Options) (*jsonlReader, error) {
	r := &jsonlReader{src: src, size: size, opts: opts, cols: map[string]int{}}
	r.start()
	var infs []inference
	inferRows := opts.inferRows()
	rows := 0
	for inferRows < 0 || rows < inferRows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, line, err := r.readLine()
		if errors.Is(err, io.EOF) {
			r.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		fields, err := r.scan.scan(l)
		if err != nil {
			return nil, r.lineErr(line, err)
		}
		rows++
		for _, f := range fields {
			ci, ok := r.cols[unsafeString(f.key)]
			if !ok {
				ci = len(r.names)
				r.names = append(r.names, string(f.key))
				r.cols[r.names[ci]] = ci
				infs = append(infs, newInference())
				infs[ci].nulls = int64(rows - 1) // absent from earlier rows
			}
			observeJSON(&infs[ci], f)
		}
		for ci := range infs {
			if infs[ci].values+infs[ci].nulls < int64(rows) {
				infs[ci].null() // absent from this row
			}
		}
		if inferRows > 0 {
			r.pending = append(r.pending, bytes.Clone(l))
			r.plines = append(r.plines, line)
		}
	}
	if len(r.names) == 0 {
		return nil, invalidf(ErrFormat, "JSON Lines file has no columns")
	}
	if inferRows < 0 {
		r.start()
		r.done = false
	}
	all := make([]Field, len(r.names))
	for i, n := range r.names {
		all[i] = infs[i].field(n)
		if opts.Schema != nil {
			if j := opts.Schema.Index(n); j >= 0 {
				given := opts.Schema.Fields[j]
				given.Nullable = given.Nullable || all[i].Nullable
				all[i] = given
			}
		}
	}
	proj, err := projection(r.names, opts.Columns)
	if err != nil {
		return nil, err
	}
	for n := range r.cols {
		r.cols[n] = -1
	}
	r.schema.Fields = make([]Field, len(proj))
	r.builders = make([]*builder, len(proj))
	r.seen = make([]int, len(proj))
	for i, j := range proj {
		r.schema.Fields[i] = all[j]
		r.cols[r.names[j]] = i
		r.seen[i] = -1
	}
	for i := range proj {
		r.builders[i] = newBuilder(&r.schema.Fields[i], min(opts.batchRows(), 1024))
	}
	return r, nil
}

func observeJSON(in *inference, f jsonField) {
	switch f.kind {
	case jsonNull:
		in.null()
		return
	case jsonTrue, jsonFalse:
		in.mask &= canBool | canString
	case jsonNumber:
		if f.isInt {
			if _, err := strconv.ParseInt(unsafeString(f.val), 10, 64); err == nil {
				in.mask &= canInt | canFloat | canString
				break
			}
		}
		in.mask &= canFloat | canString
	case jsonString:
		in.mask &= textMask(unsafeString(f.val)) & (canDate | canTSNaive | canTSAware | canString)
	}
	in.values++
}

func (r *jsonlReader) start() {
	r.br = bufio.NewReaderSize(io.NewSectionReader(r.src, 0, r.size), 256<<10)
	r.line = 0
	if b, err := r.br.Peek(3); err == nil && string(b) == "\ufeff" {
		r.br.Discard(3)
	}
}

// readLine returns the next non-blank line (valid until the next call).
func (r *jsonlReader) readLine() ([]byte, int, error) {
	for {
		l, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.long = append(r.long[:0], l...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(r.long) > maxJSONLine {
					return nil, 0, invalidf(ErrFormat, "JSON Lines line %d is longer than %d bytes", r.line+1, maxJSONLine)
				}
				l, err = r.br.ReadSlice('\n')
				r.long = append(r.long, l...)
			}
			l = r.long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		if len(l) == 0 && err != nil {
			return nil, 0, io.EOF
		}
		r.line++
		if len(bytes.TrimSpace(l)) == 0 {
			if err != nil {
				return nil, 0, io.EOF
			}
			continue
		}
		return l, r.line, nil
	}
}

func (r *jsonlReader) lineErr(line int, err error) error {
	if errors.Is(err, ErrNested) {
		return invalidf(ErrNested, "JSON Lines line %d, column %q: nested objects and arrays are not supported", line, r.scan.nesting)
	}
	var se *jsonSyntaxError
	if errors.As(err, &se) {
		return invalidf(ErrFormat, "JSON Lines line %d, %v", line, se)
	}
	return err
}

func (r *jsonlReader) Schema() Schema { return r.schema.Clone() }

func (r *jsonlReader) Close() error { return nil }

func (r *jsonlReader) Next(ctx context.Context) (*Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := r.opts.batchRows()
	n := 0
	for n < limit && len(r.pending) > 0 {
		if err := r.appendLine(r.pending[0], r.plines[0]); err != nil {
			return nil, err
		}
		r.pending, r.plines = r.pending[1:], r.plines[1:]
		n++
	}
	for n < limit && !r.done {
		l, line, err := r.readLine()
		if errors.Is(err, io.EOF) {
			r.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		if err := r.appendLine(l, line); err != nil {
			return nil, err
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if n == 0 {
		return nil, io.EOF
	}
	b := &Batch{Len: n, Columns: make([]Column, len(r.builders))}
	for i, bl := range r.builders {
		b.Columns[i] = bl.finish(min(limit, 2*n))
	}
	return b, nil
}

func (r *jsonlReader) appendLine(l []byte, line int) error {
	fields, err := r.scan.scan(l)
	if err != nil {
		return r.lineErr(line, err)
	}
	row := r.row
	r.row++
	for _, f := range fields {
		ci, ok := r.cols[unsafeString(f.key)]
		if !ok {
			return invalidf(ErrSchema, "JSON Lines line %d: key %q is not among the columns found in the first %d lines; set InferRows to -1 to inspect every line", line, f.key, r.opts.inferRows())
		}
		if ci < 0 {
			continue
		}
		if r.seen[ci] == row {
			return invalidf(ErrFormat, "JSON Lines line %d: duplicate key %q", line, f.key)
		}
		r.seen[ci] = row
		if err := appendJSON(r.builders[ci], f); err != nil {
			return fmt.Errorf("JSON Lines line %d, column %q: %w", line, f.key, err)
		}
	}
	for ci, b := range r.builders {
		if r.seen[ci] != row {
			b.appendNull()
		}
	}
	return nil
}

func appendJSON(b *builder, f jsonField) error {
	switch f.kind {
	case jsonNull:
		b.appendNull()
		return nil
	case jsonTrue, jsonFalse:
		switch b.field.Type {
		case Bool:
			b.appendBool(f.kind == jsonTrue)
			return nil
		case String:
			return b.appendText(strconv.FormatBool(f.kind == jsonTrue))
		}
		return b.errMismatch(strconv.FormatBool(f.kind == jsonTrue))
	case jsonNumber:
		switch b.field.Type {
		case Int64, Float64, String:
			return b.appendText(unsafeString(f.val))
		}
		return b.errMismatch(string(f.val))
	}
	return b.appendText(unsafeString(f.val))
}

// JSONLWriter writes JSON Lines: one object per row, keys in schema order,
// nulls as null, non-finite floats as null (JSON has no NaN), timestamps as
// RFC 3339 strings and dates as YYYY-MM-DD.
type jsonlWriter struct {
	schema Schema
	w      *bufio.Writer
	keys   [][]byte
	buf    []byte
}

// NewJSONLWriter returns a Writer of JSON Lines.
func NewJSONLWriter(w io.Writer, s Schema) (Writer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	jw := &jsonlWriter{schema: s.Clone(), w: bufio.NewWriterSize(w, 64<<10)}
	for _, f := range s.Fields {
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		jw.keys = append(jw.keys, k)
	}
	return jw, nil
}

func (w *jsonlWriter) Write(b *Batch) error {
	if err := b.Check(w.schema); err != nil {
		return err
	}
	for i := 0; i < b.Len; i++ {
		w.buf = append(w.buf[:0], '{')
		for ci := range b.Columns {
			if ci > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, w.keys[ci]...)
			w.buf = append(w.buf, ':')
			c := &b.Columns[ci]
			f := &w.schema.Fields[ci]
			switch {
			case c.Null(i):
				w.buf = append(w.buf, "null"...)
			case c.Type == Bool || c.Type == Int64:
				w.buf = c.appendValue(w.buf, i, f, false)
			case c.Type == Float64:
				v := c.Floats[i]
				if v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308 {
					w.buf = append(w.buf, "null"...)
				} else {
					w.buf = strconv.AppendFloat(w.buf, v, 'g', -1, 64)
				}
			default:
				w.buf = appendJSONString(w.buf, c.appendValue(nil, i, f, false))
			}
		}
		w.buf = append(w.buf, '}', '\n')
		if _, err := w.w.Write(w.buf); err != nil {
			return err
		}
	}
	return nil
}

func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func (w *jsonlWriter) Close() error { return w.w.Flush() }
