package serving

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// A cell is one scalar of an MLflow request: a dataframe cell or a tensor
// element before it is converted to the model's datatype.
type cell struct {
	kind cellKind
	b    bool
	i    int64
	f    float64
	s    string
}

type cellKind uint8

const (
	cellNull cellKind = iota
	cellBool
	cellInt
	cellFloat
	cellString
)

// describe renders a cell for error messages.
func (c cell) describe() string {
	switch c.kind {
	case cellNull:
		return "null"
	case cellBool:
		return strconv.FormatBool(c.b)
	case cellInt:
		return strconv.FormatInt(c.i, 10)
	case cellFloat:
		return strconv.FormatFloat(c.f, 'g', -1, 64)
	}
	if len(c.s) > 40 {
		return strconv.Quote(c.s[:40] + "…")
	}
	return strconv.Quote(c.s)
}

// frame is a dataframe: named columns of cells, stored row-major.
type frame struct {
	columns []string
	cells   []cell // rows × len(columns)
	rows    int
}

func (f *frame) col(name string) int {
	for i, c := range f.columns {
		if c == name {
			return i
		}
	}
	return -1
}

// tensorLit is a tensor as an MLflow request writes it: a nested list.
type tensorLit struct {
	name  string // "" for the unnamed list of "instances" / "inputs"
	shape []int64
	cells []cell
}

// framePlan is what /invocations precomputes for a model: how dataframe
// columns become model inputs.
type framePlan struct {
	model  *Model
	sig    runtime.Signature
	cols   []model.ColSpec // the MLflow column signature, if any
	colDT  []tensor.DType  // the datatypes of cols
	byName bool            // every runtime input is named (one input per column is possible)
	// outputs are the runtime outputs /invocations returns: those the
	// MLflow output signature names when it lists fewer than the model
	// has (an XGBoost classifier's pyfunc returns only its labels), else
	// nil for all.
	outputs []int
}

func newFramePlan(m *Model, sig runtime.Signature) *framePlan {
	p := &framePlan{model: m, sig: sig, byName: len(sig.Inputs) > 0}
	for _, in := range sig.Inputs {
		if in.Name == "" {
			p.byName = false
		}
	}
	if m.Signature != nil {
		p.outputs = selectMLflowOutputs(m.Signature.Outputs, sig.Outputs)
	}
	if m.Signature != nil && m.Signature.Inputs != nil && !m.Signature.Inputs.IsTensor() {
		p.cols = m.Signature.Inputs.Columns
		p.colDT = make([]tensor.DType, len(p.cols))
		for i, c := range p.cols {
			p.colDT[i], _ = model.ColumnDType(c.Type) // Invalid for nested types: not checked
		}
	}
	return p
}

