package score

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// ErrInput reports a table that does not fit the model: a missing column,
// a value of the wrong type, a null where the input cannot hold one. It
// comes wrapped in an errdefs.Error of kind errdefs.ErrInvalidArgument,
// together with runtime.ErrInvalidInput.
var ErrInput = errors.New("table does not fit the model")

func inputErr(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf(format, args...),
		Err: errors.Join(ErrInput, runtime.ErrInvalidInput)}
}

// Inputs converts a table batch into the model's inputs, following the
// MLflow signature as /invocations does:
//
//   - column-based schema (or none): when every runtime input is named after
//     a column of the table, one input per column, shaped [rows, 1] (or
//     [rows] for a 1-D input) — an ONNX ColumnTransformer pipeline; else,
//     for a model with one 2-D input (ONNX from skl2onnx, XGBoost,
//     LightGBM), the feature columns packed into [rows, n] of the input's
//     datatype: the signature's columns in signature order, or every
//     column of the table in table order when there is no signature;
//   - tensor-based schema: each input filled from the column named after
//     it; a single input the table has no column for gets the packed
//     columns, in table order.
//
// Nulls become NaN for floating-point inputs and are an error for others.
// Errors wrap ErrInput and name the column.
func Inputs(b *table.Batch, schema table.Schema, sig runtime.Signature, msig *model.Signature) ([]*tensor.Tensor, error) {
	p, err := newPlan(schema, sig, msig)
	if err != nil {
		return nil, err
	}
	return p.inputs(b, 0)
}

// plan is how a table's columns become a model's inputs, worked out once
// per (schema, model) and applied to every batch.
type plan struct {
	schema table.Schema
	specs  []inputSpec
}

// inputSpec fills one model input.
type inputSpec struct {
	name  string // the model input's name
	dt    tensor.DType
	cols  []int    // the table columns, in order; -1 for an optional column the table lacks
	names []string // the columns' names (for errors)
	flat  bool     // one column into a 1-D input: shape [rows] rather than [rows, 1]
}

func newPlan(schema table.Schema, sig runtime.Signature, msig *model.Signature) (*plan, error) {
	p := &plan{schema: schema}
	if len(sig.Inputs) == 0 {
		return nil, inputErr("the model declares no inputs (a pyfunc model logged without a signature?): Kiln cannot tell which columns it takes; log it with a signature")
	}
	var cols []model.ColSpec
	tensorSchema := false
	if msig != nil && msig.Inputs != nil {
		if msig.Inputs.IsTensor() {
			tensorSchema = true
		} else {
			cols = msig.Inputs.Columns
		}
	}
	// The feature columns: the signature's, else the table's.
	featIdx, featNames, err := featureColumns(schema, cols)
	if err != nil {
		return nil, err
	}
	byName := true
	for _, in := range sig.Inputs {
		if in.Name == "" || schema.Index(in.Name) < 0 {
			byName = false
			break
		}
	}
	if byName && (tensorSchema || len(sig.Inputs) > 1 || !stackable(sig.Inputs[0], len(featIdx))) {
		for _, in := range sig.Inputs {
			j := schema.Index(in.Name)
			if len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1 && in.Shape[1] >= 0) {
				return nil, inputErr("model input %q has shape %v: column %q cannot fill it", in.Name, in.Shape, in.Name)
			}
			dt := in.DType
			if dt == tensor.Invalid {
				dt = columnDType(schema.Fields[j].Type)
			}
			p.specs = append(p.specs, inputSpec{name: in.Name, dt: dt, cols: []int{j}, names: []string{in.Name}, flat: len(in.Shape) == 1})
		}
		return p, nil
	}
	if len(sig.Inputs) != 1 {
		var names, missing []string
		for _, in := range sig.Inputs {
			names = append(names, in.Name)
			if schema.Index(in.Name) < 0 {
				missing = append(missing, in.Name)
			}
		}
		return nil, inputErr("model takes %d inputs %s, one per column: the table has no column %s (columns: %s)",
			len(sig.Inputs), pyList(names), pyList(missing), pyList(schema.Names()))
	}
	in := sig.Inputs[0]
	if tensorSchema {
		// No column named after the input: pack every column.
		featIdx, featNames, _ = featureColumns(schema, nil)
	}
	if in.Shape != nil && len(in.Shape) != 2 {
		return nil, inputErr("model input %q has shape %v: table columns can only fill a 2-dimensional input", in.Name, in.Shape)
	}
	if len(in.Shape) == 2 && in.Shape[1] >= 0 && int(in.Shape[1]) != len(featIdx) {
		return nil, inputErr("model input %q takes %d columns, the table has %d (%s); choose the feature columns",
			in.Name, in.Shape[1], len(featIdx), strings.Join(featNames, ", "))
	}
	dt := in.DType
	if dt == tensor.Invalid {
		dt = packedDType(schema, featIdx)
	}
	if !dt.IsFloat() {
		for k, j := range featIdx {
			if j < 0 {
				return nil, inputErr("column %q is missing, and model input %q (%v) has no missing-value representation", featNames[k], in.Name, dt)
			}
		}
	}
	p.specs = []inputSpec{{name: in.Name, dt: dt, cols: featIdx, names: featNames}}
	return p, nil
}

