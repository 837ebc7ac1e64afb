package validate

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/kiln-ml/kiln/dataset/table"
)

func compile(e *env, r *Rule) (check, error) {
	switch r.Check {
	case CheckType:
		return compileType(e, r)
	case CheckNotNull:
		i, f, err := e.column(r.Columns[0])
		if err != nil {
			return nil, err
		}
		return &notNullCheck{rule: r, col: i, tally: tally{max: e.maxEx, field: f}}, nil
	case CheckRange:
		return compileRange(e, r)
	case CheckInSet:
		return compileInSet(e, r)
	case CheckRegex:
		return compileRegex(e, r)
	case CheckUnique:
		return compileUnique(e, r)
	case CheckRowCount:
		return &rowCountCheck{rule: r}, nil
	case CheckFreshness:
		return compileFreshness(e, r)
	case CheckDistribution:
		return compileDistribution(e, r)
	}
	return nil, fmt.Errorf("unknown check %q", r.Check)
}

// tally counts checked and failing values and keeps the first examples.
type tally struct {
	elements, unexpected int64
	examples             []Example
	max                  int
	field                *table.Field
}

func (t *tally) miss(c *table.Column, i int, row int64) {
	t.unexpected++
	if len(t.examples) < t.max {
		v := "<null>"
		if !c.Null(i) {
			v = c.Format(i, t.field)
		}
		t.examples = append(t.examples, Example{Row: row, Value: v})
	}
}

// fill sets res from the tally: passed when the share of passing values
// meets mostly.
func (t *tally) fill(res *Result, mostly Fraction) {
	res.Elements, res.Unexpected, res.Examples = t.elements, t.unexpected, t.examples
	if t.elements > 0 {
		res.UnexpectedFraction = float64(t.unexpected) / float64(t.elements)
	}
	if mostly.Met(t.elements-t.unexpected, t.elements) {
		res.Status = StatusPassed
	} else {
		res.Status = StatusFailed
	}
}

func mostlyText(m Fraction) string {
	if m.rat().Cmp(big.NewRat(1, 1)) == 0 {
		return ""
	}
	return ", mostly " + m.String()
}

func valid(c *table.Column, i int) bool {
	return c.Valid == nil || c.Valid[i>>6]&(1<<(uint(i)&63)) != 0
}

func nonNull(c *table.Column, n int) int64 { return int64(n - c.Valid.CountNulls(n)) }

// bytesString views b as a string for parsing; the string must not be kept.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// dictCache holds a per-entry verdict for a dictionary-encoded column, so
// that each distinct string is checked once per dictionary.
type dictCache struct {
	dict *table.Strings
	ok   []bool
}

func (d *dictCache) get(c *table.Column, test func([]byte) bool) []bool {
	if d.dict != c.Dict {
		d.dict = c.Dict
		n := c.Dict.Len()
		if cap(d.ok) < n {
			d.ok = make([]bool, n)
		}
		d.ok = d.ok[:n]
		for k := 0; k < n; k++ {
			d.ok[k] = test(c.Dict.At(k))
		}
	}
	return d.ok
}

