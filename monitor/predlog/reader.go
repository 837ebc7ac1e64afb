package predlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// Reader reads the logged rows back from the bucket.
type Reader struct {
	ix *Index
	b  *blob.Bucket
}

// NewReader returns a Reader of the segments ix lists, stored in b.
func NewReader(ix *Index, b *blob.Bucket) *Reader { return &Reader{ix: ix, b: b} }

// maxSegmentObject bounds what Scan reads of one segment into memory.
const maxSegmentObject = 1 << 30

// Scan calls fn with the rows the endpoint logged in [from, to) (a zero to:
// no end), segment by segment, oldest first. The columns are those of
// each segment's file (see columns.go): segments written by different
// model versions may differ in their inputs.* and outputs.* columns.
func (r *Reader) Scan(ctx context.Context, endpoint string, from, to time.Time, fn func(table.Schema, *table.Batch) error) error {
	segs, err := r.ix.Segments(ctx, endpoint, from, to)
	if err != nil {
		return err
	}
	lo, hi := window(from, to)
	for _, s := range segs {
		err := r.scanSegment(ctx, s, lo, hi, fn)
		// An erasure may have rewritten (new object) or emptied the
		// segment since it was listed: read what its row says now.
		for try := 0; errors.Is(err, errdefs.ErrNotFound) && try < 3; try++ {
			cur, ok, gerr := r.ix.get(ctx, s.ID)
			if gerr != nil {
				return fmt.Errorf("segment %s: %w", s.ID, gerr)
			}
			if !ok {
				err = nil // removed meanwhile
				break
			}
			if cur.ObjectKey == s.ObjectKey {
				break
			}
			s = cur
			err = r.scanSegment(ctx, s, lo, hi, fn)
		}
		if err != nil {
			return fmt.Errorf("segment %s: %w", s.ID, err)
		}
	}
	return nil
}

func (r *Reader) scanSegment(ctx context.Context, s Segment, lo, hi int64, fn func(table.Schema, *table.Batch) error) error {
	obj, err := r.b.Get(ctx, s.ObjectKey)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(obj, maxSegmentObject))
	obj.Close()
	if err != nil {
		return err
	}
	tr, err := table.OpenReaderAt(ctx, bytes.NewReader(data), int64(len(data)), s.ObjectKey, table.Options{Format: table.Parquet})
	if err != nil {
		return err
	}
	defer tr.Close()
	schema := tr.Schema()
	ts := schema.Index(ColTimestamp)
	if ts < 0 {
		return fmt.Errorf("no %s column", ColTimestamp)
	}
	whole := s.Start.UnixMilli() >= lo && s.End.UnixMilli() < hi
	for {
		b, err := tr.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !whole {
			col := &b.Columns[ts]
			keep := make([]int, 0, b.Len)
			for i := 0; i < b.Len; i++ {
				if v := col.Ints[i]; v >= lo && v < hi {
					keep = append(keep, i)
				}
			}
			if len(keep) == 0 {
				continue
			}
			if len(keep) < b.Len {
				b = b.Take(keep)
			}
		}
		if err := fn(schema, b); err != nil {
			return err
		}
	}
}
