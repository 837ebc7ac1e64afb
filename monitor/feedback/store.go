package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// putChunk is how many labels one INSERT statement carries.
const putChunk = 500

// MaxEndpointLen bounds an endpoint name.
const MaxEndpointLen = 128

// Store keeps labels in the metadata database (table prediction_labels of
// migration 8).
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore returns a Store on db.
func NewStore(db *store.DB) *Store { return &Store{db: db, now: time.Now} }

func checkEndpoint(endpoint string) error {
	if endpoint == "" || len(endpoint) > MaxEndpointLen || strings.IndexByte(endpoint, 0) >= 0 {
		return errdefs.Invalid("Invalid endpoint name %q", clip(endpoint))
	}
	return nil
}

func labelKey(requestID string, row int64) string {
	return fmt.Sprintf("%s\x00%d", requestID, row)
}

// Put stores labels of the endpoint's predictions, replacing any label
// stored before for the same request id and row (the last of several in
// labels wins). Every label is checked first: one invalid label stores
// nothing, and the error names its position. All labels are written in one
// transaction. Put returns the number of labels accepted, len(labels).
func (s *Store) Put(ctx context.Context, endpoint string, labels []Label) (int, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return 0, err
	}
	now := s.now().UnixMilli()
	type row struct {
		id    string
		row   int64
		value string
		at    int64
		src   string
	}
	rows := make([]row, 0, len(labels))
	pos := make(map[string]int, len(labels))
	for i := range labels {
		l := labels[i]
		if err := l.Validate(); err != nil {
			if len(labels) > 1 {
				return 0, fmt.Errorf("label %d: %w", i+1, err)
			}
			return 0, err
		}
		v, err := json.Marshal(l.Value)
		if err != nil {
			return 0, fmt.Errorf("label %d: %w", i+1, err)
		}
		at := now
		if !l.ReceivedAt.IsZero() {
			at = l.ReceivedAt.UnixMilli()
		}
		r := row{l.RequestID, l.Row, string(v), at, l.Source}
		// PostgreSQL refuses to update one row twice in a statement: keep
		// the last label of each key.
		k := labelKey(l.RequestID, l.Row)
		if j, dup := pos[k]; dup {
			rows[j] = r
			continue
		}
		pos[k] = len(rows)
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		for lo := 0; lo < len(rows); lo += putChunk {
			chunk := rows[lo:min(lo+putChunk, len(rows))]
			var q strings.Builder
			q.WriteString("INSERT INTO prediction_labels (endpoint, request_id, row_index, label, received_time, source) VALUES ")
			args := make([]any, 0, 6*len(chunk))
			for i, r := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?)")
				args = append(args, endpoint, r.id, r.row, r.value, r.at, r.src)
			}
			q.WriteString(store.Upsert([]string{"endpoint", "request_id", "row_index"}, "label", "received_time", "source"))
			if _, err := tx.ExecContext(ctx, s.db.Rebind(q.String()), args...); err != nil {
				return fmt.Errorf("store labels: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(labels), nil
}

// Get returns the labels of one request of the endpoint, by row; none
// when it has no label.
func (s *Store) Get(ctx context.Context, endpoint, requestID string) ([]Label, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	if err := ValidateRequestID(requestID); err != nil {
		return nil, err
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(
		`SELECT request_id, row_index, label, received_time, source FROM prediction_labels
		 WHERE endpoint = ? AND request_id = ? ORDER BY row_index`), endpoint, requestID)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	defer rows.Close()
	var out []Label
	for rows.Next() {
		l, err := scanLabel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Since calls fn with each label of the endpoint received at or after
// since, in the order they were received, streaming (the labels are not
// held in memory). An error from fn stops the scan and is returned.
func (s *Store) Since(ctx context.Context, endpoint string, since time.Time, fn func(Label) error) error {
	if err := checkEndpoint(endpoint); err != nil {
		return err
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(
		`SELECT request_id, row_index, label, received_time, source FROM prediction_labels
		 WHERE endpoint = ? AND received_time >= ? ORDER BY received_time, request_id, row_index`), endpoint, since.UnixMilli())
	if err != nil {
		return fmt.Errorf("read labels: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := scanLabel(rows)
		if err != nil {
			return err
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanLabel(sc scanner) (Label, error) {
	var l Label
	var value string
	var at int64
	if err := sc.Scan(&l.RequestID, &l.Row, &value, &at, &l.Source); err != nil {
		return l, fmt.Errorf("read label: %w", err)
	}
	if err := json.Unmarshal([]byte(value), &l.Value); err != nil {
		return l, fmt.Errorf("stored label of request %q row %d: %w", clip(l.RequestID), l.Row, err)
	}
	l.ReceivedAt = time.UnixMilli(at).UTC()
	return l, nil
}
