package predlog

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/tensor"
)

// metaFields are the metadata columns, in file order.
var metaFields = []table.Field{
	{Name: ColTimestamp, Type: table.Timestamp, Unit: table.Millisecond, UTC: true},
	{Name: ColRequestID, Type: table.String},
	{Name: ColRow, Type: table.Int64},
	{Name: ColEndpoint, Type: table.String, Categorical: true},
	{Name: ColRoute, Type: table.String, Categorical: true},
	{Name: ColModel, Type: table.String, Categorical: true},
	{Name: ColModelVersion, Type: table.String, Categorical: true},
	{Name: ColProtocol, Type: table.String, Categorical: true},
	{Name: ColLatencyMS, Type: table.Float64},
	{Name: ColStatus, Type: table.Int64},
	{Name: ColError, Type: table.String},
	{Name: ColSubject, Type: table.String},
	{Name: ColOutliers, Type: table.String},
}

const (
	mTimestamp = iota
	mRequestID
	mRow
	mEndpoint
	mRoute
	mModel
	mModelVersion
	mProtocol
	mLatency
	mStatus
	mError
	mSubject
	mOutliers
	nMeta
)

// batchRows bounds the rows of one converted batch.
const batchRows = 65536

// tensorCols is how one tensor of a record maps to columns.
type tensorCols struct {
	t     *tensor.Tensor
	rows  int // first dimension (1 for a scalar)
	width int // elements per row
	cols  []int
}

// converter turns a segment's records into table batches, and their
// summary.
type converter struct {
	endpoint string
	schema   table.Schema
	byName   map[string]int
	recs     []record
	maps     [][]tensorCols // per record: inputs then outputs
	bounds   map[string]Range
	boundCol map[int]string // column index → feature with bounds
	names    map[nameKey][]string
}

type nameKey struct {
	name  string
	width int
}

// featureNames is the package's featureNames, memoized for the default
// names (most records of a segment share them).
func (c *converter) featureNames(name string, width int, cols []string) []string {
	if len(cols) == width && width > 0 {
		return cols
	}
	k := nameKey{name, width}
	if v, ok := c.names[k]; ok {
		return v
	}
	v := featureNames(name, width, nil)
	c.names[k] = v
	return v
}

// featureNames names the columns of a tensor of the given width: the
// signature's (cols) when they line up, else name for one column and
// name_j for several.
func featureNames(name string, width int, cols []string) []string {
	if len(cols) == width && width > 0 {
		return cols
	}
	if width == 1 {
		return []string{name}
	}
	out := make([]string, width)
	for j := range out {
		out[j] = name + "_" + strconv.Itoa(j)
	}
	return out
}

func tableType(dt tensor.DType) table.Type {
	switch {
	case dt == tensor.Bool:
		return table.Bool
	case dt == tensor.String:
		return table.String
	case dt.IsFloat():
		return table.Float64
	}
	return table.Int64
}

// widen returns the type that holds values of a and b.
func widen(a, b table.Type) table.Type {
	switch {
	case a == b:
		return a
	case a == table.String || b == table.String:
		return table.String
	}
	return table.Float64
}

