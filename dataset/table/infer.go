package table

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// NATokens are the cell values that pandas' read_csv reads as missing by
// default (pandas._libs.parsers.STR_NA_VALUES), and so does the CSV reader
// unless CSVOptions.NoDefaultNA is set.
var NATokens = []string{
	"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
	"1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
	"nan", "null",
}

// isDefaultNA reports whether s is one of NATokens.
func isDefaultNA(s string) bool {
	switch s {
	case "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
		"1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
		"nan", "null":
		return true
	}
	return false
}

// Candidate types during inference, as bits of a mask. A value narrows the
// mask to the types that can hold it; the column gets the first remaining
// type in this order.
const (
	canBool uint8 = 1 << iota
	canInt
	canFloat
	canDate
	canTSNaive
	canTSAware
	canString
	canAll = canBool | canInt | canFloat | canDate | canTSNaive | canTSAware | canString
)

// inference collects what the sampled values of one column allow.
type inference struct {
	mask   uint8
	values int64
	nulls  int64
}

func newInference() inference { return inference{mask: canAll} }

func (in *inference) null() { in.nulls++ }

// text narrows the mask by a CSV cell (already known not to be NA).
func (in *inference) text(s string) {
	in.values++
	in.mask &= textMask(s)
}

// textMask returns the candidate types that can hold the text s.
func textMask(s string) uint8 {
	m := canString
	t := trimSpace(s)
	if len(t) == 0 {
		return m
	}
	if _, ok := parseBool(t); ok {
		return m | canBool
	}
	c := t[0]
	if c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9') || c == 'i' || c == 'I' {
		if _, err := strconv.ParseInt(t, 10, 64); err == nil {
			return m | canInt | canFloat
		}
		if isDecimalFloat(t) {
			if _, err := strconv.ParseFloat(t, 64); err == nil || errors.Is(err, strconv.ErrRange) {
				m |= canFloat
			}
		}
		if c >= '0' && c <= '9' && len(t) >= 10 && t[4] == '-' {
			if ts, ok := parseTime(t); ok {
				switch {
				case !ts.hasTime:
					m |= canDate | canTSNaive
				case ts.hasZone:
					m |= canTSAware
				default:
					m |= canTSNaive
				}
			}
		}
	}
	return m
}

// isDecimalFloat rejects the forms strconv.ParseFloat accepts but pandas
// does not read as numbers: hexadecimal floats and underscores.
func isDecimalFloat(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'x', 'X', '_', 'p', 'P':
			return false
		}
	}
	return true
}

