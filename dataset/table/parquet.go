package table

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"runtime"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// RowCounter is implemented by readers that know their row count without
// reading the rows (Parquet, from its footer).
type RowCounter interface {
	NumRows() int64
}

// conv says how a Parquet column's physical values become a Column.
type conv uint8

const (
	convBool conv = iota
	convInt32
	convUint32
	convInt64
	convUint64
	convInt96 // legacy timestamps: nanoseconds of day + Julian day
	convFloat32
	convFloat64
	convDecInt32
	convDecInt64
	convDecBytes
	convFloat16
	convBytes
	convFixed
	convUUID
)

type pqColumn struct {
	field   Field
	leaf    int
	conv    conv
	scale   int
	typeLen int
	maxDef  byte

	// State within the current row group.
	pages    parquet.Pages
	page     parquet.Page
	data     encoding.Values
	idx      []int32 // dictionary indexes of the current page, or nil
	defs     []byte
	pageRows int
	rowPos   int
	valPos   int
	nvals    int

	dict     parquet.Dictionary // dictionary the cached values come from
	dvInts   []int64
	dvFloats []float64
	dvBools  []bool
	dvStrs   *Strings

	tmpInts   []int64
	tmpFloats []float64
	tmpBools  []bool
}

type parquetReader struct {
	file      *parquet.File
	schema    Schema
	cols      []*pqColumn
	batchRows int
	parallel  int
	rg        int
	rgRows    int64
	rgPos     int64
	started   bool
}

// pandasMeta is the part of pandas' "pandas" key-value metadata we use.
type pandasMeta struct {
	IndexColumns []json.RawMessage `json:"index_columns"`
	Columns      []struct {
		Name       *string `json:"name"`
		FieldName  string  `json:"field_name"`
		PandasType string  `json:"pandas_type"`
		Metadata   struct {
			Timezone string `json:"timezone"`
		} `json:"metadata"`
	} `json:"columns"`
}

func openParquet(ctx context.Context, src io.ReaderAt, size int64, opts Options) (r *parquetReader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, invalidf(ErrFormat, "corrupt Parquet file: %v", p)
		}
	}()
	if err := checkFooter(src, size); err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(src, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return nil, invalidf(ErrFormat, "not a readable Parquet file: %v", err)
	}
	meta := f.Metadata()
	if len(meta.Schema) == 0 {
		return nil, invalidf(ErrFormat, "Parquet file has no schema")
	}
	var pm pandasMeta
	indexCols := map[string]bool{}
	categorical := map[string]bool{}
	zones := map[string]string{}
	if s, ok := f.Lookup("pandas"); ok && json.Unmarshal([]byte(s), &pm) == nil {
		for _, raw := range pm.IndexColumns {
			var name string
			if json.Unmarshal(raw, &name) == nil {
				indexCols[name] = true
			}
		}
		for _, c := range pm.Columns {
			name := c.FieldName
			switch c.PandasType {
			case "categorical":
				categorical[name] = true
			case "datetimetz":
				zones[name] = c.Metadata.Timezone
			}
		}
	}

	// Walk the flat schema list: top-level fields, their leaf positions,
	// and nested fields to reject.
	type top struct {
		el     *format.SchemaElement
		leaf   int
		nested string
	}
	var tops []top
	var names []string
	elems := meta.Schema
	pos, leaf := 1, 0
	var skip func() (leaves int, err error)
	skip = func() (int, error) { // consumes the element at pos and its subtree
		if pos >= len(elems) {
			return 0, invalidf(ErrFormat, "Parquet schema is truncated")
		}
		e := &elems[pos]
		pos++
		n, _ := e.NumChildren.Get()
		if n <= 0 {
			return 1, nil
		}
		total := 0
		for range n {
			k, err := skip()
			if err != nil {
				return 0, err
			}
			total += k
		}
		return total, nil
	}
	rootChildren, _ := elems[0].NumChildren.Get()
	for range rootChildren {
		if pos >= len(elems) {
			return nil, invalidf(ErrFormat, "Parquet schema is truncated")
		}
		e := &elems[pos]
		t := top{el: e, leaf: leaf, nested: nestedKind(e)}
		k, err := skip()
		if err != nil {
			return nil, err
		}
		leaf += k
		tops = append(tops, t)
		names = append(names, e.Name)
	}
	want := opts.Columns
	if len(want) == 0 {
		for _, n := range names {
			if !indexCols[n] {
				want = append(want, n)
			}
		}
	}
	proj, err := projection(names, want)
	if err != nil {
		return nil, err
	}
	r = &parquetReader{file: f, batchRows: opts.batchRows(), parallel: opts.Parallelism}
	if r.parallel <= 0 {
		r.parallel = runtime.GOMAXPROCS(0)
	}
	for _, j := range proj {
		t := tops[j]
		if t.nested != "" {
			return nil, invalidf(ErrNested, "Parquet column %q is a %s; nested columns (lists, structs, maps) are not supported (read the other columns with Options.Columns)", t.el.Name, t.nested)
		}
		c, err := pqColumnFor(t.el)
		if err != nil {
			return nil, err
		}
		c.leaf = t.leaf
		if categorical[c.field.Name] && c.field.Type == String {
			c.field.Categorical = true
		}
		if z, ok := zones[c.field.Name]; ok && c.field.Type == Timestamp {
			c.field.TimeZone = z
		}
		r.cols = append(r.cols, c)
		r.schema.Fields = append(r.schema.Fields, c.field)
	}
	if len(r.cols) == 0 {
		return nil, invalidf(ErrSchema, "Parquet file has no columns to read")
	}
	for _, rg := range f.RowGroups() {
		if len(rg.ColumnChunks()) != leaf {
			return nil, invalidf(ErrFormat, "Parquet row group has %d column chunks, schema %d leaves", len(rg.ColumnChunks()), leaf)
		}
	}
	return r, nil
}