func newConverter(endpoint string, recs []record, bounds map[string]Range) *converter {
	c := &converter{endpoint: endpoint, recs: recs, byName: map[string]int{}, bounds: bounds, names: map[nameKey][]string{}}
	c.schema.Fields = append(c.schema.Fields, metaFields...)
	var inNames, outNames []string
	types := map[string]table.Type{}
	add := func(list *[]string, name string, t table.Type) {
		if old, ok := types[name]; ok {
			types[name] = widen(old, t)
			return
		}
		types[name] = t
		*list = append(*list, name)
	}
	c.maps = make([][]tensorCols, len(recs))
	shared := make([]bool, len(recs))
	for i := range recs {
		r := &recs[i]
		if i > 0 && sameLayout(&recs[i-1], r, c.maps[i-1]) {
			// The previous record's columns (the cols slices are shared:
			// resolving them once resolves both).
			prev := c.maps[i-1]
			m := make([]tensorCols, len(prev))
			k := 0
			for _, ts := range [2][]*tensor.Tensor{r.Inputs, r.Outputs} {
				for _, t := range ts {
					m[k] = shapeOf(t)
					m[k].cols = prev[k].cols
					k++
				}
			}
			c.maps[i], shared[i] = m, true
			continue
		}
		var m []tensorCols
		for k, t := range r.Inputs {
			var cols []string
			if k < len(r.InputCols) {
				cols = r.InputCols[k]
			}
			tc := shapeOf(t)
			name := t.Name
			if name == "" {
				name = "input_" + strconv.Itoa(k)
			}
			for _, f := range c.featureNames(name, tc.width, cols) {
				add(&inNames, InputPrefix+f, tableType(t.DType))
				tc.cols = append(tc.cols, -1)
			}
			m = append(m, tc)
		}
		for k, t := range r.Outputs {
			tc := shapeOf(t)
			name := t.Name
			if name == "" {
				name = "output_" + strconv.Itoa(k)
			}
			for _, f := range c.featureNames(name, tc.width, nil) {
				add(&outNames, OutputPrefix+f, tableType(t.DType))
				tc.cols = append(tc.cols, -1)
			}
			m = append(m, tc)
		}
		c.maps[i] = m
	}
	for _, n := range append(inNames, outNames...) {
		c.byName[n] = len(c.schema.Fields)
		c.schema.Fields = append(c.schema.Fields, table.Field{Name: n, Type: types[n], Nullable: true})
	}
	// Second pass: resolve the column indexes (names are recomputed: cheap
	// next to the data).
	for i := range recs {
		if shared[i] {
			continue
		}
		r := &recs[i]
		m := c.maps[i]
		k := 0
		for in, t := range r.Inputs {
			var cols []string
			if in < len(r.InputCols) {
				cols = r.InputCols[in]
			}
			name := t.Name
			if name == "" {
				name = "input_" + strconv.Itoa(in)
			}
			for j, f := range c.featureNames(name, m[k].width, cols) {
				m[k].cols[j] = c.byName[InputPrefix+f]
			}
			k++
		}
		for out, t := range r.Outputs {
			name := t.Name
			if name == "" {
				name = "output_" + strconv.Itoa(out)
			}
			for j, f := range c.featureNames(name, m[k].width, nil) {
				m[k].cols[j] = c.byName[OutputPrefix+f]
			}
			k++
		}
	}
	if len(bounds) > 0 {
		c.boundCol = map[int]string{}
		for f := range bounds {
			if i, ok := c.byName[InputPrefix+f]; ok && c.schema.Fields[i].Type != table.String {
				c.boundCol[i] = f
			}
		}
	}
	return c
}

// sameLayout reports whether r's tensors map to the same columns as
// prev's (mapped to pm): same names, datatypes, widths and signature
// columns.
func sameLayout(prev, r *record, pm []tensorCols) bool {
	if len(prev.Inputs) != len(r.Inputs) || len(prev.Outputs) != len(r.Outputs) || len(pm) != len(r.Inputs)+len(r.Outputs) {
		return false
	}
	k := 0
	for _, pair := range [2][2][]*tensor.Tensor{{prev.Inputs, r.Inputs}, {prev.Outputs, r.Outputs}} {
		for j, t := range pair[1] {
			p := pair[0][j]
			if p.Name != t.Name || p.DType != t.DType || shapeOf(t).width != pm[k].width {
				return false
			}
			k++
		}
	}
	for j := range r.Inputs {
		var a, b []string
		if j < len(prev.InputCols) {
			a = prev.InputCols[j]
		}
		if j < len(r.InputCols) {
			b = r.InputCols[j]
		}
		if !slices.Equal(a, b) {
			return false
		}
	}
	return true
}

func shapeOf(t *tensor.Tensor) tensorCols {
	tc := tensorCols{t: t, rows: 1, width: 1}
	if len(t.Shape) > 0 {
		tc.rows = int(t.Shape[0])
		tc.width = 1
		for _, d := range t.Shape[1:] {
			tc.width *= int(d)
		}
	}
	if tc.width == 0 {
		tc.rows = 1 // no values: one row of metadata
	}
	if n := t.Len(); tc.rows*tc.width != n || tc.rows < 0 {
		// Inconsistent (cannot come from a valid tensor): one row of
		// every element.
		tc.rows, tc.width = 1, max(n, 0)
	}
	return tc
}

// recordRows is the number of table rows of record i: the first input's
// rows (else the first output's), at least 1 so that every request is
// seen.
func (c *converter) recordRows(i int) int {
	m := c.maps[i]
	if len(m) > 0 {
		return max(m[0].rows, 1)
	}
	return 1
}