// checkStrings runs test on every non-null value of a String column.
func (t *tally) checkStrings(c *table.Column, n int, base int64, cache *dictCache, test func([]byte) bool) {
	t.elements += nonNull(c, n)
	if c.Dict != nil {
		ok := cache.get(c, test)
		for i := 0; i < n; i++ {
			if valid(c, i) && !ok[c.Codes[i]] {
				t.miss(c, i, base+int64(i))
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		if valid(c, i) && !test(c.Strs.At(i)) {
			t.miss(c, i, base+int64(i))
		}
	}
}

// ---- type ----

type typeMode uint8

const (
	typeOK       typeMode = iota // the column's type is the expected one
	typeParse                    // a string column: each value must parse
	typeIntegral                 // a float column expected to hold ints
	typeMismatch                 // every value fails
)

type typeCheck struct {
	rule  *Rule
	col   int
	mode  typeMode
	parse func([]byte) bool
	cache dictCache
	tally
}

// typeSatisfies lists the column types that meet each expected type.
func typeSatisfies(want string, got table.Type) bool {
	switch want {
	case "bool":
		return got == table.Bool
	case "int":
		return got == table.Int64
	case "float":
		return got == table.Float64 || got == table.Int64
	case "string":
		return got == table.String
	case "timestamp":
		return got == table.Timestamp
	case "date":
		return got == table.Date
	}
	return false
}

func parseBoolText(s string) bool {
	return strings.EqualFold(s, "true") || strings.EqualFold(s, "false")
}

func textParser(want string) func([]byte) bool {
	switch want {
	case "bool":
		return func(b []byte) bool { return parseBoolText(strings.TrimSpace(bytesString(b))) }
	case "int":
		return func(b []byte) bool { return isInt(strings.TrimSpace(bytesString(b))) }
	case "float":
		return func(b []byte) bool { return isFloat(strings.TrimSpace(bytesString(b))) }
	case "timestamp":
		return func(b []byte) bool { _, ok := ParseTime(bytesString(b)); return ok }
	case "date":
		return func(b []byte) bool {
			_, dateOnly, ok := parseTime(strings.TrimSpace(bytesString(b)))
			return ok && dateOnly
		}
	}
	return func([]byte) bool { return false }
}

// isInt reports whether s is a decimal int64, without allocating (strconv
// allocates an error for every failure).
func isInt(s string) bool {
	d := s
	if len(d) > 0 && (d[0] == '+' || d[0] == '-') {
		d = d[1:]
	}
	if d == "" {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	if len(d) < 19 {
		return true
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// isFloat reports whether s is a decimal number (or NaN, Inf, Infinity) as
// strconv.ParseFloat reads it, without allocating for the common failures.
func isFloat(s string) bool {
	d := s
	if len(d) > 0 && (d[0] == '+' || d[0] == '-') {
		d = d[1:]
	}
	if strings.EqualFold(d, "nan") || strings.EqualFold(d, "inf") || strings.EqualFold(d, "infinity") {
		return true
	}
	digits, i := 0, 0
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(d) && d[i] == '.' {
		i++
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		exp := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(d) // out-of-range values read as ±Inf, as pandas reads them
}

func compileType(e *env, r *Rule) (check, error) {
	i, f, err := e.column(r.Columns[0])
	if err != nil {
		return nil, err
	}
	c := &typeCheck{rule: r, col: i, tally: tally{max: e.maxEx, field: f}}
	switch {
	case typeSatisfies(r.Type, f.Type):
		c.mode = typeOK
	case f.Type == table.String:
		c.mode, c.parse = typeParse, textParser(r.Type)
	case f.Type == table.Float64 && r.Type == "int":
		c.mode = typeIntegral
	default:
		c.mode = typeMismatch
	}
	return c, nil
}

func (c *typeCheck) observe(b *table.Batch, base int64) {
	col := &b.Columns[c.col]
	n := b.Len
	switch c.mode {
	case typeOK:
		c.elements += nonNull(col, n)
	case typeParse:
		c.checkStrings(col, n, base, &c.cache, c.parse)
	case typeIntegral:
		c.elements += nonNull(col, n)
		for i, v := range col.Floats[:n] {
			if valid(col, i) && !(v == math.Trunc(v) && math.Abs(v) < 0x1p63) {
				c.miss(col, i, base+int64(i))
			}
		}
	case typeMismatch:
		for i := 0; i < n; i++ {
			if valid(col, i) {
				c.elements++
				c.miss(col, i, base+int64(i))
			}
		}
	}
}

func (c *typeCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	c.fill(res, c.rule.Mostly)
	res.Expected = "type " + c.rule.Type + mostlyText(c.rule.Mostly)
	got := c.field.Type.String()
	switch c.mode {
	case typeOK:
		res.Observed = "column type " + got
	case typeParse:
		res.Observed = fmt.Sprintf("column type %s; %d of %d values do not parse as %s", got, c.unexpected, c.elements, c.rule.Type)
	case typeIntegral:
		res.Observed = fmt.Sprintf("column type %s; %d of %d values are not integers", got, c.unexpected, c.elements)
	default:
		res.Observed = "column type " + got
	}
}

// ---- not_null ----

type notNullCheck struct {
	rule *Rule
	col  int
	tally
}

func (c *notNullCheck) observe(b *table.Batch, base int64) {
	col := &b.Columns[c.col]
	n := b.Len
	c.elements += int64(n)
	if col.Valid != nil && col.Valid.CountNulls(n) > 0 {
		for i := 0; i < n; i++ {
			if !valid(col, i) {
				c.miss(col, i, base+int64(i))
			}
		}
	}
	if col.Type == table.Float64 { // NaN counts as missing, as in pandas
		for i, v := range col.Floats[:n] {
			if v != v && valid(col, i) {
				c.miss(col, i, base+int64(i))
			}
		}
	}
}

func (c *notNullCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	c.fill(res, c.rule.Mostly)
	res.Observed = fmt.Sprintf("%d missing of %d", c.unexpected, c.elements)
	res.Expected = "not null" + mostlyText(c.rule.Mostly)
}

// ---- range ----

type rangeCheck struct {
	rule  *Rule
	col   int
	typ   table.Type
	field *table.Field
	// Integer-valued columns (Int64, Timestamp, Date): inclusive limits in
	// the column's units; empty means no value can pass.
	lo, hi int64
	empty  bool
	// Float64 columns.
	flo, fhi     float64
	hasLo, hasHi bool
	min, max     float64 // observed (Float64)
	imin, imax   int64   // observed (integer-valued)
	seen         bool
	tally
}

func compileRange(e *env, r *Rule) (check, error) {
	i, f, err := e.column(r.Columns[0])
	if err != nil {
		return nil, err
	}
	c := &rangeCheck{rule: r, col: i, typ: f.Type, field: f, tally: tally{max: e.maxEx, field: f},
		lo: math.MinInt64, hi: math.MaxInt64, hasLo: r.Min != nil, hasHi: r.Max != nil}
	switch f.Type {
	case table.Int64, table.Float64:
		for _, b := range []*Bound{r.Min, r.Max} {
			if b != nil && b.IsTime {
				return nil, fmt.Errorf("column %q is %s: range bounds must be numbers, not the timestamp %q", f.Name, f.Type, b.Text)
			}
		}
	case table.Timestamp, table.Date:
		for _, b := range []*Bound{r.Min, r.Max} {
			if b != nil && !b.IsTime {
				return nil, fmt.Errorf("column %q is %s: range bounds must be timestamps or dates, not the number %s", f.Name, f.Type, b.Text)
			}
		}
	default:
		return nil, fmt.Errorf("column %q is %s: range needs a numeric, timestamp or date column", f.Name, f.Type)
	}
	switch f.Type {
	case table.Float64:
		if r.Min != nil {
			c.flo = r.Min.Number
		}
		if r.Max != nil {
			c.fhi = r.Max.Number
		}
	case table.Int64:
		if r.Min != nil {
			c.lo, c.empty = intLimit(r.Min, r.StrictMin, true)
		}
		if r.Max != nil {
			var empty bool
			c.hi, empty = intLimit(r.Max, r.StrictMax, false)
			c.empty = c.empty || empty
		}
	case table.Timestamp, table.Date:
		ns := nsPerUnit(f)
		if r.Min != nil {
			fl, ce := timeUnits(r.Min.Time, ns)
			c.lo = ce
			if r.StrictMin {
				c.lo, c.empty = satInc(fl)
			}
		}
		if r.Max != nil {
			fl, ce := timeUnits(r.Max.Time, ns)
			c.hi = fl
			if r.StrictMax {
				var empty bool
				c.hi, empty = satDec(ce)
				c.empty = c.empty || empty
			}
		}
	}
	if c.lo > c.hi {
		c.empty = true
	}
	return c, nil
}

func satInc(v int64) (int64, bool) {
	if v == math.MaxInt64 {
		return v, true
	}
	return v + 1, false
}

func satDec(v int64) (int64, bool) {
	if v == math.MinInt64 {
		return v, true
	}
	return v - 1, false
}

// intLimit turns a bound into an inclusive limit for int64 values: the
// smallest passing value (lower) or the largest (upper); empty when no
// int64 can pass.
func intLimit(b *Bound, strict, lower bool) (int64, bool) {
	if b.Int {
		v := b.IntValue
		switch {
		case !strict:
			return v, false
		case lower:
			return satInc(v)
		default:
			return satDec(v)
		}
	}
	x := b.Number
	if lower {
		c := math.Ceil(x)
		if strict && c == x {
			c++
		}
		switch {
		case c >= 0x1p63:
			return math.MaxInt64, true
		case c < -0x1p63:
			return math.MinInt64, false
		}
		return int64(c), false
	}
	f := math.Floor(x)
	if strict && f == x {
		f--
	}
	switch {
	case f < -0x1p63:
		return math.MinInt64, true
	case f >= 0x1p63:
		return math.MaxInt64, false
	}
	return int64(f), false
}

// nsPerUnit returns the nanoseconds in one unit of a Timestamp or Date
// column's values.
func nsPerUnit(f *table.Field) int64 {
	if f.Type == table.Date {
		return 86400 * 1e9
	}
	per := f.Unit.PerSecond()
	if per == 0 {
		per = 1e9
	}
	return 1e9 / per
}

// timeUnits returns t in units of ns nanoseconds since the epoch, rounded
// down and up, clamped to the int64 range.
func timeUnits(t time.Time, ns int64) (floor, ceil int64) {
	total := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
	total.Add(total, big.NewInt(int64(t.Nanosecond())))
	q, m := new(big.Int).DivMod(total, big.NewInt(ns), new(big.Int))
	c := new(big.Int).Set(q)
	if m.Sign() != 0 {
		c.Add(c, big.NewInt(1))
	}
	clamp := func(v *big.Int) int64 {
		switch {
		case v.IsInt64():
			return v.Int64()
		case v.Sign() < 0:
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return clamp(q), clamp(c)
}

// unitTime converts a Timestamp or Date value to a time.
func unitTime(v int64, f *table.Field) time.Time {
	if f.Type == table.Date {
		return time.Unix(v*86400, 0).UTC()
	}
	per := f.Unit.PerSecond()
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

func formatTime(t time.Time, f *table.Field) string {
	if f.Type == table.Date {
		return t.Format(time.DateOnly)
	}
	s := t.Format("2006-01-02T15:04:05.999999999")
	if f.UTC {
		s += "Z"
	}
	return s
}

func (c *rangeCheck) observe(b *table.Batch, base int64) {
	col := &b.Columns[c.col]
	n := b.Len
	c.elements += nonNull(col, n)
	if c.typ == table.Float64 {
		for i, v := range col.Floats[:n] {
			if !valid(col, i) {
				continue
			}
			if !c.seen || v < c.min {
				c.min = v
			}
			if !c.seen || v > c.max {
				c.max = v
			}
			c.seen = true
			ok := v == v
			if c.hasLo && ok {
				ok = v > c.flo || (!c.rule.StrictMin && v == c.flo)
			}
			if c.hasHi && ok {
				ok = v < c.fhi || (!c.rule.StrictMax && v == c.fhi)
			}
			if !ok {
				c.miss(col, i, base+int64(i))
			}
		}
		return
	}
	for i, v := range col.Ints[:n] {
		if !valid(col, i) {
			continue
		}
		if !c.seen || v < c.imin {
			c.imin = v
		}
		if !c.seen || v > c.imax {
			c.imax = v
		}
		c.seen = true
		if c.empty || v < c.lo || v > c.hi {
			c.miss(col, i, base+int64(i))
		}
	}
}

func (c *rangeCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	c.fill(res, c.rule.Mostly)
	var parts []string
	if c.rule.Min != nil {
		op := "≥"
		if c.rule.StrictMin {
			op = ">"
		}
		parts = append(parts, op+" "+c.rule.Min.Text)
	}
	if c.rule.Max != nil {
		op := "≤"
		if c.rule.StrictMax {
			op = "<"
		}
		parts = append(parts, op+" "+c.rule.Max.Text)
	}
	res.Expected = "value " + strings.Join(parts, " and ") + mostlyText(c.rule.Mostly)
	if !c.seen {
		res.Observed = "no values"
		return
	}
	switch c.typ {
	case table.Float64:
		res.Observed = fmt.Sprintf("min %s, max %s", fmtFloat(c.min), fmtFloat(c.max))
	case table.Int64:
		res.Observed = fmt.Sprintf("min %d, max %d", c.imin, c.imax)
	default:
		res.Observed = fmt.Sprintf("min %s, max %s", formatTime(unitTime(c.imin, c.field), c.field), formatTime(unitTime(c.imax, c.field), c.field))
	}
}

// parseFloatText parses a number as strconv does or in YAML's forms
// (.nan, .inf, -.inf, 1_000.5).
func parseFloatText(v string) (float64, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case ".nan":
		return math.NaN(), nil
	case ".inf", "+.inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// ---- in_set ----

type inSetCheck struct {
	rule  *Rule
	col   int
	typ   table.Type
	strs  map[string]struct{}
	ints  map[int64]struct{}
	flts  map[float64]struct{}
	nan   bool // NaN is allowed
	bools [2]bool
	cache dictCache
	tally
}

func compileInSet(e *env, r *Rule) (check, error) {
	i, f, err := e.column(r.Columns[0])
	if err != nil {
		return nil, err
	}
	c := &inSetCheck{rule: r, col: i, typ: f.Type, tally: tally{max: e.maxEx, field: f}}
	bad := func(v, what string) error {
		return fmt.Errorf("allowed value %q is not %s (column %q is %s)", v, what, f.Name, f.Type)
	}
	switch f.Type {
	case table.String:
		c.strs = make(map[string]struct{}, len(r.Values))
		for _, v := range r.Values {
			c.strs[v] = struct{}{}
		}
	case table.Int64:
		c.ints = make(map[int64]struct{}, len(r.Values))
		for _, v := range r.Values {
			x, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(v), "_", ""), 10, 64)
			if err != nil {
				return nil, bad(v, "an integer")
			}
			c.ints[x] = struct{}{}
		}
	case table.Float64:
		c.flts = make(map[float64]struct{}, len(r.Values))
		for _, v := range r.Values {
			x, err := parseFloatText(v)
			if err != nil {
				return nil, bad(v, "a number")
			}
			if x != x {
				c.nan = true
			}
			c.flts[x] = struct{}{}
		}
	case table.Bool:
		for _, v := range r.Values {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true":
				c.bools[1] = true
			case "false":
				c.bools[0] = true
			default:
				return nil, bad(v, "true or false")
			}
		}
	case table.Timestamp, table.Date:
		c.ints = make(map[int64]struct{}, len(r.Values))
		ns := nsPerUnit(f)
		for _, v := range r.Values {
			t, ok := ParseTime(v)
			if !ok {
				return nil, bad(v, "a timestamp")
			}
			if fl, ce := timeUnits(t, ns); fl == ce { // representable exactly
				c.ints[fl] = struct{}{}
			}
		}
	default:
		return nil, fmt.Errorf("column %q has type %s", f.Name, f.Type)
	}
	return c, nil
}

func (c *inSetCheck) observe(b *table.Batch, base int64) {
	col := &b.Columns[c.col]
	n := b.Len
	switch c.typ {
	case table.String:
		c.checkStrings(col, n, base, &c.cache, func(v []byte) bool {
			_, ok := c.strs[string(v)]
			return ok
		})
		return
	case table.Float64:
		c.elements += nonNull(col, n)
		for i, v := range col.Floats[:n] {
			if !valid(col, i) {
				continue
			}
			_, ok := c.flts[v]
			if !ok && !(v != v && c.nan) {
				c.miss(col, i, base+int64(i))
			}
		}
		return
	case table.Bool:
		c.elements += nonNull(col, n)
		for i, v := range col.Bools[:n] {
			k := 0
			if v {
				k = 1
			}
			if valid(col, i) && !c.bools[k] {
				c.miss(col, i, base+int64(i))
			}
		}
		return
	}
	c.elements += nonNull(col, n)
	for i, v := range col.Ints[:n] {
		if !valid(col, i) {
			continue
		}
		if _, ok := c.ints[v]; !ok {
			c.miss(col, i, base+int64(i))
		}
	}
}

func (c *inSetCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	c.fill(res, c.rule.Mostly)
	res.Observed = fmt.Sprintf("%d of %d values outside the set", c.unexpected, c.elements)
	res.Expected = "in {" + listText(c.rule.Values, 6) + "}" + mostlyText(c.rule.Mostly)
}

func listText(v []string, n int) string {
	if len(v) <= n {
		return strings.Join(v, ", ")
	}
	return strings.Join(v[:n], ", ") + fmt.Sprintf(", … (%d values)", len(v))
}

// ---- regex ----

type regexCheck struct {
	rule  *Rule
	col   int
	cache dictCache
	tally
}

func compileRegex(e *env, r *Rule) (check, error) {
	i, f, err := e.column(r.Columns[0])
	if err != nil {
		return nil, err
	}
	if f.Type != table.String {
		return nil, fmt.Errorf("column %q is %s: regex needs a string column", f.Name, f.Type)
	}
	if r.Regexp == nil {
		re, err := CompileRegex(r.Pattern)
		if err != nil {
			return nil, err
		}
		r.Regexp = re
	}
	return &regexCheck{rule: r, col: i, tally: tally{max: e.maxEx, field: f}}, nil
}

func (c *regexCheck) observe(b *table.Batch, base int64) {
	c.checkStrings(&b.Columns[c.col], b.Len, base, &c.cache, c.rule.Regexp.Match)
}

func (c *regexCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	c.fill(res, c.rule.Mostly)
	res.Observed = fmt.Sprintf("%d of %d values do not match", c.unexpected, c.elements)
	res.Expected = "matches " + c.rule.Pattern + mostlyText(c.rule.Mostly)
}

// ---- row_count ----

type rowCountCheck struct{ rule *Rule }

func (c *rowCountCheck) finish(_ context.Context, res *Result, rows int64, _ *Suite, _ *referenceCache) {
	res.Elements = rows
	res.Observed = fmt.Sprintf("%d rows", rows)
	var parts []string
	ok := true
	if c.rule.MinRows != nil {
		parts = append(parts, fmt.Sprintf("≥ %d", *c.rule.MinRows))
		ok = ok && rows >= *c.rule.MinRows
	}
	if c.rule.MaxRows != nil {
		parts = append(parts, fmt.Sprintf("≤ %d", *c.rule.MaxRows))
		ok = ok && rows <= *c.rule.MaxRows
	}
	res.Expected = "rows " + strings.Join(parts, " and ")
	res.Status = StatusFailed
	if ok {
		res.Status = StatusPassed
	}
}

// ---- freshness ----

type freshnessCheck struct {
	rule   *Rule
	col    int
	field  *table.Field
	latest int64
	seen   bool
	now    func() time.Time
}

func compileFreshness(e *env, r *Rule) (check, error) {
	i, f, err := e.column(r.Columns[0])
	if err != nil {
		return nil, err
	}
	if f.Type != table.Timestamp && f.Type != table.Date {
		return nil, fmt.Errorf("column %q is %s: freshness needs a timestamp or date column", f.Name, f.Type)
	}
	return &freshnessCheck{rule: r, col: i, field: f, now: e.opts.now}, nil
}

func (c *freshnessCheck) observe(b *table.Batch, _ int64) {
	col := &b.Columns[c.col]
	for i, v := range col.Ints[:b.Len] {
		if valid(col, i) && (!c.seen || v > c.latest) {
			c.latest, c.seen = v, true
		}
	}
}

func (c *freshnessCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	res.Expected = "latest value at most " + c.rule.MaxAge.String() + " old"
	if !c.seen {
		res.Status, res.Observed = StatusFailed, "no values"
		return
	}
	res.Elements = 1
	t := unitTime(c.latest, c.field)
	if c.field.Type == table.Date {
		// A date is fresh for its whole day: its age counts from its end.
		t = t.Add(24 * time.Hour)
	}
	age := c.now().Sub(t)
	res.Observed = fmt.Sprintf("latest %s, age %s", formatTime(unitTime(c.latest, c.field), c.field), roundAge(age))
	res.Status = StatusFailed
	if age <= c.rule.MaxAge {
		res.Status = StatusPassed
	}
}

func roundAge(d time.Duration) time.Duration {
	switch {
	case d > time.Hour || d < -time.Hour:
		return d.Round(time.Second)
	case d > time.Second || d < -time.Second:
		return d.Round(time.Millisecond)
	}
	return d
}