// checkFooter validates the file's trailer (footer length and magic)
// before parquet-go allocates the footer it claims.
func checkFooter(src io.ReaderAt, size int64) error {
	if size < 12 {
		return invalidf(ErrFormat, "not a Parquet file: %d bytes", size)
	}
	var tail [8]byte
	if _, err := src.ReadAt(tail[:], size-8); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch string(tail[4:]) {
	case "PAR1":
	case "PARE":
		return invalidf(ErrFormat, "encrypted Parquet files are not supported")
	default:
		return invalidf(ErrFormat, "not a Parquet file: no PAR1 footer")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n+12 > size {
		return invalidf(ErrFormat, "corrupt Parquet file: footer of %d bytes in a %d-byte file", n, size)
	}
	return nil
}

// nestedKind names the nesting of a top-level schema element, or "".
func nestedKind(e *format.SchemaElement) string {
	n, _ := e.NumChildren.Get()
	rep, _ := e.RepetitionType.Get()
	ct, hasCT := e.ConvertedType.Get()
	switch e.LogicalType.Value.(type) {
	case *format.ListType:
		return "list"
	case *format.MapType:
		return "map"
	case *format.VariantType:
		return "variant"
	}
	switch {
	case hasCT && ct == deprecated.List:
		return "list"
	case hasCT && (ct == deprecated.Map || ct == deprecated.MapKeyValue):
		return "map"
	case n > 0:
		return "struct"
	case rep == format.Repeated:
		return "repeated field (list)"
	}
	return ""
}

// pqColumnFor maps a leaf schema element to a column and its conversion.
func pqColumnFor(e *format.SchemaElement) (*pqColumn, error) {
	c := &pqColumn{field: Field{Name: e.Name}}
	rep, _ := e.RepetitionType.Get()
	if rep == format.Optional {
		c.field.Nullable, c.maxDef = true, 1
	}
	phys, ok := e.Type.Get()
	if !ok {
		return nil, invalidf(ErrFormat, "Parquet column %q has no physical type", e.Name)
	}
	ct, hasCT := e.ConvertedType.Get()
	tl, _ := e.TypeLength.Get()
	c.typeLen = int(tl)
	scale, _ := e.Scale.Get()
	prec, _ := e.Precision.Get()
	isDecimal := hasCT && ct == deprecated.Decimal
	if d, ok := e.LogicalType.Value.(*format.DecimalType); ok {
		isDecimal, scale, prec = true, d.Scale, d.Precision
	}
	c.scale = int(scale)
	decimalNote := fmt.Sprintf("decimal(%d,%d) read as float64", prec, scale)
	f := &c.field
	switch phys {
	case format.Boolean:
		f.Type, c.conv = Bool, convBool
	case format.Int32:
		f.Type, c.conv = Int64, convInt32
		switch lt := e.LogicalType.Value.(type) {
		case *format.IntType:
			if !lt.IsSigned {
				c.conv = convUint32
			}
		case *format.DateType:
			f.Type = Date
		case *format.TimeType:
			f.Note = "time of day in " + timeUnitOf(&lt.Unit)
		}
		switch {
		case isDecimal:
			f.Type, c.conv, f.Note = Float64, convDecInt32, decimalNote
		case hasCT && ct == deprecated.Date:
			f.Type = Date
		case hasCT && (ct == deprecated.Uint8 || ct == deprecated.Uint16 || ct == deprecated.Uint32):
			c.conv = convUint32
		case hasCT && ct == deprecated.TimeMillis:
			f.Note = "time of day in ms"
		}
	case format.Int64:
		f.Type, c.conv = Int64, convInt64
		switch lt := e.LogicalType.Value.(type) {
		case *format.IntType:
			if !lt.IsSigned {
				c.conv, f.Note = convUint64, "unsigned 64-bit integers read as int64"
			}
		case *format.TimestampType:
			f.Type, f.Unit, f.UTC = Timestamp, TimeUnit(timeUnitOf(&lt.Unit)), lt.IsAdjustedToUTC
		case *format.TimeType:
			f.Note = "time of day in " + timeUnitOf(&lt.Unit)
		}
		switch {
		case isDecimal:
			f.Type, c.conv, f.Note = Float64, convDecInt64, decimalNote
		case f.Type == Timestamp:
		case hasCT && ct == deprecated.TimestampMillis:
			f.Type, f.Unit, f.UTC = Timestamp, Millisecond, true
		case hasCT && ct == deprecated.TimestampMicros:
			f.Type, f.Unit, f.UTC = Timestamp, Microsecond, true
		case hasCT && ct == deprecated.Uint64:
			c.conv, f.Note = convUint64, "unsigned 64-bit integers read as int64"
		case hasCT && ct == deprecated.TimeMicros:
			f.Note = "time of day in us"
		}
	case format.Int96:
		f.Type, f.Unit, c.conv = Timestamp, Nanosecond, convInt96
	case format.Float:
		f.Type, c.conv = Float64, convFloat32
	case format.Double:
		f.Type, c.conv = Float64, convFloat64
	case format.ByteArray:
		f.Type, c.conv = String, convBytes
		if isDecimal {
			f.Type, c.conv, f.Note = Float64, convDecBytes, decimalNote
		}
	case format.FixedLenByteArray:
		f.Type, c.conv = String, convFixed
		switch e.LogicalType.Value.(type) {
		case *format.UUIDType:
			c.conv = convUUID
		case *format.Float16Type:
			f.Type, c.conv = Float64, convFloat16
		}
		if isDecimal {
			f.Type, c.conv, f.Note = Float64, convDecBytes, decimalNote
		}
		if c.typeLen <= 0 {
			return nil, invalidf(ErrFormat, "Parquet column %q: fixed-length byte array without a length", e.Name)
		}
	default:
		return nil, invalidf(ErrFormat, "Parquet column %q has unknown physical type %d", e.Name, phys)
	}
	return c, nil
}

func timeUnitOf(u *format.TimeUnit) string {
	switch u.Value.(type) {
	case *format.MilliSeconds:
		return string(Millisecond)
	case *format.MicroSeconds:
		return string(Microsecond)
	}
	return string(Nanosecond)
}

func (r *parquetReader) Schema() Schema { return r.schema.Clone() }

func (r *parquetReader) NumRows() int64 { return r.file.NumRows() }

func (r *parquetReader) Close() error {
	var errs []error
	for _, c := range r.cols {
		errs = append(errs, c.closePages())
	}
	return errors.Join(errs...)
}

func (c *pqColumn) closePages() error {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	if c.pages != nil {
		err := c.pages.Close()
		c.pages = nil
		return err
	}
	return nil
}

func (r *parquetReader) Next(ctx context.Context) (_ *Batch, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = invalidf(ErrFormat, "corrupt Parquet file: %v", p)
		}
	}()
	groups := r.file.RowGroups()
	for !r.started || r.rgPos >= r.rgRows {
		if r.started {
			r.rg++
		}
		r.started = true
		for _, c := range r.cols {
			if err := c.closePages(); err != nil {
				return nil, err
			}
		}
		if r.rg >= len(groups) {
			return nil, io.EOF
		}
		rg := groups[r.rg]
		r.rgRows, r.rgPos = rg.NumRows(), 0
		chunks := rg.ColumnChunks()
		for _, c := range r.cols {
			c.pages = chunks[c.leaf].Pages()
			c.page, c.dict = nil, nil
		}
	}
	n := int(min(int64(r.batchRows), r.rgRows-r.rgPos))
	b := &Batch{Len: n, Columns: make([]Column, len(r.cols))}
	if r.parallel <= 1 || len(r.cols) == 1 {
		for i, c := range r.cols {
			if err := c.decode(&b.Columns[i], n); err != nil {
				return nil, err
			}
		}
	} else {
		errs := make([]error, len(r.cols))
		sem := make(chan struct{}, r.parallel)
		var wg sync.WaitGroup
		for i, c := range r.cols {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() {
					if p := recover(); p != nil {
						errs[i] = invalidf(ErrFormat, "corrupt Parquet file: %v", p)
					}
					<-sem
					wg.Done()
				}()
				errs[i] = c.decode(&b.Columns[i], n)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	r.rgPos += int64(n)
	return b, nil
}

func (c *pqColumn) errCorrupt(format string, args ...any) error {
	return invalidf(ErrFormat, "Parquet column %q: %s", c.field.Name, fmt.Sprintf(format, args...))
}

// nextPage loads the column's next page in the row group.
func (c *pqColumn) nextPage() error {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	p, err := c.pages.ReadPage()
	if errors.Is(err, io.EOF) {
		return c.errCorrupt("fewer values than the row group's row count")
	}
	if err != nil {
		return c.errCorrupt("%v", err)
	}
	c.page = p
	c.data = p.Data()
	c.idx = nil
	if d := p.Dictionary(); d != nil {
		if c.data.Kind() != encoding.Int32 {
			return c.errCorrupt("dictionary page without indexes")
		}
		c.idx = c.data.Int32()
		c.nvals = len(c.idx)
		if err := c.loadDict(d); err != nil {
			return err
		}
	} else {
		c.nvals = c.valueCount(&c.data)
	}
	c.defs = p.DefinitionLevels()
	c.pageRows = int(p.NumRows())
	if c.maxDef == 0 {
		c.pageRows = int(p.NumValues())
		c.defs = nil
	} else if len(c.defs) != c.pageRows {
		return c.errCorrupt("%d definition levels for %d rows", len(c.defs), c.pageRows)
	}
	c.rowPos, c.valPos = 0, 0
	if c.pageRows < 0 || (c.maxDef == 0 && c.nvals < c.pageRows) {
		return c.errCorrupt("page holds fewer values than rows")
	}
	return nil
}

// valueCount returns how many physical values v holds.
func (c *pqColumn) valueCount(v *encoding.Values) int {
	switch v.Kind() {
	case encoding.Boolean:
		return len(v.Boolean()) * 8 // an upper bound: bits are packed
	case encoding.Int32:
		return len(v.Int32())
	case encoding.Int64:
		return len(v.Int64())
	case encoding.Int96:
		return len(v.Int96())
	case encoding.Float:
		return len(v.Float())
	case encoding.Double:
		return len(v.Double())
	case encoding.ByteArray:
		_, off := v.ByteArray()
		return max(len(off)-1, 0)
	case encoding.FixedLenByteArray:
		data, size := v.FixedLenByteArray()
		if size <= 0 {
			return 0
		}
		return len(data) / size
	}
	return 0
}

// loadDict converts a dictionary's values once per dictionary.
func (c *pqColumn) loadDict(d parquet.Dictionary) error {
	if d == c.dict {
		return nil
	}
	c.dict = d
	dp := d.Page()
	vals := dp.Data()
	n := c.valueCount(&vals)
	if vals.Kind() == encoding.Boolean {
		n = d.Len()
	}
	if n < d.Len() {
		return c.errCorrupt("dictionary holds fewer values than it claims")
	}
	n = d.Len()
	switch c.field.Type {
	case Int64, Timestamp, Date:
		c.dvInts = make([]int64, n)
		return c.convInts(&vals, 0, c.dvInts)
	case Float64:
		c.dvFloats = make([]float64, n)
		return c.convFloats(&vals, 0, c.dvFloats)
	case Bool:
		c.dvBools = make([]bool, n)
		return c.convBools(&vals, 0, c.dvBools)
	case String:
		s := &Strings{Offsets: make([]int32, 1, n+1)}
		if err := c.convStrings(&vals, 0, n, s); err != nil {
			return err
		}
		if s.Len() == 0 {
			s.Append(nil) // a code for null rows
		}
		c.dvStrs = s
	}
	return nil
}

// decode fills dst with the next n rows of the column.
func (c *pqColumn) decode(dst *Column, n int) error {
	dst.Type = c.field.Type
	switch dst.Type {
	case Int64, Timestamp, Date:
		dst.Ints = make([]int64, n)
	case Float64:
		dst.Floats = make([]float64, n)
	case Bool:
		dst.Bools = make([]bool, n)
	}
	nulls := 0
	out := 0
	for out < n {
		if c.page == nil || c.rowPos >= c.pageRows {
			if err := c.nextPage(); err != nil {
				return err
			}
			continue
		}
		m := min(n-out, c.pageRows-c.rowPos)
		var defs []byte
		nonNull := m
		if c.maxDef > 0 {
			defs = c.defs[c.rowPos : c.rowPos+m]
			nonNull = 0
			for _, d := range defs {
				if d == c.maxDef {
					nonNull++
				}
			}
			if nonNull == m {
				defs = nil
			}
		}
		if c.valPos+nonNull > c.nvals {
			return c.errCorrupt("page holds fewer values than its definition levels say")
		}
		if defs != nil {
			if dst.Valid == nil {
				dst.Valid = NewBitmap(n)
			}
			for j, d := range defs {
				if d != c.maxDef {
					dst.Valid.Set(out+j, false)
				}
			}
			nulls += m - nonNull
		}
		var err error
		switch dst.Type {
		case Int64, Timestamp, Date:
			err = fillScatter(c, dst.Ints[out:out+m], defs, nonNull, &c.tmpInts, c.dvInts, c.convInts)
		case Float64:
			err = fillScatter(c, dst.Floats[out:out+m], defs, nonNull, &c.tmpFloats, c.dvFloats, c.convFloats)
		case Bool:
			err = fillScatter(c, dst.Bools[out:out+m], defs, nonNull, &c.tmpBools, c.dvBools, c.convBools)
		case String:
			err = c.fillStrings(dst, out, m, defs, nonNull)
		}
		if err != nil {
			return err
		}
		c.rowPos += m
		c.valPos += nonNull
		out += m
	}
	if nulls == 0 {
		dst.Valid = nil
	}
	if dst.Type == String && dst.Dict == nil && len(dst.Strs.Offsets) == 0 {
		dst.Strs.Offsets = []int32{0}
	}
	return nil
}

// fillScatter writes the page's next nonNull values into the rows of dst
// whose definition level is the maximum (all rows when defs is nil),
// through the dictionary values dv for dictionary-encoded pages.
func fillScatter[T any](c *pqColumn, dst []T, defs []byte, nonNull int, tmp *[]T, dv []T, conv func(*encoding.Values, int, []T) error) error {
	into := dst
	if defs != nil {
		if cap(*tmp) < nonNull {
			*tmp = make([]T, nonNull)
		}
		into = (*tmp)[:nonNull]
	}
	if c.idx != nil {
		idx := c.idx[c.valPos : c.valPos+nonNull]
		for k, i := range idx {
			if uint(i) >= uint(len(dv)) {
				return c.errCorrupt("dictionary index %d out of range", i)
			}
			into[k] = dv[i]
		}
	} else if err := conv(&c.data, c.valPos, into); err != nil {
		return err
	}
	if defs != nil {
		k := 0
		for j, d := range defs {
			if d == c.maxDef {
				dst[j] = into[k]
				k++
			}
		}
	}
	return nil
}

// convInts converts len(dst) values starting at value lo.
func (c *pqColumn) convInts(v *encoding.Values, lo int, dst []int64) error {
	n := len(dst)
	switch c.conv {
	case convInt32, convUint32:
		if v.Kind() != encoding.Int32 {
			return c.errKind(v)
		}
		src := v.Int32()[lo : lo+n]
		if c.conv == convUint32 {
			for i, x := range src {
				dst[i] = int64(uint32(x))
			}
		} else {
			for i, x := range src {
				dst[i] = int64(x)
			}
		}
	case convInt64, convUint64:
		if v.Kind() != encoding.Int64 {
			return c.errKind(v)
		}
		src := v.Int64()[lo : lo+n]
		copy(dst, src)
		if c.conv == convUint64 {
			for _, x := range src {
				if x < 0 {
					return invalidf(ErrTypeMismatch, "Parquet column %q: unsigned value %d does not fit int64", c.field.Name, uint64(x))
				}
			}
		}
	case convInt96:
		if v.Kind() != encoding.Int96 {
			return c.errKind(v)
		}
		for i, x := range v.Int96()[lo : lo+n] {
			nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
			days := int64(x[2]) - 2440588 // Julian day of 1970-01-01
			dst[i] = days*86400e9 + nanos
		}
	default:
		return c.errCorrupt("cannot read %v as integers", c.conv)
	}
	return nil
}

func (c *pqColumn) errKind(v *encoding.Values) error {
	return c.errCorrupt("unexpected physical values of kind %v", v.Kind())
}

func (c *pqColumn) convFloats(v *encoding.Values, lo int, dst []float64) error {
	n := len(dst)
	switch c.conv {
	case convFloat64:
		if v.Kind() != encoding.Double {
			return c.errKind(v)
		}
		copy(dst, v.Double()[lo:lo+n])
	case convFloat32:
		if v.Kind() != encoding.Float {
			return c.errKind(v)
		}
		for i, x := range v.Float()[lo : lo+n] {
			dst[i] = float64(x)
		}
	case convDecInt32:
		if v.Kind() != encoding.Int32 {
			return c.errKind(v)
		}
		div := math.Pow10(c.scale)
		for i, x := range v.Int32()[lo : lo+n] {
			dst[i] = float64(x) / div
		}
	case convDecInt64:
		if v.Kind() != encoding.Int64 {
			return c.errKind(v)
		}
		div := math.Pow10(c.scale)
		for i, x := range v.Int64()[lo : lo+n] {
			dst[i] = float64(x) / div
		}
	case convDecBytes, convFloat16:
		div := math.Pow10(c.scale)
		return c.eachBytes(v, lo, n, func(i int, b []byte) {
			if c.conv == convFloat16 {
				if len(b) == 2 {
					dst[i] = half(uint16(b[0]) | uint16(b[1])<<8)
				}
				return
			}
			dst[i] = decimalFloat(b) / div
		})
	default:
		return c.errCorrupt("cannot read %v as floats", c.conv)
	}
	return nil
}

func (c *pqColumn) convBools(v *encoding.Values, lo int, dst []bool) error {
	if v.Kind() != encoding.Boolean {
		return c.errKind(v)
	}
	bits := v.Boolean()
	if (lo+len(dst)+7)/8 > len(bits) {
		return c.errCorrupt("page holds fewer booleans than rows")
	}
	for i := range dst {
		k := lo + i
		dst[i] = bits[k>>3]>>(k&7)&1 != 0
	}
	return nil
}

// eachBytes calls fn for values lo..lo+n of a byte-array page.
func (c *pqColumn) eachBytes(v *encoding.Values, lo, n int, fn func(int, []byte)) error {
	switch v.Kind() {
	case encoding.ByteArray:
		data, off := v.ByteArray()
		if lo+n >= len(off) && n > 0 {
			return c.errCorrupt("page holds fewer values than rows")
		}
		for i := range n {
			a, b := off[lo+i], off[lo+i+1]
			if a > b || int(b) > len(data) {
				return c.errCorrupt("byte array offsets out of range")
			}
			fn(i, data[a:b])
		}
	case encoding.FixedLenByteArray:
		data, size := v.FixedLenByteArray()
		if size <= 0 || (lo+n)*size > len(data) {
			return c.errCorrupt("page holds fewer values than rows")
		}
		for i := range n {
			k := (lo + i) * size
			fn(i, data[k:k+size])
		}
	default:
		return c.errKind(v)
	}
	return nil
}

// convStrings appends values lo..lo+n to s.
func (c *pqColumn) convStrings(v *encoding.Values, lo, n int, s *Strings) error {
	var hexbuf [36]byte
	return c.eachBytes(v, lo, n, func(_ int, b []byte) {
		if c.conv == convUUID && len(b) == 16 {
			hex.Encode(hexbuf[0:8], b[0:4])
			hexbuf[8] = '-'
			hex.Encode(hexbuf[9:13], b[4:6])
			hexbuf[13] = '-'
			hex.Encode(hexbuf[14:18], b[6:8])
			hexbuf[18] = '-'
			hex.Encode(hexbuf[19:23], b[8:10])
			hexbuf[23] = '-'
			hex.Encode(hexbuf[24:36], b[10:16])
			b = hexbuf[:]
		}
		s.Append(b)
	})
}

// fillStrings writes rows out..out+m of a String column: dictionary codes
// while every page so far used the same dictionary, plain strings
// otherwise.
func (c *pqColumn) fillStrings(dst *Column, out, m int, defs []byte, nonNull int) error {
	if c.idx != nil && (out == 0 || (dst.Dict != nil && dst.Dict == c.dvStrs)) {
		if dst.Dict == nil {
			dst.Dict = c.dvStrs
			dst.Codes = make([]int32, 0, m)
		}
		idx := c.idx[c.valPos : c.valPos+nonNull]
		k := 0
		for j := range m {
			var code int32
			if defs == nil || defs[j] == c.maxDef {
				code = idx[k]
				k++
				if uint(code) >= uint(c.dvStrs.Len()) {
					return c.errCorrupt("dictionary index %d out of range", code)
				}
			}
			dst.Codes = append(dst.Codes, code)
		}
		return nil
	}
	if dst.Dict != nil { // switch this batch to plain strings
		plain := Strings{Offsets: make([]int32, 1, len(dst.Codes)+m+1)}
		for _, code := range dst.Codes {
			plain.Append(dst.Dict.At(int(code)))
		}
		dst.Strs, dst.Dict, dst.Codes = plain, nil, nil
	}
	if len(dst.Strs.Offsets) == 0 {
		dst.Strs.Offsets = append(dst.Strs.Offsets, 0)
	}
	if c.idx != nil {
		idx := c.idx[c.valPos : c.valPos+nonNull]
		k := 0
		for j := range m {
			if defs == nil || defs[j] == c.maxDef {
				code := idx[k]
				k++
				if uint(code) >= uint(c.dvStrs.Len()) {
					return c.errCorrupt("dictionary index %d out of range", code)
				}
				dst.Strs.Append(c.dvStrs.At(int(code)))
			} else {
				dst.Strs.Append(nil)
			}
		}
		return nil
	}
	if defs == nil {
		return c.convStrings(&c.data, c.valPos, nonNull, &dst.Strs)
	}
	var tmp Strings
	if err := c.convStrings(&c.data, c.valPos, nonNull, &tmp); err != nil {
		return err
	}
	k := 0
	for j := range m {
		if defs[j] == c.maxDef {
			dst.Strs.Append(tmp.At(k))
			k++
		} else {
			dst.Strs.Append(nil)
		}
	}
	return nil
}

// decimalFloat converts a big-endian two's complement integer.
func decimalFloat(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	if len(b) <= 8 {
		var v int64
		if b[0]&0x80 != 0 {
			v = -1
		}
		for _, x := range b {
			v = v<<8 | int64(x)
		}
		return float64(v)
	}
	n := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	f, _ := new(big.Float).SetInt(n).Float64()
	return f
}

// half converts an IEEE 754 binary16 value.
func half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * frac * math.Pow(2, -24)
	case 31:
		if frac == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * (1 + frac/1024) * math.Pow(2, float64(exp-15))
}