// batches calls fn with the converted rows, in batches of at most
// batchRows rows (a record is never split unless it alone exceeds it).
func (c *converter) batches(fn func(*table.Batch) error) error {
	lo := 0
	for lo < len(c.recs) {
		hi, n := lo, 0
		for hi < len(c.recs) && (n == 0 || n+c.recordRows(hi) <= batchRows) {
			n += c.recordRows(hi)
			hi++
		}
		if err := fn(c.batch(lo, hi, n)); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

func (c *converter) batch(lo, hi, n int) *table.Batch {
	b := &table.Batch{Len: n, Columns: make([]table.Column, len(c.schema.Fields))}
	for i, f := range c.schema.Fields {
		col := &b.Columns[i]
		col.Type = f.Type
		switch f.Type {
		case table.Bool:
			col.Bools = make([]bool, n)
		case table.Int64, table.Timestamp:
			col.Ints = make([]int64, n)
		case table.Float64:
			col.Floats = make([]float64, n)
		case table.String:
			col.Strs.Offsets = make([]int32, 1, n+1)
		}
		if i >= nMeta {
			col.Valid = make(table.Bitmap, (n+63)/64) // filled as values land
		}
	}
	cols := b.Columns
	// Size the string vectors once.
	var strLen [nMeta]int
	for i := lo; i < hi; i++ {
		r := &c.recs[i]
		n := c.recordRows(i)
		strLen[mRequestID] += n * len(r.ID)
		strLen[mEndpoint] += n * len(c.endpoint)
		strLen[mRoute] += n * len(r.Route)
		strLen[mModel] += n * len(r.Model)
		strLen[mModelVersion] += n * len(r.ModelVersion)
		strLen[mProtocol] += n * len(r.Protocol)
		strLen[mError] += n * len(r.Error)
		strLen[mSubject] += n * len(r.Subject)
	}
	for i, l := range strLen {
		if l > 0 {
			cols[i].Strs.Data = make([]byte, 0, l)
		}
	}
	row := 0
	for i := lo; i < hi; i++ {
		r := &c.recs[i]
		rows := c.recordRows(i)
		ts := r.Time.UnixMilli()
		lat := float64(r.Latency) / 1e6
		for k := 0; k < rows; k++ {
			at := row + k
			cols[mTimestamp].Ints[at] = ts
			cols[mRequestID].Strs.AppendString(r.ID)
			cols[mRow].Ints[at] = int64(k)
			cols[mEndpoint].Strs.AppendString(c.endpoint)
			cols[mRoute].Strs.AppendString(r.Route)
			cols[mModel].Strs.AppendString(r.Model)
			cols[mModelVersion].Strs.AppendString(r.ModelVersion)
			cols[mProtocol].Strs.AppendString(r.Protocol)
			cols[mLatency].Floats[at] = lat
			cols[mStatus].Ints[at] = int64(r.Status)
			cols[mError].Strs.AppendString(r.Error)
			cols[mSubject].Strs.AppendString(r.Subject)
		}
		for _, tc := range c.maps[i] {
			for j, ci := range tc.cols {
				fill(&cols[ci], tc, j, row, rows)
			}
		}
		row += rows
	}
	// String feature columns got values only where valid: pad the others
	// (Strings are appended in row order, so rebuild them per row).
	for i := nMeta; i < len(cols); i++ {
		if cols[i].Type == table.String {
			padStrings(&cols[i], n)
		}
	}
	c.outliers(b)
	return b
}

// fill writes column j of tensor tc into col at rows [row, row+rows).
func fill(col *table.Column, tc tensorCols, j, row, rows int) {
	n := min(rows, tc.rows)
	w := tc.width
	switch d := tc.t.Data.(type) {
	case []float32:
		fillNum(col, d, w, j, row, n)
	case []float64:
		fillNum(col, d, w, j, row, n)
	case []int64:
		fillNum(col, d, w, j, row, n)
	case []int32:
		fillNum(col, d, w, j, row, n)
	case []int16:
		fillNum(col, d, w, j, row, n)
	case []int8:
		fillNum(col, d, w, j, row, n)
	case []uint8:
		fillNum(col, d, w, j, row, n)
	case []uint16:
		if tc.t.DType == tensor.Float16 {
			for k := 0; k < n; k++ {
				setFloat(col, row+k, float64(tensor.HalfToFloat32(d[k*w+j])))
			}
			return
		}
		fillNum(col, d, w, j, row, n)
	case []uint32:
		fillNum(col, d, w, j, row, n)
	case []uint64:
		fillNum(col, d, w, j, row, n)
	case []bool:
		for k := 0; k < n; k++ {
			v := d[k*w+j]
			switch col.Type {
			case table.Bool:
				col.Bools[row+k] = v
				col.Valid.Set(row+k, true)
			case table.String:
				setString(col, row+k, strconv.FormatBool(v))
			default:
				x := 0.0
				if v {
					x = 1
				}
				setFloat(col, row+k, x)
			}
		}
	case []string:
		for k := 0; k < n; k++ {
			setString(col, row+k, d[k*w+j])
		}
	}
}

type number interface {
	~float32 | ~float64 | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func fillNum[T number](col *table.Column, d []T, w, j, row, n int) {
	switch col.Type {
	case table.Float64:
		for k := 0; k < n; k++ {
			col.Floats[row+k] = float64(d[k*w+j])
			col.Valid.Set(row+k, true)
		}
	case table.Int64:
		for k := 0; k < n; k++ {
			col.Ints[row+k] = int64(d[k*w+j])
			col.Valid.Set(row+k, true)
		}
	case table.String:
		for k := 0; k < n; k++ {
			setString(col, row+k, strconv.FormatFloat(float64(d[k*w+j]), 'g', -1, 64))
		}
	}
}

func setFloat(col *table.Column, at int, v float64) {
	switch col.Type {
	case table.Float64:
		col.Floats[at] = v
	case table.String:
		setString(col, at, strconv.FormatFloat(v, 'g', -1, 64))
		return
	}
	col.Valid.Set(at, true)
}

// String feature columns collect their values in a side table first:
// Strings must be appended in row order, and features of different
// tensors fill rows out of order.
func setString(col *table.Column, at int, v string) {
	if col.Dict == nil {
		col.Dict = &table.Strings{}
		col.Codes = make([]int32, len(col.Valid)*64)
		for i := range col.Codes {
			col.Codes[i] = -1
		}
	}
	col.Codes[at] = int32(col.Dict.Len())
	col.Dict.AppendString(v)
	col.Valid.Set(at, true)
}

// padStrings turns the side table of setString into the column's Strs.
func padStrings(col *table.Column, n int) {
	var s table.Strings
	s.Offsets = make([]int32, 1, n+1)
	for i := 0; i < n; i++ {
		if col.Dict != nil && col.Codes[i] >= 0 {
			s.Append(col.Dict.At(int(col.Codes[i])))
		} else {
			s.Append(nil)
		}
	}
	col.Strs, col.Dict, col.Codes = s, nil, nil
}

// outliers fills ColOutliers: the features whose value lies outside
// their bounds, comma-separated in column order.
func (c *converter) outliers(b *table.Batch) {
	out := &b.Columns[mOutliers]
	if len(c.boundCol) == 0 {
		for i := 0; i < b.Len; i++ {
			out.Strs.Append(nil)
		}
		return
	}
	idx := make([]int, 0, len(c.boundCol))
	for i := nMeta; i < len(b.Columns); i++ {
		if _, ok := c.boundCol[i]; ok {
			idx = append(idx, i)
		}
	}
	var sb strings.Builder
	for r := 0; r < b.Len; r++ {
		sb.Reset()
		for _, ci := range idx {
			col := &b.Columns[ci]
			if col.Null(r) {
				continue
			}
			v := col.Float(r)
			f := c.boundCol[ci]
			rg := c.bounds[f]
			if math.IsNaN(v) || v < rg.Lo || v > rg.Hi {
				if sb.Len() > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(f)
			}
		}
		out.Strs.AppendString(sb.String())
	}
}

// featureBatch returns the inputs.* and outputs.* columns of b (the
// profile's columns), sharing its vectors.
func featureBatch(b *table.Batch) *table.Batch {
	return &table.Batch{Len: b.Len, Columns: b.Columns[nMeta:]}
}

// summarize builds the summary of the converter's records and batches.
func (c *converter) newSummary() *Summary {
	s := newSummary()
	for i := range c.recs {
		r := &c.recs[i]
		s.addRequest(r.Time, r.Route, r.Model, r.Latency.Seconds(), r.Status, r.Error != "")
	}
	if len(c.schema.Fields) > nMeta {
		s.Profile = profile.New(table.Schema{Fields: c.schema.Fields[nMeta:]}, profile.Options{})
	}
	return s
}

// addBatch adds a converted batch's rows, profile and outliers to s.
func (s *Summary) addBatch(b *table.Batch) error {
	s.Rows += int64(b.Len)
	if s.Profile != nil {
		if err := s.Profile.Add(featureBatch(b)); err != nil {
			return err
		}
	}
	out := &b.Columns[mOutliers]
	for r := 0; r < b.Len; r++ {
		v := out.Bytes(r)
		if len(v) == 0 {
			continue
		}
		s.OutlierRows++
		for _, f := range strings.Split(string(v), ",") {
			s.Outliers[f]++
		}
	}
	return nil
}
