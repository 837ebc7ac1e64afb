package predlog

import (
	"io"
	"reflect"

	"github.com/parquet-go/parquet-go"

	"github.com/kiln-ml/kiln/dataset/table"
)

// segmentWriter writes converted batches to Parquet column by column
// (parquet-go's ColumnWriters), which costs about half of assembling
// rows. The metadata columns are REQUIRED, the inputs.* and outputs.*
// columns OPTIONAL (a failed request has none); categorical strings are
// dictionary-encoded, timestamps in milliseconds UTC; one row group per
// batch.
type segmentWriter struct {
	w        *parquet.Writer
	vals     []parquet.Value
	nullable []bool
}

type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

type namedNode struct {
	parquet.Node
	name string
}

func (n *namedNode) Name() string                           { return n.name }
func (n *namedNode) Value(base reflect.Value) reflect.Value { return base.FieldByName(n.name) }

func newSegmentWriter(out io.Writer, s table.Schema) *segmentWriter {
	g := &orderedGroup{Group: parquet.Group{}}
	for _, f := range s.Fields {
		var node parquet.Node
		switch f.Type {
		case table.Bool:
			node = parquet.Leaf(parquet.BooleanType)
		case table.Int64:
			node = parquet.Int(64)
		case table.Float64:
			node = parquet.Leaf(parquet.DoubleType)
		case table.String:
			node = parquet.String()
			if f.Categorical {
				node = parquet.Encoded(node, &parquet.RLEDictionary)
			}
		case table.Timestamp:
			node = parquet.TimestampAdjusted(parquet.Millisecond, true)
		}
		if f.Nullable {
			node = parquet.Optional(node)
		} else {
			node = parquet.Required(node)
		}
		g.Group[f.Name] = node
		g.fields = append(g.fields, &namedNode{Node: node, name: f.Name})
	}
	w := parquet.NewWriter(out, parquet.NewSchema("schema", g), parquet.Compression(&parquet.Snappy), parquet.CreatedBy("kiln", "", ""),
		// Column-chunk statistics stay (readers prune row groups by
		// them); per-page copies in the page headers, which cost a
		// min/max pass over every page, and the bounds of columns no
		// reader filters by range (ids, messages) are left out.
		parquet.DataPageStatistics(false),
		parquet.SkipPageBounds(ColRequestID), parquet.SkipPageBounds(ColError), parquet.SkipPageBounds(ColOutliers))
	sw := &segmentWriter{w: w}
	for _, f := range s.Fields {
		sw.nullable = append(sw.nullable, f.Nullable)
	}
	return sw
}

// Write writes b as one row group.
func (w *segmentWriter) Write(b *table.Batch) error {
	const chunk = 4096
	if cap(w.vals) < chunk {
		w.vals = make([]parquet.Value, chunk)
	}
	cols := w.w.ColumnWriters()
	for ci := range b.Columns {
		c := &b.Columns[ci]
		if !w.nullable[ci] {
			// REQUIRED: no levels to set.
			for lo := 0; lo < b.Len; lo += chunk {
				hi := min(lo+chunk, b.Len)
				vals := w.vals[:hi-lo]
				switch c.Type {
				case table.Bool:
					for i := lo; i < hi; i++ {
						vals[i-lo] = parquet.BooleanValue(c.Bools[i])
					}
				case table.Int64, table.Timestamp:
					for i := lo; i < hi; i++ {
						vals[i-lo] = parquet.Int64Value(c.Ints[i])
					}
				case table.Float64:
					for i := lo; i < hi; i++ {
						vals[i-lo] = parquet.DoubleValue(c.Floats[i])
					}
				case table.String:
					for i := lo; i < hi; i++ {
						vals[i-lo] = parquet.ByteArrayValue(c.Bytes(i))
					}
				}
				if _, err := cols[ci].WriteRowValues(vals); err != nil {
					return err
				}
			}
			continue
		}
		for lo := 0; lo < b.Len; lo += chunk {
			hi := min(lo+chunk, b.Len)
			vals := w.vals[:hi-lo]
			for i := lo; i < hi; i++ {
				var v parquet.Value
				if c.Null(i) {
					v = parquet.NullValue().Level(0, 0, ci)
				} else {
					switch c.Type {
					case table.Bool:
						v = parquet.BooleanValue(c.Bools[i])
					case table.Int64, table.Timestamp:
						v = parquet.Int64Value(c.Ints[i])
					case table.Float64:
						v = parquet.DoubleValue(c.Floats[i])
					case table.String:
						v = parquet.ByteArrayValue(c.Bytes(i))
					}
					v = v.Level(0, 1, ci)
				}
				vals[i-lo] = v
			}
			if _, err := cols[ci].WriteRowValues(vals); err != nil {
				return err
			}
		}
	}
	return w.w.Flush()
}

func (w *segmentWriter) Close() error { return w.w.Close() }
