package table

import (
	"io"
	"reflect"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// Writer writes batches to a table file. Close flushes (and for Parquet
// writes the footer) but does not close the underlying io.Writer.
type Writer interface {
	// Write appends the rows of b, whose columns must match the writer's
	// schema (Batch.Check).
	Write(b *Batch) error
	Close() error
}

// NewWriter returns a Writer of format f with default options: pandas'
// to_csv dialect for CSV, JSON Lines, or Snappy-compressed Parquet.
func NewWriter(w io.Writer, s Schema, f Format) (Writer, error) {
	switch f {
	case CSV:
		return NewCSVWriter(w, s, CSVWriterOptions{})
	case JSONL:
		return NewJSONLWriter(w, s)
	case Parquet:
		return NewParquetWriter(w, s, ParquetWriterOptions{})
	}
	return nil, invalidf(ErrFormat, "unknown table format %q", f)
}

// ParquetWriterOptions configure NewParquetWriter.
type ParquetWriterOptions struct {
	// RowGroupRows caps the rows per row group (1,048,576 when 0, as
	// pyarrow's default).
	RowGroupRows int64
	// Compression is "snappy" (default), "zstd", "gzip" or "none".
	Compression string
}

type parquetWriter struct {
	schema Schema
	w      *parquet.Writer
	rows   []parquet.Row
	vals   []parquet.Value
}

// orderedGroup is a Parquet group node whose fields keep the table's
// column order (parquet.Group sorts them by name).
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

// NewParquetWriter returns a Writer of Parquet: every column OPTIONAL,
// strings as UTF-8 (dictionary-encoded when the field is categorical),
// timestamps with their unit and UTC flag, dates as DATE.
func NewParquetWriter(w io.Writer, s Schema, opts ParquetWriterOptions) (Writer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := &orderedGroup{Group: parquet.Group{}}
	for _, f := range s.Fields {
		var node parquet.Node
		switch f.Type {
		case Bool:
			node = parquet.Leaf(parquet.BooleanType)
		case Int64:
			node = parquet.Int(64)
		case Float64:
			node = parquet.Leaf(parquet.DoubleType)
		case String:
			node = parquet.String()
			if f.Categorical {
				node = parquet.Encoded(node, &parquet.RLEDictionary)
			}
		case Date:
			node = parquet.Date()
		case Timestamp:
			unit := parquet.Nanosecond
			switch f.Unit {
			case Millisecond:
				unit = parquet.Millisecond
			case Microsecond:
				unit = parquet.Microsecond
			}
			node = parquet.TimestampAdjusted(unit, f.UTC)
		}
		node = parquet.Optional(node)
		g.Group[f.Name] = node
		g.fields = append(g.fields, &namedNode{Node: node, name: f.Name})
	}
	var codec compress.Codec = &parquet.Snappy
	switch opts.Compression {
	case "", "snappy":
	case "zstd":
		codec = &parquet.Zstd
	case "gzip":
		codec = &parquet.Gzip
	case "none":
		codec = &parquet.Uncompressed
	default:
		return nil, invalidf(ErrSchema, "unknown Parquet compression %q", opts.Compression)
	}
	rgRows := opts.RowGroupRows
	if rgRows <= 0 {
		rgRows = 1 << 20
	}
	schema := parquet.NewSchema("schema", g)
	pw := parquet.NewWriter(w, schema, parquet.Compression(codec), parquet.MaxRowsPerRowGroup(rgRows),
		parquet.CreatedBy("kiln", "", ""))
	return &parquetWriter{schema: s.Clone(), w: pw}, nil
}

func (w *parquetWriter) Write(b *Batch) error {
	if err := b.Check(w.schema); err != nil {
		return err
	}
	const chunk = 4096
	ncol := len(b.Columns)
	for lo := 0; lo < b.Len; lo += chunk {
		hi := min(lo+chunk, b.Len)
		n := hi - lo
		if cap(w.vals) < n*ncol {
			w.vals = make([]parquet.Value, n*ncol)
			w.rows = make([]parquet.Row, n)
		}
		vals, rows := w.vals[:n*ncol], w.rows[:n]
		for ci := range b.Columns {
			c := &b.Columns[ci]
			for i := lo; i < hi; i++ {
				var v parquet.Value
				if c.Null(i) {
					v = parquet.NullValue().Level(0, 0, ci)
				} else {
					switch c.Type {
					case Bool:
						v = parquet.BooleanValue(c.Bools[i])
					case Int64, Timestamp:
						v = parquet.Int64Value(c.Ints[i])
					case Date:
						d := c.Ints[i]
						if d != int64(int32(d)) {
							return invalidf(ErrTypeMismatch, "column %q: date %d days from the epoch does not fit Parquet's DATE", w.schema.Fields[ci].Name, d)
						}
						v = parquet.Int32Value(int32(d))
					case Float64:
						v = parquet.DoubleValue(c.Floats[i])
					case String:
						v = parquet.ByteArrayValue(c.Bytes(i))
					}
					v = v.Level(0, 1, ci)
				}
				vals[(i-lo)*ncol+ci] = v
			}
		}
		for k := range rows {
			rows[k] = vals[k*ncol : (k+1)*ncol : (k+1)*ncol]
		}
		if _, err := w.w.WriteRows(rows); err != nil {
			return err
		}
	}
	return nil
}

func (w *parquetWriter) Close() error { return w.w.Close() }
