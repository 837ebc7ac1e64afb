package predlog

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset/table"
)

// blobReaderAt reads an object with range requests (Parquet footers).
type blobReaderAt struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	obj, err := r.b.GetRange(r.ctx, r.key, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	n, err := io.ReadFull(obj, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// Schema returns the union of the columns of the endpoint's segments in
// [from, to): the metadata columns, then every inputs.* and outputs.*
// column in order of appearance (a column whose type differs between
// segments is widened: ints and floats to float64, anything else to
// string). It reads only the Parquet footers.
func (r *Reader) Schema(ctx context.Context, endpoint string, from, to time.Time) (table.Schema, error) {
	segs, err := r.ix.Segments(ctx, endpoint, from, to)
	if err != nil {
		return table.Schema{}, err
	}
	out := table.Schema{Fields: append([]table.Field(nil), metaFields...)}
	for _, s := range segs {
		tr, err := table.OpenReaderAt(ctx, &blobReaderAt{ctx: ctx, b: r.b, key: s.ObjectKey}, s.SizeBytes, s.ObjectKey, table.Options{Format: table.Parquet})
		if err != nil {
			return table.Schema{}, fmt.Errorf("segment %s: %w", s.ID, err)
		}
		out = unionSchema(out, tr.Schema())
		tr.Close()
	}
	return out, nil
}

func unionSchema(a, b table.Schema) table.Schema {
	for _, f := range b.Fields {
		i := a.Index(f.Name)
		if i < 0 {
			f.Nullable = true
			f.Categorical, f.Categories = false, nil
			if isMeta(f.Name) {
				continue // a metadata column this version does not know
			}
			a.Fields = append(a.Fields, f)
			continue
		}
		if a.Fields[i].Type != f.Type {
			a.Fields[i].Type = widen(a.Fields[i].Type, f.Type)
		}
	}
	return a
}

func isMeta(name string) bool {
	for _, f := range metaFields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// conform returns b (of schema from) with the columns of schema to: the
// missing ones null, others converted to to's type.
func conform(b *table.Batch, from, to table.Schema) *table.Batch {
	out := &table.Batch{Len: b.Len, Columns: make([]table.Column, len(to.Fields))}
	for i, f := range to.Fields {
		j := from.Index(f.Name)
		if j >= 0 && from.Fields[j].Type == f.Type {
			out.Columns[i] = b.Columns[j]
			continue
		}
		col := table.Column{Type: f.Type, Valid: make(table.Bitmap, (b.Len+63)/64)}
		switch f.Type {
		case table.Bool:
			col.Bools = make([]bool, b.Len)
		case table.Int64, table.Timestamp, table.Date:
			col.Ints = make([]int64, b.Len)
		case table.Float64:
			col.Floats = make([]float64, b.Len)
		case table.String:
			col.Strs.Offsets = make([]int32, 1, b.Len+1)
		}
		var src *table.Column
		var sf *table.Field
		if j >= 0 {
			src, sf = &b.Columns[j], &from.Fields[j]
		}
		for r := 0; r < b.Len; r++ {
			valid := src != nil && !src.Null(r)
			switch f.Type {
			case table.Float64:
				if valid {
					col.Floats[r] = src.Float(r)
				}
			case table.String:
				if valid {
					col.Strs.AppendString(src.Format(r, sf))
				} else {
					col.Strs.Append(nil)
				}
			case table.Int64:
				if valid {
					col.Ints[r] = int64(src.Float(r))
				}
			default:
				valid = false
			}
			if valid {
				col.Valid.Set(r, true)
			}
		}
		out.Columns[i] = col
	}
	return out
}

// Export writes the endpoint's rows in [from, to) to w as one table file
// of format f (table.Parquet or table.JSONL), with the columns of Schema,
// and returns the number of rows. An empty window gives a file of the
// metadata columns and no rows.
func (r *Reader) Export(ctx context.Context, endpoint string, from, to time.Time, w io.Writer, f table.Format) (int64, error) {
	schema, err := r.Schema(ctx, endpoint, from, to)
	if err != nil {
		return 0, err
	}
	var tw table.Writer
	switch f {
	case table.Parquet:
		tw, err = table.NewParquetWriter(w, schema, table.ParquetWriterOptions{Compression: "zstd"})
	case table.JSONL:
		tw, err = table.NewJSONLWriter(w, schema)
	default:
		err = fmt.Errorf("prediction log: cannot export as %q", f)
	}
	if err != nil {
		return 0, err
	}
	var rows int64
	err = r.Scan(ctx, endpoint, from, to, func(s table.Schema, b *table.Batch) error {
		rows += int64(b.Len)
		return tw.Write(conform(b, s, schema))
	})
	if err != nil {
		return rows, err
	}
	return rows, tw.Close()
}

// ParseTime reads a window bound: RFC 3339, or milliseconds since the
// Unix epoch; "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339 (2026-01-02T15:04:05Z) or milliseconds since the epoch", s)
	}
	return t, nil
}

// Service is what the native API serves of the prediction log: Flush of
// a Log, Segments of its Index, Export of a Reader.
type Service struct {
	Log    *Log
	Reader *Reader
}

// NewService returns the API's view of l, reading back through a Reader
// on l's index and bucket.
func NewService(l *Log) *Service {
	return &Service{Log: l, Reader: NewReader(l.index, l.opts.Bucket)}
}

// Flush flushes the endpoint's records (see (*Log).Flush).
func (s *Service) Flush(ctx context.Context, endpoint string) error {
	return s.Log.Flush(ctx, endpoint)
}

// Segments lists the endpoint's shipped segments overlapping [from, to).
func (s *Service) Segments(ctx context.Context, endpoint string, from, to time.Time) ([]Segment, error) {
	return s.Log.index.Segments(ctx, endpoint, from, to)
}

// Export writes the endpoint's rows in [from, to) (see (*Reader).Export).
func (s *Service) Export(ctx context.Context, endpoint string, from, to time.Time, w io.Writer, f table.Format) (int64, error) {
	return s.Reader.Export(ctx, endpoint, from, to, w, f)
}

// Erase deletes the endpoint's records of a subject key (see
// (*Log).Erase).
func (s *Service) Erase(ctx context.Context, endpoint, subject string) (ErasureReport, error) {
	return s.Log.Erase(ctx, endpoint, subject)
}
