package pit

import (
	"math"
	"strconv"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// accum holds the kept rows of one feature column, converted to the
// output type.
type accum struct {
	typ   table.Type
	field table.Field // the source field
	n     int
	valid table.Bitmap // nil while every row is valid
	bools vec[bool]
	ints  vec[int64]
	flts  vec[float64]
	strs  table.Strings
}

func (a *accum) setNull(i int) {
	if a.valid == nil {
		a.valid = table.Bitmap{}
	}
	a.growValid(i + 1)
	a.valid.Set(i, false)
}

// growValid extends a non-nil bitmap with all-valid words to n rows.
func (a *accum) growValid(n int) {
	if a.valid == nil {
		return
	}
	for len(a.valid)*64 < n {
		a.valid = append(a.valid, ^uint64(0))
	}
}

// appendRows appends rows sel of c.
func (a *accum) appendRows(c *table.Column, sel []int) error {
	base := a.n
	a.n += len(sel)
	for k, i := range sel {
		if c.Null(i) {
			a.setNull(base + k)
		}
	}
	a.growValid(a.n)
	switch {
	case a.typ == c.Type:
		switch c.Type {
		case table.Bool:
			for _, i := range sel {
				a.bools.push(c.Bools[i])
			}
		case table.Int64, table.Timestamp, table.Date:
			for _, i := range sel {
				a.ints.push(c.Ints[i])
			}
		case table.Float64:
			for _, i := range sel {
				a.flts.push(c.Floats[i])
			}
		case table.String:
			for _, i := range sel {
				a.strs.Append(c.Bytes(i))
			}
			if len(a.strs.Data) > math.MaxInt32 {
				return errdefs.Invalid("string feature values exceed 2 GiB")
			}
		}
	case a.typ == table.Float64:
		for _, i := range sel {
			a.flts.push(c.Float(i))
		}
	case a.typ == table.Int64:
		for k, i := range sel {
			switch c.Type {
			case table.Bool:
				a.ints.push(int64(c.Float(i)))
			default:
				f := c.Floats[i]
				switch {
				case c.Null(i):
					f = 0
				case math.IsNaN(f):
					a.setNull(base + k)
					f = 0
				case f != math.Trunc(f) || math.Abs(f) >= 1<<63:
					return errdefs.Invalid("value %v (source row %d of its batch) is not an integer", f, i)
				}
				a.ints.push(int64(f))
			}
		}
	case a.typ == table.String:
		var buf []byte
		for _, i := range sel {
			buf = buf[:0]
			if !c.Null(i) {
				switch c.Type {
				case table.Bool:
					buf = strconv.AppendBool(buf, c.Bools[i])
				case table.Int64:
					buf = strconv.AppendInt(buf, c.Ints[i], 10)
				case table.Float64:
					buf = strconv.AppendFloat(buf, c.Floats[i], 'g', -1, 64)
				default:
					buf = append(buf, c.Format(i, &a.field)...)
				}
			}
			a.strs.Append(buf)
		}
	default:
		return errdefs.Invalid("cannot convert %v to %v", c.Type, a.typ)
	}
	return nil
}

// gather returns the output column for entity rows whose feature rows are
// m (−1: null).
func (a *accum) gather(m []int32) table.Column {
	n := len(m)
	c := table.Column{Type: a.typ, Valid: table.NewBitmap(n)}
	for i, r := range m {
		if r < 0 || (a.valid != nil && !a.valid.Valid(int(r))) {
			c.Valid.Set(i, false)
		}
	}
	switch a.typ {
	case table.Bool:
		c.Bools = make([]bool, n)
		for i, r := range m {
			if r >= 0 {
				c.Bools[i] = a.bools.at(r)
			}
		}
	case table.Int64, table.Timestamp, table.Date:
		c.Ints = make([]int64, n)
		for i, r := range m {
			if r >= 0 {
				c.Ints[i] = a.ints.at(r)
			}
		}
	case table.Float64:
		c.Floats = make([]float64, n)
		for i, r := range m {
			if r >= 0 {
				c.Floats[i] = a.flts.at(r)
			}
		}
	case table.String:
		size := 0
		for _, r := range m {
			if r >= 0 {
				size += int(a.strs.Offsets[r+1] - a.strs.Offsets[r])
			}
		}
		c.Strs.Data = make([]byte, 0, size)
		c.Strs.Offsets = make([]int32, 1, n+1)
		for _, r := range m {
			if r >= 0 {
				c.Strs.Data = append(c.Strs.Data, a.strs.At(int(r))...)
			}
			c.Strs.Offsets = append(c.Strs.Offsets, int32(len(c.Strs.Data)))
		}
	}
	return c
}
