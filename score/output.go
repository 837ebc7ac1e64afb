package score

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Output turns a model's prediction tensors into table columns: one column
// per 1-D (or [rows, 1]) output, named after it, and k columns for an
// output of k values per row, named after the output's class labels when
// the model has them ("output_probability_setosa") and "NAME_0" … "NAME_k-1"
// otherwise. Floating-point outputs become float64 columns, integers
// int64, booleans bool and strings string.
type Output struct {
	fields []table.Field
	outs   []outCol
}

type outCol struct {
	name  string
	width int // values per row
	typ   table.Type
}

// NewOutput works out the columns from the model's signature and one
// batch of its outputs (a signature's variable dimensions are only known
// from outputs).
func NewOutput(sig runtime.Signature, outs []*tensor.Tensor) (*Output, error) {
	o := &Output{}
	seen := map[string]bool{}
	for i, t := range outs {
		name := t.Name
		var labels []string
		if i < len(sig.Outputs) {
			if sig.Outputs[i].Name != "" {
				name = sig.Outputs[i].Name
			}
			labels = sig.Outputs[i].Labels
		}
		if name == "" {
			name = "output_" + strconv.Itoa(i)
		}
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("output %q is a scalar, not one value per row", name)
		}
		width := 1
		for _, d := range t.Shape[1:] {
			width *= int(d)
		}
		typ := columnType(t.DType)
		if typ == table.Invalid {
			return nil, fmt.Errorf("output %q has datatype %v, which a table cannot hold", name, t.DType)
		}
		oc := outCol{name: name, width: width, typ: typ}
		o.outs = append(o.outs, oc)
		add := func(n string) error {
			if seen[n] {
				return fmt.Errorf("two prediction columns are named %q", n)
			}
			seen[n] = true
			o.fields = append(o.fields, table.Field{Name: n, Type: typ})
			return nil
		}
		if width == 1 && len(t.Shape) <= 2 {
			if err := add(name); err != nil {
				return nil, err
			}
			continue
		}
		useLabels := len(labels) == width && len(t.Shape) == 2
		for k := range width {
			n := name + "_" + strconv.Itoa(k)
			if useLabels {
				n = name + "_" + labelName(labels[k])
			}
			if err := add(n); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// labelName makes a class label usable in a column name.
func labelName(l string) string {
	if l == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, l)
}

func columnType(dt tensor.DType) table.Type {
	switch {
	case dt.IsFloat():
		return table.Float64
	case dt.IsInteger():
		return table.Int64
	case dt == tensor.Bool:
		return table.Bool
	case dt == tensor.String:
		return table.String
	}
	return table.Invalid
}

// Fields returns the prediction columns, in order.
func (o *Output) Fields() []table.Field { return o.fields }

// Columns converts one batch of outputs (of rows rows) into columns, in
// Fields order, appending them to dst.
func (o *Output) Columns(dst []table.Column, outs []*tensor.Tensor, rows int) ([]table.Column, error) {
	if len(outs) != len(o.outs) {
		return nil, fmt.Errorf("model returned %d outputs, earlier batches %d", len(outs), len(o.outs))
	}
	for i, t := range outs {
		oc := o.outs[i]
		if t.Len() != rows*oc.width || columnType(t.DType) != oc.typ {
			return nil, fmt.Errorf("output %q: %v %v for %d rows does not match earlier batches (%d values per row of %v)",
				oc.name, t.DType, t.Shape, rows, oc.width, oc.typ)
		}
		for k := range oc.width {
			c := table.Column{Type: oc.typ}
			if err := column(&c, t, k, oc.width, rows); err != nil {
				return nil, fmt.Errorf("output %q: %w", oc.name, err)
			}
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// column fills c with element k of every row of t (row width w).
func column(c *table.Column, t *tensor.Tensor, k, w, rows int) error {
	switch d := t.Data.(type) {
	case []float64:
		if w == 1 {
			c.Floats = d[:rows:rows] // shared: outputs belong to the caller
			return nil
		}
		c.Floats = strided(d, k, w, rows, func(v float64) float64 { return v })
	case []float32:
		c.Floats = strided(d, k, w, rows, func(v float32) float64 { return float64(v) })
	case []uint16:
		if t.DType == tensor.Float16 {
			c.Floats = strided(d, k, w, rows, func(v uint16) float64 { return float64(tensor.HalfToFloat32(v)) })
		} else {
			c.Ints = strided(d, k, w, rows, func(v uint16) int64 { return int64(v) })
		}
	case []int64:
		if w == 1 {
			c.Ints = d[:rows:rows]
			return nil
		}
		c.Ints = strided(d, k, w, rows, func(v int64) int64 { return v })
	case []int32:
		c.Ints = strided(d, k, w, rows, func(v int32) int64 { return int64(v) })
	case []int16:
		c.Ints = strided(d, k, w, rows, func(v int16) int64 { return int64(v) })
	case []int8:
		c.Ints = strided(d, k, w, rows, func(v int8) int64 { return int64(v) })
	case []uint64:
		for i := range rows {
			if d[i*w+k] > math.MaxInt64 {
				return fmt.Errorf("value %d does not fit an int64 column", d[i*w+k])
			}
		}
		c.Ints = strided(d, k, w, rows, func(v uint64) int64 { return int64(v) })
	case []uint32:
		c.Ints = strided(d, k, w, rows, func(v uint32) int64 { return int64(v) })
	case []uint8:
		c.Ints = strided(d, k, w, rows, func(v uint8) int64 { return int64(v) })
	case []bool:
		c.Bools = strided(d, k, w, rows, func(v bool) bool { return v })
	case []string:
		n := 0
		for i := range rows {
			n += len(d[i*w+k])
		}
		c.Strs.Data = make([]byte, 0, n)
		c.Strs.Offsets = make([]int32, 1, rows+1)
		for i := range rows {
			c.Strs.AppendString(d[i*w+k])
		}
	default:
		return fmt.Errorf("unsupported datatype %v", t.DType)
	}
	return nil
}

func strided[S, D any](src []S, k, w, rows int, conv func(S) D) []D {
	out := make([]D, rows)
	for i := range out {
		out[i] = conv(src[i*w+k])
	}
	return out
}