// featureColumns maps the signature's columns to the table's (-1 for an
// optional column it lacks), or lists every table column.
func featureColumns(schema table.Schema, cols []model.ColSpec) ([]int, []string, error) {
	if cols == nil {
		idx := make([]int, len(schema.Fields))
		for i := range idx {
			idx[i] = i
		}
		return idx, schema.Names(), nil
	}
	idx := make([]int, len(cols))
	names := make([]string, len(cols))
	var missing []string
	for k, c := range cols {
		idx[k] = schema.Index(c.Name)
		names[k] = c.Name
		if idx[k] < 0 && c.Required {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		return nil, nil, inputErr("the table is missing column(s) %s that the model's signature requires (columns: %s)",
			pyList(missing), pyList(schema.Names()))
	}
	return idx, names, nil
}

// stackable reports whether a single input can take c packed columns.
func stackable(spec runtime.TensorSpec, c int) bool {
	return len(spec.Shape) == 2 && (spec.Shape[1] < 0 || int(spec.Shape[1]) == c) && c > 1
}

// columnDType is the tensor type a column feeds when the model does not say.
func columnDType(t table.Type) tensor.DType {
	switch t {
	case table.Float64:
		return tensor.Float64
	case table.Int64, table.Timestamp, table.Date:
		return tensor.Int64
	case table.Bool:
		return tensor.Bool
	}
	return tensor.String
}

// packedDType picks one type for packed columns, as /invocations infers
// one for a dataframe: text if any column is text, else float64 if any is
// float or nullable, else int64, else bool.
func packedDType(schema table.Schema, idx []int) tensor.DType {
	dt := tensor.Bool
	for _, j := range idx {
		if j < 0 {
			dt = tensor.Float64
			continue
		}
		f := schema.Fields[j]
		switch f.Type {
		case table.String:
			return tensor.String
		case table.Float64:
			dt = tensor.Float64
		case table.Int64, table.Timestamp, table.Date:
			if f.Nullable {
				dt = tensor.Float64
			} else if dt == tensor.Bool {
				dt = tensor.Int64
			}
		}
	}
	return dt
}

// inputs converts one batch.
func (p *plan) inputs(b *table.Batch, first int64) ([]*tensor.Tensor, error) {
	if len(b.Columns) != len(p.schema.Fields) {
		return nil, inputErr("batch has %d columns, the table %d", len(b.Columns), len(p.schema.Fields))
	}
	out := make([]*tensor.Tensor, len(p.specs))
	for i := range p.specs {
		s := &p.specs[i]
		n := len(s.cols)
		data, err := tensor.MakeSlice(s.dt, b.Len*n)
		if err != nil {
			return nil, inputErr("model input %q: %v", s.name, err)
		}
		for k, j := range s.cols {
			if err := fill(data, s.dt, k, n, b.Len, b, j, p.schema, s, first); err != nil {
				return nil, err
			}
		}
		shape := []int64{int64(b.Len), int64(n)}
		if s.flat {
			shape = shape[:1]
		}
		out[i] = &tensor.Tensor{Name: s.name, DType: s.dt, Shape: shape, Data: data}
	}
	return out, nil
}

// fill writes column j of b into data at position k of every row of width
// n (row-major), converting to dt.
func fill(data any, dt tensor.DType, k, n, rows int, b *table.Batch, j int, schema table.Schema, s *inputSpec, first int64) error {
	if j < 0 { // an optional column the table lacks: missing values
		switch d := data.(type) {
		case []float64:
			for r := range rows {
				d[r*n+k] = math.NaN()
			}
		case []float32:
			nan := float32(math.NaN())
			for r := range rows {
				d[r*n+k] = nan
			}
		case []uint16:
			h := tensor.Float32ToHalf(float32(math.NaN()))
			for r := range rows {
				d[r*n+k] = h
			}
		}
		return nil
	}
	c := &b.Columns[j]
	name := schema.Fields[j].Name
	switch d := data.(type) {
	case []float64:
		return fillFloat(d, k, n, rows, c, name, s, first)
	case []float32:
		return fillFloat(d, k, n, rows, c, name, s, first)
	case []uint16:
		if dt == tensor.Float16 {
			tmp := make([]float32, rows)
			if err := fillFloat(tmp, 0, 1, rows, c, name, s, first); err != nil {
				return err
			}
			for r, v := range tmp {
				d[r*n+k] = tensor.Float32ToHalf(v)
			}
			return nil
		}
		return fillInt(d, k, n, rows, c, name, s, first, 0, math.MaxUint16)
	case []int64:
		return fillInt(d, k, n, rows, c, name, s, first, math.MinInt64, math.MaxInt64)
	case []int32:
		return fillInt(d, k, n, rows, c, name, s, first, math.MinInt32, math.MaxInt32)
	case []int16:
		return fillInt(d, k, n, rows, c, name, s, first, math.MinInt16, math.MaxInt16)
	case []int8:
		return fillInt(d, k, n, rows, c, name, s, first, math.MinInt8, math.MaxInt8)
	case []uint64:
		return fillInt(d, k, n, rows, c, name, s, first, 0, math.MaxInt64)
	case []uint32:
		return fillInt(d, k, n, rows, c, name, s, first, 0, math.MaxUint32)
	case []uint8:
		return fillInt(d, k, n, rows, c, name, s, first, 0, math.MaxUint8)
	case []bool:
		for r := range rows {
			if c.Null(r) {
				return nullErr(name, first+int64(r), s, dt)
			}
			switch c.Type {
			case table.Bool:
				d[r*n+k] = c.Bools[r]
			case table.Int64:
				if v := c.Ints[r]; v == 0 || v == 1 {
					d[r*n+k] = v == 1
					continue
				}
				fallthrough
			default:
				return inputErr("column %q row %d: cannot convert %s to BOOL for model input %q", name, first+int64(r), describe(c, r, schema.Fields[j]), s.name)
			}
		}
	case []string:
		f := schema.Fields[j]
		for r := range rows {
			if c.Null(r) {
				return nullErr(name, first+int64(r), s, dt)
			}
			if c.Type == table.String {
				d[r*n+k] = string(c.Bytes(r))
			} else {
				d[r*n+k] = c.Format(r, &f)
			}
		}
	default:
		return inputErr("model input %q: unsupported datatype %v", s.name, dt)
	}
	return nil
}

func fillFloat[T float32 | float64](d []T, k, n, rows int, c *table.Column, name string, s *inputSpec, first int64) error {
	nan := T(math.NaN())
	switch c.Type {
	case table.Float64:
		src := c.Floats[:rows]
		if n == 1 {
			for r, v := range src {
				d[r] = T(v)
			}
		} else {
			for r, v := range src {
				d[r*n+k] = T(v)
			}
		}
	case table.Int64, table.Timestamp, table.Date:
		for r, v := range c.Ints[:rows] {
			d[r*n+k] = T(v)
		}
	case table.Bool:
		for r, v := range c.Bools[:rows] {
			if v {
				d[r*n+k] = 1
			} else {
				d[r*n+k] = 0
			}
		}
	default:
		return inputErr("column %q is text, and model input %q takes numbers (%v)", name, s.name, dtypeOf[T]())
	}
	if c.Valid != nil {
		for r := range rows {
			if !c.Valid.Valid(r) {
				d[r*n+k] = nan
			}
		}
	}
	return nil
}

func dtypeOf[T float32 | float64]() tensor.DType {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func fillInt[T integer](d []T, k, n, rows int, c *table.Column, name string, s *inputSpec, first, lo, hi int64) error {
	var z T
	dt := intDType(z)
	for r := range rows {
		if c.Null(r) {
			return nullErr(name, first+int64(r), s, dt)
		}
		var v int64
		switch c.Type {
		case table.Int64, table.Timestamp, table.Date:
			v = c.Ints[r]
		case table.Bool:
			if c.Bools[r] {
				v = 1
			}
		case table.Float64:
			f := c.Floats[r]
			if f != math.Trunc(f) || math.Abs(f) >= 0x1p63 {
				return inputErr("column %q row %d: %v is not an integer, and model input %q takes %v", name, first+int64(r), f, s.name, dt)
			}
			v = int64(f)
		default:
			return inputErr("column %q is text, and model input %q takes numbers (%v)", name, s.name, dt)
		}
		if v < lo || v > hi {
			return inputErr("column %q row %d: %d is out of range for model input %q (%v)", name, first+int64(r), v, s.name, dt)
		}
		d[r*n+k] = T(v)
	}
	return nil
}

func intDType(v any) tensor.DType {
	switch v.(type) {
	case int8:
		return tensor.Int8
	case int16:
		return tensor.Int16
	case int32:
		return tensor.Int32
	case int64:
		return tensor.Int64
	case uint8:
		return tensor.Uint8
	case uint16:
		return tensor.Uint16
	case uint32:
		return tensor.Uint32
	}
	return tensor.Uint64
}

func nullErr(name string, r int64, s *inputSpec, dt tensor.DType) error {
	return inputErr("column %q row %d is null, and model input %q (%v) has no missing-value representation", name, r, s.name, dt)
}

func describe(c *table.Column, r int, f table.Field) string {
	v := c.Format(r, &f)
	if c.Type == table.String {
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return v
}

// pyList renders names as Python prints a list of strings (as MLflow's
// messages do).
func pyList(names []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('\'')
		b.WriteString(n)
		b.WriteByte('\'')
	}
	b.WriteByte(']')
	return b.String()
}