// checkColumns validates a frame against the MLflow column signature:
// required columns present, values of the column's type.
func (p *framePlan) checkColumns(f *frame) error {
	if p.cols == nil {
		return nil
	}
	var missing []string
	for _, c := range p.cols {
		if c.Required && c.Name != "" && f.col(c.Name) < 0 {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		return &mlflowError{code: "INVALID_PARAMETER_VALUE", msg: "Model is missing inputs " + pyList(missing) + "."}
	}
	for i, c := range p.cols {
		j := f.col(c.Name)
		if j < 0 {
			continue
		}
		w := len(f.columns)
		for r := range f.rows {
			if err := checkColType(c, p.colDT[i], f.cells[r*w+j]); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkColType(c model.ColSpec, dt tensor.DType, v cell) error {
	ok := true
	switch dt {
	case tensor.Float64, tensor.Float32:
		ok = v.kind == cellInt || v.kind == cellFloat || v.kind == cellNull
	case tensor.Int64:
		ok = v.kind == cellInt
	case tensor.Int32:
		ok = v.kind == cellInt && v.i >= math.MinInt32 && v.i <= math.MaxInt32
	case tensor.Bool:
		ok = v.kind == cellBool
	case tensor.String:
		ok = v.kind == cellString || (v.kind == cellNull && !c.Required)
	}
	if !ok {
		return &mlflowError{code: "INVALID_PARAMETER_VALUE", msg: "Incompatible input types for column " + c.Name +
			": " + v.describe() + " is not a valid " + c.Type + "."}
	}
	return nil
}

// pyList renders names as Python prints a list of strings.
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

// frameInputs maps a frame to the model's inputs: one tensor per column
// when the model's inputs are named after the columns (an ONNX
// ColumnTransformer pipeline has one [N,1] input per column), otherwise
// the columns stacked into one [N, C] tensor for a single-input model, in
// the MLflow signature's column order when there is one, else the
// request's.
func (p *framePlan) frameInputs(f *frame) ([]*tensor.Tensor, error) {
	if err := p.checkColumns(f); err != nil {
		return nil, err
	}
	sig := p.sig
	if p.byName {
		all := true
		for _, in := range sig.Inputs {
			if f.col(in.Name) < 0 {
				all = false
				break
			}
		}
		if all && (len(sig.Inputs) > 1 || !stackable(sig.Inputs[0], len(f.columns))) {
			out := make([]*tensor.Tensor, len(sig.Inputs))
			for i, in := range sig.Inputs {
				t, err := columnTensor(f, f.col(in.Name), in, p.binaryCol(in.Name))
				if err != nil {
					return nil, err
				}
				out[i] = t
			}
			return out, nil
		}
	}
	if len(sig.Inputs) != 1 {
		names := make([]string, len(sig.Inputs))
		for i, in := range sig.Inputs {
			names[i] = in.Name
		}
		return nil, badRequest("model %q takes %d inputs %s: send a column for each (request columns: %s)",
			p.model.Name, len(sig.Inputs), pyList(names), pyList(f.columns))
	}
	spec := sig.Inputs[0]
	var idxBuf [16]int
	idx := idxBuf[:0]
	names := f.columns
	if p.cols != nil {
		names = names[:0:0]
		for _, c := range p.cols {
			idx = append(idx, f.col(c.Name)) // -1: an optional column left out
			names = append(names, c.Name)
		}
	} else {
		for i := range f.columns {
			idx = append(idx, i)
		}
	}
	if len(spec.Shape) == 2 && spec.Shape[1] >= 0 && int(spec.Shape[1]) != len(idx) {
		return nil, badRequest("model input %q takes %d columns, the request has %d (%s)", spec.Name, spec.Shape[1], len(idx), pyList(names))
	}
	if spec.Shape != nil && len(spec.Shape) != 2 {
		return nil, badRequest("model input %q has shape %v: a dataframe can only fill a 2-dimensional input", spec.Name, spec.Shape)
	}
	dt := spec.DType
	if dt == tensor.Invalid {
		dt = inferDType(f.cells)
	}
	w := len(f.columns)
	conv, err := newConverter(dt, f.rows*len(idx))
	if err != nil {
		return nil, err
	}
	f32, isF32 := conv.data.([]float32)
	for r := range f.rows {
		for k, j := range idx {
			if isF32 && j >= 0 {
				// The common case: a float cell for a float input.
				if c := &f.cells[r*w+j]; c.kind == cellFloat {
					f32[conv.n] = float32(c.f)
					conv.n++
					continue
				}
			}
			v := cell{kind: cellNull}
			if j >= 0 {
				v = f.cells[r*w+j]
			} else if !dt.IsFloat() {
				return nil, badRequest("column %q is missing, and model input %q (%v) has no missing-value representation", names[k], spec.Name, dt)
			}
			if err := conv.put(v, p.binaryCol(names[k])); err != nil {
				return nil, badRequest("column %q: %v", names[k], err)
			}
		}
	}
	return []*tensor.Tensor{{Name: spec.Name, DType: dt, Shape: []int64{int64(f.rows), int64(len(idx))}, Data: conv.data}}, nil
}

// stackable reports whether a single input can take c stacked columns.
func stackable(spec runtime.TensorSpec, c int) bool {
	return len(spec.Shape) == 2 && (spec.Shape[1] < 0 || int(spec.Shape[1]) == c) && c > 1
}

// binaryCol reports whether the MLflow signature declares name binary
// (base64 in JSON).
func (p *framePlan) binaryCol(name string) bool {
	for _, c := range p.cols {
		if c.Name == name {
			return c.Type == "binary"
		}
	}
	return false
}

// columnTensor makes the tensor for one column feeding input spec.
func columnTensor(f *frame, j int, spec runtime.TensorSpec, base64Col bool) (*tensor.Tensor, error) {
	shape := []int64{int64(f.rows), 1}
	if len(spec.Shape) == 1 {
		shape = shape[:1]
	} else if len(spec.Shape) > 2 || (len(spec.Shape) == 2 && spec.Shape[1] != 1 && spec.Shape[1] >= 0) {
		return nil, badRequest("model input %q has shape %v: one column cannot fill it", spec.Name, spec.Shape)
	}
	dt := spec.DType
	w := len(f.columns)
	if dt == tensor.Invalid {
		col := make([]cell, f.rows)
		for r := range col {
			col[r] = f.cells[r*w+j]
		}
		dt = inferDType(col)
	}
	conv, err := newConverter(dt, f.rows)
	if err != nil {
		return nil, err
	}
	for r := range f.rows {
		if err := conv.put(f.cells[r*w+j], base64Col); err != nil {
			return nil, badRequest("column %q: %v", f.columns[j], err)
		}
	}
	return &tensor.Tensor{Name: spec.Name, DType: dt, Shape: shape, Data: conv.data}, nil
}

// litInput converts a tensor literal for input spec.
func litInput(lit tensorLit, spec runtime.TensorSpec) (*tensor.Tensor, error) {
	name := spec.Name
	if name == "" {
		name = lit.name
	}
	shape := lit.shape
	// A flat list feeds an [N, 1] input as N rows.
	if len(shape) == 1 && len(spec.Shape) == 2 && spec.Shape[1] == 1 {
		shape = []int64{shape[0], 1}
	}
	dt := spec.DType
	if dt == tensor.Invalid {
		dt = inferDType(lit.cells)
	}
	conv, err := newConverter(dt, len(lit.cells))
	if err != nil {
		return nil, err
	}
	for i, v := range lit.cells {
		if err := conv.put(v, false); err != nil {
			return nil, badRequest("input %q: element %d: %v", name, i, err)
		}
	}
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: conv.data}, nil
}

// inferDType picks a datatype for cells when the model does not say.
func inferDType(cells []cell) tensor.DType {
	dt := tensor.Int64
	for _, c := range cells {
		switch c.kind {
		case cellString:
			return tensor.String
		case cellFloat, cellNull:
			dt = tensor.Float64
		case cellBool:
			if dt == tensor.Int64 {
				dt = tensor.Bool
			}
		}
	}
	return dt
}

// converter appends cells to a typed slice, checking each converts.
type converter struct {
	dt   tensor.DType
	data any
	n    int
}

func newConverter(dt tensor.DType, n int) (converter, error) {
	data, err := tensor.MakeSlice(dt, n)
	if err != nil {
		return converter{}, badRequest("%v", err)
	}
	return converter{dt: dt, data: data}, nil
}

func (c *converter) put(v cell, base64Col bool) error {
	i := c.n
	c.n++
	switch d := c.data.(type) {
	case []float32:
		f, err := cellFloat64(v, c.dt)
		d[i] = float32(f)
		return err
	case []float64:
		f, err := cellFloat64(v, c.dt)
		d[i] = f
		return err
	case []uint16:
		if c.dt == tensor.Float16 {
			f, err := cellFloat64(v, c.dt)
			d[i] = tensor.Float32ToHalf(float32(f))
			return err
		}
		x, err := cellInt64(v, 0, math.MaxUint16, c.dt)
		d[i] = uint16(x)
		return err
	case []int64:
		x, err := cellInt64(v, math.MinInt64, math.MaxInt64, c.dt)
		d[i] = x
		return err
	case []int32:
		x, err := cellInt64(v, math.MinInt32, math.MaxInt32, c.dt)
		d[i] = int32(x)
		return err
	case []int16:
		x, err := cellInt64(v, math.MinInt16, math.MaxInt16, c.dt)
		d[i] = int16(x)
		return err
	case []int8:
		x, err := cellInt64(v, math.MinInt8, math.MaxInt8, c.dt)
		d[i] = int8(x)
		return err
	case []uint64:
		x, err := cellInt64(v, 0, math.MaxInt64, c.dt)
		d[i] = uint64(x)
		return err
	case []uint32:
		x, err := cellInt64(v, 0, math.MaxUint32, c.dt)
		d[i] = uint32(x)
		return err
	case []uint8:
		x, err := cellInt64(v, 0, math.MaxUint8, c.dt)
		d[i] = uint8(x)
		return err
	case []bool:
		switch {
		case v.kind == cellBool:
			d[i] = v.b
		case v.kind == cellInt && (v.i == 0 || v.i == 1):
			d[i] = v.i == 1
		default:
			return badRequest("cannot convert %s to BOOL", v.describe())
		}
	case []string:
		if v.kind != cellString {
			return badRequest("cannot convert %s to BYTES (a string)", v.describe())
		}
		d[i] = v.s
		if base64Col {
			b, err := base64.StdEncoding.DecodeString(v.s)
			if err != nil {
				return badRequest("binary value is not base64: %v", err)
			}
			d[i] = string(b)
		}
	}
	return nil
}

func cellFloat64(v cell, dt tensor.DType) (float64, error) {
	switch v.kind {
	case cellFloat:
		return v.f, nil
	case cellInt:
		return float64(v.i), nil
	case cellNull:
		return math.NaN(), nil
	case cellBool:
		if v.b {
			return 1, nil
		}
		return 0, nil
	}
	return 0, badRequest("cannot convert %s to %v", v.describe(), dt)
}

func cellInt64(v cell, lo, hi int64, dt tensor.DType) (int64, error) {
	switch v.kind {
	case cellInt:
		if v.i >= lo && v.i <= hi {
			return v.i, nil
		}
	case cellFloat:
		if v.f == math.Trunc(v.f) && v.f >= float64(lo) && v.f <= float64(hi) && math.Abs(v.f) < 0x1p63 {
			return int64(v.f), nil
		}
	case cellBool:
		if v.b {
			return 1, nil
		}
		return 0, nil
	}
	return 0, badRequest("cannot convert %s to %v", v.describe(), dt)
}

// selectMLflowOutputs matches an MLflow output schema to the runtime's
// outputs: by name where the schema names them, else by the kind of
// element (integer, float, string, bool), in order. It returns nil (all
// outputs) unless the schema lists fewer outputs than the model has and
// each finds a match.
func selectMLflowOutputs(schema *model.Schema, outs []runtime.TensorSpec) []int {
	if schema == nil {
		return nil
	}
	type want struct {
		name string
		dt   tensor.DType
	}
	var wants []want
	for _, t := range schema.Tensors {
		wants = append(wants, want{t.Name, t.DType})
	}
	for _, c := range schema.Columns {
		dt, _ := model.ColumnDType(c.Type)
		wants = append(wants, want{c.Name, dt})
	}
	if len(wants) == 0 || len(wants) >= len(outs) {
		return nil
	}
	kind := func(dt tensor.DType) int {
		switch {
		case dt.IsInteger():
			return 1
		case dt.IsFloat():
			return 2
		case dt == tensor.String:
			return 3
		case dt == tensor.Bool:
			return 4
		}
		return 0
	}
	used := make([]bool, len(outs))
	sel := make([]int, 0, len(wants))
	for _, w := range wants {
		j := -1
		for k, o := range outs {
			if !used[k] && w.name != "" && o.Name == w.name {
				j = k
				break
			}
		}
		for k, o := range outs {
			if j < 0 && !used[k] && kind(o.DType) == kind(w.dt) && kind(w.dt) != 0 {
				j = k
			}
		}
		if j < 0 {
			return nil
		}
		used[j] = true
		sel = append(sel, j)
	}
	return sel
}
