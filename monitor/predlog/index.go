package predlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/store"
)

// Segment is one shipped segment as the index lists it.
type Segment struct {
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	Replica   string    `json:"replica"`
	Start     time.Time `json:"start"` // first request
	End       time.Time `json:"end"`   // last request
	Requests  int64     `json:"requests"`
	Rows      int64     `json:"rows"`
	SizeBytes int64     `json:"size_bytes"` // of the Parquet object
	ObjectKey string    `json:"object_key"`
	Created   time.Time `json:"created"`
}

// Index lists the shipped segments (table prediction_segments).
type Index struct {
	db *store.DB
}

// NewIndex returns the index on db.
func NewIndex(db *store.DB) *Index { return &Index{db: db} }

const segmentCols = `segment_id, endpoint, replica, start_time, end_time, requests, rows, size_bytes, object_key, creation_time`

func scanSegment(row interface{ Scan(...any) error }, extra ...any) (Segment, error) {
	var s Segment
	var start, end, created int64
	dest := append([]any{&s.ID, &s.Endpoint, &s.Replica, &start, &end, &s.Requests, &s.Rows, &s.SizeBytes, &s.ObjectKey, &created}, extra...)
	if err := row.Scan(dest...); err != nil {
		return s, err
	}
	s.Start, s.End, s.Created = time.UnixMilli(start).UTC(), time.UnixMilli(end).UTC(), time.UnixMilli(created).UTC()
	return s, nil
}

// put indexes a shipped segment with its summary. Putting the same
// segment again is a no-op (a retry after a crash between the upload and
// the local delete).
func (ix *Index) put(ctx context.Context, s Segment, sum *Summary) error {
	doc, err := encodeSummary(sum)
	if err != nil {
		return fmt.Errorf("encode segment summary: %w", err)
	}
	return ix.db.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, ix.db.Rebind(`INSERT INTO prediction_segments (`+segmentCols+`, summary)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (segment_id) DO NOTHING`),
			s.ID, s.Endpoint, s.Replica, s.Start.UnixMilli(), s.End.UnixMilli(), s.Requests, s.Rows, s.SizeBytes, s.ObjectKey,
			s.Created.UnixMilli(), string(doc))
		return err
	})
}

// Summaries are stored as JSON, or, when larger than summaryGzipAbove,
// as summaryGzipPrefix + base64(gzip(JSON)): the sketches' registers
// compress several times.
const (
	summaryGzipAbove  = 4 << 10
	summaryGzipPrefix = "gz:"
)

func encodeSummary(sum *Summary) (string, error) {
	doc, err := json.Marshal(sum)
	if err != nil || len(doc) <= summaryGzipAbove {
		return string(doc), err
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	zw.Write(doc)
	if err := zw.Close(); err != nil {
		return "", err
	}
	return summaryGzipPrefix + base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

func decodeSummary(doc string, s *Summary) error {
	if z, ok := strings.CutPrefix(doc, summaryGzipPrefix); ok {
		raw, err := base64.StdEncoding.DecodeString(z)
		if err != nil {
			return err
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		defer zr.Close()
		return json.NewDecoder(zr).Decode(s)
	}
	return json.Unmarshal([]byte(doc), s)
}

// get returns one segment, or ok false.
func (ix *Index) get(ctx context.Context, id string) (Segment, bool, error) {
	s, err := scanSegment(ix.db.R.QueryRowContext(ctx, ix.db.Rebind(`SELECT `+segmentCols+` FROM prediction_segments WHERE segment_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

// window bounds a query: a zero to means no end.
func window(from, to time.Time) (int64, int64) {
	hi := int64(1 << 62)
	if !to.IsZero() {
		hi = to.UnixMilli()
	}
	return from.UnixMilli(), hi
}

// Segments lists the endpoint's segments overlapping [from, to) (a zero
// to: no end), oldest first.
func (ix *Index) Segments(ctx context.Context, endpoint string, from, to time.Time) ([]Segment, error) {
	lo, hi := window(from, to)
	rows, err := ix.db.R.QueryContext(ctx, ix.db.Rebind(`SELECT `+segmentCols+` FROM prediction_segments
		WHERE endpoint = ? AND end_time >= ? AND start_time < ? ORDER BY start_time, segment_id`), endpoint, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Segment{}
	for rows.Next() {
		s, err := scanSegment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Summary merges the summaries of the endpoint's segments overlapping
// [from, to): whole segments, so the window's edges are as precise as the
// segment age (SegmentMaxAge). With none it returns an empty summary.
func (ix *Index) Summary(ctx context.Context, endpoint string, from, to time.Time) (*Summary, error) {
	lo, hi := window(from, to)
	rows, err := ix.db.R.QueryContext(ctx, ix.db.Rebind(`SELECT summary FROM prediction_segments
		WHERE endpoint = ? AND end_time >= ? AND start_time < ? ORDER BY start_time, segment_id`), endpoint, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := newSummary()
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var s Summary
		if err := decodeSummary(doc, &s); err != nil {
			return nil, fmt.Errorf("segment summary: %w", err)
		}
		if err := out.Merge(&s); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// expired lists up to limit segments of endpoint ("" = any endpoint)
// whose last request is before t.
func (ix *Index) expired(ctx context.Context, endpoint string, t time.Time, limit int) ([]Segment, error) {
	q, args := `SELECT `+segmentCols+` FROM prediction_segments WHERE end_time < ? ORDER BY end_time LIMIT ?`, []any{t.UnixMilli(), limit}
	if endpoint != "" {
		q, args = `SELECT `+segmentCols+` FROM prediction_segments WHERE endpoint = ? AND end_time < ? ORDER BY end_time LIMIT ?`,
			[]any{endpoint, t.UnixMilli(), limit}
	}
	rows, err := ix.db.R.QueryContext(ctx, ix.db.Rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Segment
	for rows.Next() {
		s, err := scanSegment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Endpoints lists the endpoints that have shipped segments, sorted.
func (ix *Index) Endpoints(ctx context.Context) ([]string, error) {
	rows, err := ix.db.R.QueryContext(ctx, `SELECT DISTINCT endpoint FROM prediction_segments ORDER BY endpoint`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// removeIf drops a segment's row if it still names the object oldKey;
// ok is false when it does not (another writer changed or removed it).
func (ix *Index) removeIf(ctx context.Context, id, oldKey string) (ok bool, err error) {
	err = ix.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, ix.db.Rebind(`DELETE FROM prediction_segments WHERE segment_id = ? AND object_key = ?`), id, oldKey)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	return ok, err
}

// update replaces a segment's row with s and its summary (a segment
// rewritten by an erasure: same id, new object), if the row still names
// the object oldKey; ok is false when it does not (another writer changed
// or removed it, and s's object is not indexed).
func (ix *Index) update(ctx context.Context, s Segment, sum *Summary, oldKey string) (ok bool, err error) {
	doc, err := encodeSummary(sum)
	if err != nil {
		return false, fmt.Errorf("encode segment summary: %w", err)
	}
	err = ix.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, ix.db.Rebind(`UPDATE prediction_segments SET start_time = ?, end_time = ?, requests = ?,
			rows = ?, size_bytes = ?, object_key = ?, summary = ? WHERE segment_id = ? AND object_key = ?`),
			s.Start.UnixMilli(), s.End.UnixMilli(), s.Requests, s.Rows, s.SizeBytes, s.ObjectKey, string(doc), s.ID, oldKey)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	return ok, err
}
