package table

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unsafe"
)

// Bitmap marks valid (non-null) rows: bit i%64 of word i/64 is set when row
// i holds a value. A nil Bitmap means that every row is valid.
type Bitmap []uint64

// NewBitmap returns a bitmap for n rows with every row valid.
func NewBitmap(n int) Bitmap {
	b := make(Bitmap, (n+63)/64)
	for i := range b {
		b[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		b[len(b)-1] = (1 << r) - 1
	}
	return b
}

// Valid reports whether row i holds a value.
func (b Bitmap) Valid(i int) bool {
	return b == nil || b[i>>6]&(1<<(uint(i)&63)) != 0
}

// Set marks row i as valid (v) or null (!v). b must not be nil.
func (b Bitmap) Set(i int, v bool) {
	if v {
		b[i>>6] |= 1 << (uint(i) & 63)
	} else {
		b[i>>6] &^= 1 << (uint(i) & 63)
	}
}

// CountNulls returns the number of null rows among the first n.
func (b Bitmap) CountNulls(n int) int {
	if b == nil {
		return 0
	}
	valid := 0
	full := n / 64
	for _, w := range b[:full] {
		valid += bits.OnesCount64(w)
	}
	if r := n % 64; r != 0 {
		valid += bits.OnesCount64(b[full] & ((1 << r) - 1))
	}
	return n - valid
}

// Strings is a vector of byte strings in one buffer: value i is
// Data[Offsets[i]:Offsets[i+1]]. Offsets has Len()+1 entries (or none when
// empty).
type Strings struct {
	Data    []byte
	Offsets []int32
}

// Len returns the number of values.
func (s *Strings) Len() int {
	if len(s.Offsets) == 0 {
		return 0
	}
	return len(s.Offsets) - 1
}

// At returns value i. The bytes alias the vector: do not modify them.
func (s *Strings) At(i int) []byte { return s.Data[s.Offsets[i]:s.Offsets[i+1]] }

// Append adds v.
func (s *Strings) Append(v []byte) {
	if len(s.Offsets) == 0 {
		s.Offsets = append(s.Offsets, 0)
	}
	s.Data = append(s.Data, v...)
	s.Offsets = append(s.Offsets, int32(len(s.Data)))
}

// AppendString adds v.
func (s *Strings) AppendString(v string) {
	if len(s.Offsets) == 0 {
		s.Offsets = append(s.Offsets, 0)
	}
	s.Data = append(s.Data, v...)
	s.Offsets = append(s.Offsets, int32(len(s.Data)))
}

// Column is one column of a Batch. Its Type selects the vector that holds
// the values; the others are nil. Vectors are dense (one entry per row):
// a null row holds a zero value there and a clear bit in Valid.
//
//   - Bool: Bools
//   - Int64: Ints
//   - Float64: Floats (NaN is a value, not a null; readers turn missing
//     markers into nulls)
//   - Timestamp: Ints, in the field's Unit since the Unix epoch
//   - Date: Ints, days since 1970-01-01
//   - String: Strs, or, when Dict is set, Codes into Dict (dictionary
//     encoding, as Parquet files written by pandas/pyarrow use; the
//     dictionary may be shared by several batches and must not be modified)
type Column struct {
	Type   Type
	Valid  Bitmap
	Bools  []bool
	Ints   []int64
	Floats []float64
	Strs   Strings
	Codes  []int32
	Dict   *Strings
}

// Len returns the number of rows.
func (c *Column) Len() int {
	switch c.Type {
	case Bool:
		return len(c.Bools)
	case Int64, Timestamp, Date:
		return len(c.Ints)
	case Float64:
		return len(c.Floats)
	case String:
		if c.Dict != nil {
			return len(c.Codes)
		}
		return c.Strs.Len()
	}
	return 0
}

// Null reports whether row i is null.
func (c *Column) Null(i int) bool { return !c.Valid.Valid(i) }

// Bytes returns row i of a String column (empty for a null). The bytes
// alias the column.
func (c *Column) Bytes(i int) []byte {
	if c.Dict != nil {
		return c.Dict.At(int(c.Codes[i]))
	}
	return c.Strs.At(i)
}

// Str returns row i of a String column as a new string.
func (c *Column) Str(i int) string { return string(c.Bytes(i)) }

// Float returns row i of a numeric or bool column as a float64 (bools are
// 0 and 1; timestamps and dates in their unit).
func (c *Column) Float(i int) float64 {
	switch c.Type {
	case Float64:
		return c.Floats[i]
	case Int64, Timestamp, Date:
		return float64(c.Ints[i])
	case Bool:
		if c.Bools[i] {
			return 1
		}
	}
	return 0
}

// Time returns row i of a Timestamp column in the given unit, or of a Date
// column, as a time.Time in UTC.
func (c *Column) Time(i int, unit TimeUnit) time.Time {
	v := c.Ints[i]
	if c.Type == Date {
		return time.Unix(v*86400, 0).UTC()
	}
	per := unit.PerSecond()
	if per == 0 {
		per = 1e9
	}
	sec, frac := v/per, v%per
	if frac < 0 {
		sec--
		frac += per
	}
	return time.Unix(sec, frac*(1e9/per)).UTC()
}

// Format returns row i as text: "" for a null, strconv's shortest form for
// floats, RFC 3339 for timestamps (without a zone when naive), YYYY-MM-DD
// for dates, "true"/"false" for bools.
func (c *Column) Format(i int, f *Field) string {
	if c.Null(i) {
		return ""
	}
	return string(c.appendValue(nil, i, f, false))
}

// appendValue appends row i's text form. pandasStyle writes booleans as
// True/False and timestamps with a space, as pandas' to_csv does.
func (c *Column) appendValue(dst []byte, i int, f *Field, pandasStyle bool) []byte {
	switch c.Type {
	case Bool:
		switch {
		case pandasStyle && c.Bools[i]:
			return append(dst, "True"...)
		case pandasStyle:
			return append(dst, "False"...)
		}
		return strconv.AppendBool(dst, c.Bools[i])
	case Int64:
		return strconv.AppendInt(dst, c.Ints[i], 10)
	case Float64:
		return appendFloat(dst, c.Floats[i])
	case String:
		return append(dst, c.Bytes(i)...)
	case Date:
		return c.Time(i, "").AppendFormat(dst, time.DateOnly)
	case Timestamp:
		var unit TimeUnit = Nanosecond
		utc := false
		if f != nil {
			unit, utc = f.Unit, f.UTC
		}
		t := c.Time(i, unit)
		layout := "2006-01-02T15:04:05.999999999"
		if pandasStyle {
			layout = "2006-01-02 15:04:05.999999999"
		}
		dst = t.AppendFormat(dst, layout)
		if utc {
			if pandasStyle {
				dst = append(dst, "+00:00"...)
			} else {
				dst = append(dst, 'Z')
			}
		}
		return dst
	}
	return dst
}

func appendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// Batch is a slice of a table's rows in columnar form. Columns follow the
// reader's Schema order.
type Batch struct {
	Len     int
	Columns []Column
}

// Take returns a new batch with the given rows of b, in that order. Rows
// must be in [0, b.Len). Dictionary columns keep sharing their dictionary.
func (b *Batch) Take(rows []int) *Batch {
	out := &Batch{Len: len(rows), Columns: make([]Column, len(b.Columns))}
	for ci := range b.Columns {
		src := &b.Columns[ci]
		dst := &out.Columns[ci]
		dst.Type = src.Type
		if src.Valid != nil {
			dst.Valid = NewBitmap(len(rows))
			for j, r := range rows {
				if !src.Valid.Valid(r) {
					dst.Valid.Set(j, false)
				}
			}
		}
		switch src.Type {
		case Bool:
			dst.Bools = gather(src.Bools, rows)
		case Int64, Timestamp, Date:
			dst.Ints = gather(src.Ints, rows)
		case Float64:
			dst.Floats = gather(src.Floats, rows)
		case String:
			if src.Dict != nil {
				dst.Dict = src.Dict
				dst.Codes = gather(src.Codes, rows)
				continue
			}
			dst.Strs.Offsets = make([]int32, 1, len(rows)+1)
			for _, r := range rows {
				dst.Strs.Append(src.Strs.At(r))
			}
		}
	}
	return out
}

// Slice returns rows [i, j) of b, sharing its vectors (the bitmap is copied
// when i is not a multiple of 64).
func (b *Batch) Slice(i, j int) *Batch {
	if i%64 != 0 {
		rows := make([]int, j-i)
		for k := range rows {
			rows[k] = i + k
		}
		return b.Take(rows)
	}
	out := &Batch{Len: j - i, Columns: make([]Column, len(b.Columns))}
	for ci := range b.Columns {
		src := &b.Columns[ci]
		dst := &out.Columns[ci]
		dst.Type = src.Type
		if src.Valid != nil {
			dst.Valid = src.Valid[i/64 : (j+63)/64]
		}
		switch src.Type {
		case Bool:
			dst.Bools = src.Bools[i:j]
		case Int64, Timestamp, Date:
			dst.Ints = src.Ints[i:j]
		case Float64:
			dst.Floats = src.Floats[i:j]
		case String:
			if src.Dict != nil {
				dst.Dict, dst.Codes = src.Dict, src.Codes[i:j]
			} else {
				dst.Strs = Strings{Data: src.Strs.Data, Offsets: src.Strs.Offsets[i : j+1]}
			}
		}
	}
	return out
}

// Check verifies that every column of b has b.Len rows and matches the
// schema's types: a writer calls it before it trusts a batch.
func (b *Batch) Check(s Schema) error {
	if len(b.Columns) != len(s.Fields) {
		return invalidf(ErrSchema, "batch has %d columns, schema %d", len(b.Columns), len(s.Fields))
	}
	for i := range b.Columns {
		c := &b.Columns[i]
		if c.Type != s.Fields[i].Type {
			return invalidf(ErrSchema, "column %q: batch type %v, schema type %v", s.Fields[i].Name, c.Type, s.Fields[i].Type)
		}
		if n := c.Len(); n != b.Len {
			return invalidf(ErrSchema, "column %q has %d rows, batch %d", s.Fields[i].Name, n, b.Len)
		}
		if c.Valid != nil && len(c.Valid) < (b.Len+63)/64 {
			return invalidf(ErrSchema, "column %q: validity bitmap too short", s.Fields[i].Name)
		}
		if c.Type == String {
			if err := checkStrings(c, b.Len); err != nil {
				return fmt.Errorf("column %q: %w", s.Fields[i].Name, err)
			}
		}
	}
	return nil
}

func checkStrings(c *Column, n int) error {
	strs := &c.Strs
	if c.Dict != nil {
		strs = c.Dict
		for _, code := range c.Codes {
			if code < 0 || int(code) >= strs.Len() {
				return invalidf(ErrSchema, "dictionary code %d out of range", code)
			}
		}
	}
	for k := 1; k < len(strs.Offsets); k++ {
		if strs.Offsets[k] < strs.Offsets[k-1] || int(strs.Offsets[k]) > len(strs.Data) {
			return invalidf(ErrSchema, "string offsets out of order")
		}
	}
	if c.Dict == nil && n > 0 && strs.Len() != n {
		return invalidf(ErrSchema, "%d strings for %d rows", strs.Len(), n)
	}
	return nil
}

func gather[T any](src []T, rows []int) []T {
	out := make([]T, len(rows))
	for j, r := range rows {
		out[j] = src[r]
	}
	return out
}

// unsafeString views b as a string without copying; b must not change while
// the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