// field returns the inferred field. rows is how many rows were seen.
func (in *inference) field(name string) Field {
	f := Field{Name: name, Nullable: in.nulls > 0}
	switch {
	case in.values == 0 && in.nulls == 0:
		f.Type = String
	case in.values == 0:
		f.Type = Float64 // an all-missing column, as pandas reads it
	case in.mask&canBool != 0:
		f.Type = Bool
	case in.mask&canInt != 0:
		f.Type = Int64
	case in.mask&canFloat != 0:
		f.Type = Float64
	case in.mask&canDate != 0:
		f.Type = Date
	case in.mask&canTSNaive != 0:
		f.Type, f.Unit = Timestamp, Nanosecond
	case in.mask&canTSAware != 0:
		f.Type, f.Unit, f.UTC = Timestamp, Nanosecond, true
	default:
		f.Type = String
	}
	return f
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// parseBool accepts pandas' default true_values and false_values.
func parseBool(s string) (v, ok bool) {
	switch s {
	case "True", "TRUE", "true":
		return true, true
	case "False", "FALSE", "false":
		return false, true
	}
	return false, false
}

// parsedTime is an ISO 8601 date or date-time.
type parsedTime struct {
	sec     int64 // seconds since the epoch (UTC instant; naive times as if UTC)
	nsec    int64
	hasTime bool
	hasZone bool
}

// days returns the date's days since the epoch.
func (p parsedTime) days() int64 { return floorDiv(p.sec, 86400) }

// in returns the instant in unit, or false when it overflows int64.
func (p parsedTime) in(unit TimeUnit) (int64, bool) {
	per := unit.PerSecond()
	if per == 0 {
		return 0, false
	}
	if p.sec > math.MaxInt64/per-1 || p.sec < math.MinInt64/per+1 {
		return 0, false
	}
	return p.sec*per + p.nsec/(1e9/per), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// parseTime parses YYYY-MM-DD[(T| )HH:MM[:SS[.fff…]]][Z|±HH[:MM]|±HHMM].
func parseTime(s string) (parsedTime, bool) {
	var p parsedTime
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return p, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return p, false
	}
	var hour, minute, second, nsec int
	i := 10
	if i < len(s) {
		if s[i] != 'T' && s[i] != ' ' {
			return p, false
		}
		var ok bool
		if hour, ok = num(i+1, 2); !ok || i+3 >= len(s) || s[i+3] != ':' {
			return p, false
		}
		if minute, ok = num(i+4, 2); !ok {
			return p, false
		}
		i += 6
		if i < len(s) && s[i] == ':' {
			if second, ok = num(i+1, 2); !ok {
				return p, false
			}
			i += 3
			if i < len(s) && (s[i] == '.' || s[i] == ',') {
				i++
				digits := 0
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					if digits < 9 {
						nsec = nsec*10 + int(s[i]-'0')
					}
					digits++
					i++
				}
				if digits == 0 {
					return p, false
				}
				for d := digits; d < 9; d++ {
					nsec *= 10
				}
			}
		}
		if hour > 23 || minute > 59 || second > 60 {
			return p, false
		}
		p.hasTime = true
	}
	offset := 0
	if i < len(s) {
		switch s[i] {
		case 'Z', 'z':
			i++
		case '+', '-':
			sign := 1
			if s[i] == '-' {
				sign = -1
			}
			oh, ok := num(i+1, 2)
			if !ok {
				return p, false
			}
			i += 3
			om := 0
			if i < len(s) && s[i] == ':' {
				i++
			}
			if i < len(s) {
				if om, ok = num(i, 2); !ok {
					return p, false
				}
				i += 2
			}
			if oh > 23 || om > 59 {
				return p, false
			}
			offset = sign * (oh*3600 + om*60)
		default:
			return p, false
		}
		if !p.hasTime || i != len(s) {
			return p, false
		}
		p.hasZone = true
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	p.sec = t.Unix() - int64(offset)
	p.nsec = int64(nsec)
	return p, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// builder appends values to one column of a batch being built.
type builder struct {
	field *Field
	col   Column
	n     int
	nulls int
}

func newBuilder(f *Field, capacity int) *builder {
	b := &builder{field: f}
	b.reset(capacity)
	return b
}

func (b *builder) reset(capacity int) {
	b.col = Column{Type: b.field.Type}
	b.n, b.nulls = 0, 0
	switch b.field.Type {
	case Bool:
		b.col.Bools = make([]bool, 0, capacity)
	case Int64, Timestamp, Date:
		b.col.Ints = make([]int64, 0, capacity)
	case Float64:
		b.col.Floats = make([]float64, 0, capacity)
	case String:
		b.col.Strs.Offsets = make([]int32, 1, capacity+1)
	}
}

// finish returns the column built so far and starts a new one.
func (b *builder) finish(capacity int) Column {
	c := b.col
	if b.nulls == 0 {
		c.Valid = nil
	}
	b.reset(capacity)
	return c
}

func (b *builder) appendNull() {
	if b.col.Valid == nil {
		b.col.Valid = NewBitmap(b.n)
	}
	b.appendZero()
	b.growValid(false)
	b.nulls++
}

func (b *builder) appendZero() {
	switch b.col.Type {
	case Bool:
		b.col.Bools = append(b.col.Bools, false)
	case Int64, Timestamp, Date:
		b.col.Ints = append(b.col.Ints, 0)
	case Float64:
		b.col.Floats = append(b.col.Floats, 0)
	case String:
		b.col.Strs.Offsets = append(b.col.Strs.Offsets, int32(len(b.col.Strs.Data)))
	}
}

// growValid records the validity of the row just appended.
func (b *builder) growValid(valid bool) {
	if b.col.Valid != nil {
		if b.n>>6 >= len(b.col.Valid) {
			b.col.Valid = append(b.col.Valid, 0)
		}
		b.col.Valid.Set(b.n, valid)
	}
	b.n++
}

func (b *builder) appendBool(v bool) {
	b.col.Bools = append(b.col.Bools, v)
	b.growValid(true)
}

// errMismatch explains why a value does not fit the column type.
func (b *builder) errMismatch(s string) error {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return invalidf(ErrTypeMismatch, "value %q is not a valid %s", s, typeDesc(*b.field))
}

// appendText parses s (not a missing marker) as the column's type.
func (b *builder) appendText(s string) error {
	f := b.field
	switch f.Type {
	case String:
		b.col.Strs.Data = append(b.col.Strs.Data, s...)
		b.col.Strs.Offsets = append(b.col.Strs.Offsets, int32(len(b.col.Strs.Data)))
		b.growValid(true)
		return nil
	case Bool:
		v, ok := parseBool(trimSpace(s))
		if !ok {
			return b.errMismatch(s)
		}
		b.appendBool(v)
		return nil
	case Int64:
		v, err := strconv.ParseInt(trimSpace(s), 10, 64)
		if err != nil {
			return b.errMismatch(s)
		}
		b.col.Ints = append(b.col.Ints, v)
	case Float64:
		t := trimSpace(s)
		v, err := strconv.ParseFloat(t, 64)
		if (err != nil && !errors.Is(err, strconv.ErrRange)) || !isDecimalFloat(t) {
			return b.errMismatch(s)
		}
		b.col.Floats = append(b.col.Floats, v)
	case Date:
		p, ok := parseTime(trimSpace(s))
		if !ok || p.hasTime {
			return b.errMismatch(s)
		}
		b.col.Ints = append(b.col.Ints, p.days())
	case Timestamp:
		p, ok := parseTime(trimSpace(s))
		if !ok {
			return b.errMismatch(s)
		}
		v, ok := p.in(f.Unit)
		if !ok {
			return invalidf(ErrTypeMismatch, "timestamp %q is out of range for unit %s", s, f.Unit)
		}
		b.col.Ints = append(b.col.Ints, v)
	default:
		return fmt.Errorf("table: builder for %v", f.Type)
	}
	b.growValid(true)
	return nil
}
