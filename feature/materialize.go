package feature

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature/online"
)

// Materialization states.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// Materialization is one load of a view's latest rows into the online
// store: the rows with an event time in [Start, End) (Start nil: from the
// beginning).
type Materialization struct {
	ID          int64      `json:"id"`
	View        string     `json:"view"`
	ViewVersion int64      `json:"view_version"`
	Store       string     `json:"store"`
	Start       *time.Time `json:"start,omitempty"`
	End         time.Time  `json:"end"`
	State       string     `json:"state"`
	Source      string     `json:"source,omitempty"`
	RowsRead    int64      `json:"rows_read"`
	KeysWritten int64      `json:"keys_written"`
	Error       string     `json:"error,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// putBatch is how many records go to the online store at once.
const putBatch = 1000

// progressEvery is how often a running materialization records its rows
// read so far.
const progressEvery = 2 * time.Second

// fromStart is start_time of a materialization from the beginning.
const fromStart = math.MinInt64

// Materialize loads the latest row of every entity key of view with an
// event time in [start, end) into the online store: among a key's rows,
// the one with the greatest event time wins, ties broken by the greatest
// created time (then by the row read last). end zero means now; start
// zero means from the beginning. incremental ignores start and begins
// where the last successful materialization of this version of the view
// into this store ended (from the beginning when there is none), as
// Feast's materialize-incremental. Every run is recorded (running, then
// succeeded or failed). A view with online: false is refused.
func (s *Service) Materialize(ctx context.Context, view string, start, end time.Time, incremental bool) (*Materialization, error) {
	if s.OnlineStore == nil {
		return nil, errdefs.NotImplemented("This server has no online store")
	}
	v, version, err := s.View(ctx, view, 0)
	if err != nil {
		return nil, err
	}
	if !v.Spec.IsOnline() {
		return nil, errdefs.InvalidState("Feature view '%s' is not online (online: false); it serves training sets only", view)
	}
	if end.IsZero() {
		end = s.clock()
	}
	startUS := int64(fromStart)
	if incremental {
		last, err := s.lastEnd(ctx, view, version)
		if err != nil {
			return nil, err
		}
		if last != nil {
			startUS = *last
		}
	} else if !start.IsZero() {
		startUS = micros(start)
	}
	endUS := micros(end)
	if startUS > endUS {
		return nil, errdefs.Invalid("The interval's start %s is after its end %s", fromMicros(startUS).Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	}
	m := &Materialization{View: view, ViewVersion: version, Store: s.OnlineStore.Name(), End: fromMicros(endUS), State: StateRunning, StartedAt: s.clock().UTC()}
	if startUS != fromStart {
		t := fromMicros(startUS)
		m.Start = &t
	}
	src := *v
	if ver, err := s.SourceVersion(ctx, v); err != nil {
		return nil, err
	} else if ver != nil {
		src.Spec.Source.Dataset = ver.Dataset + "@" + strconv.FormatInt(ver.Version, 10)
		m.Source = src.Spec.Source.Dataset
	} else {
		m.Source = v.Spec.Source.Path
	}
	err = s.DB.W.QueryRowContext(ctx, s.DB.Rebind(`INSERT INTO feature_materializations
		(view, view_version, store, start_time, end_time, state, source, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		view, version, m.Store, startUS, endUS, StateRunning, m.Source, micros(m.StartedAt)).Scan(&m.ID)
	if err != nil {
		return nil, fmt.Errorf("feature: record materialization: %w", err)
	}
	runErr := s.materialize(ctx, &src, m, startUS, endUS)
	fin := s.clock().UTC()
	m.FinishedAt = &fin
	m.State = StateSucceeded
	if runErr != nil {
		m.State, m.Error = StateFailed, errdefs.Message(runErr)
	}
	// Recorded even when the request was cancelled.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.DB.W.ExecContext(wctx, s.DB.Rebind(`UPDATE feature_materializations SET state = ?, rows_read = ?, keys_written = ?, error = ?, finished_at = ? WHERE id = ?`),
		m.State, m.RowsRead, m.KeysWritten, m.Error, micros(fin), m.ID); err != nil {
		return nil, errors.Join(runErr, fmt.Errorf("feature: record materialization: %w", err))
	}
	if runErr != nil {
		return m, runErr
	}
	s.log().Info("materialized feature view", "view", view, "version", version, "store", m.Store, "source", m.Source,
		"rows_read", m.RowsRead, "keys_written", m.KeysWritten, "took", fin.Sub(m.StartedAt))
	return m, nil
}

// lastEnd returns the end of the last successful materialization of this
// version of view into the store (nil when none).
func (s *Service) lastEnd(ctx context.Context, view string, version int64) (*int64, error) {
	var n sql.NullInt64
	err := s.DB.R.QueryRowContext(ctx, s.DB.Rebind(`SELECT MAX(end_time) FROM feature_materializations
		WHERE view = ? AND store = ? AND state = ? AND view_version = ?`), view, s.OnlineStore.Name(), StateSucceeded, version).Scan(&n)
	if err != nil {
		return nil, fmt.Errorf("feature: last materialization of %s: %w", view, err)
	}
	if !n.Valid {
		return nil, nil
	}
	return &n.Int64, nil
}

// best is the winning row of one key so far.
type best struct {
	ev, cr int64
	value  []byte
}

func (s *Service) materialize(ctx context.Context, v *FeatureView, m *Materialization, startUS, endUS int64) error {
	keys, err := s.JoinKeys(ctx, v)
	if err != nil {
		return err
	}
	r, done, err := s.OpenSource(ctx, v)
	if err != nil {
		return err
	}
	defer done()
	sch := r.Schema()
	if err := CheckSchema(v, keys, sch); err != nil {
		return err
	}
	tsCol := sch.Index(v.Spec.TimestampField)
	crCol := -1
	if v.Spec.CreatedTimestampField != "" {
		crCol = sch.Index(v.Spec.CreatedTimestampField)
	}
	keyCols := make([]int, len(keys))
	for i, k := range keys {
		keyCols[i] = sch.Index(k)
	}
	featCols := make([]int, len(v.Spec.Features))
	for i, f := range v.Spec.Features {
		featCols[i] = sch.Index(f.Name)
	}
	latest := map[string]*best{}
	keyVals := make([]string, len(keys))
	vals := make([]any, len(featCols))
	lastProgress := time.Now()
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for row := 0; row < b.Len; row++ {
			m.RowsRead++
			tc := &b.Columns[tsCol]
			if tc.Null(row) {
				continue
			}
			ev := timeMicros(tc, row, &sch.Fields[tsCol])
			if ev < startUS || ev >= endUS {
				continue
			}
			var cr int64
			if crCol >= 0 {
				if cc := &b.Columns[crCol]; !cc.Null(row) {
					cr = timeMicros(cc, row, &sch.Fields[crCol])
				} else {
					cr = math.MinInt64
				}
			}
			ok := true
			for i, c := range keyCols {
				t, isKey := cellKey(&b.Columns[c], row)
				if !isKey {
					ok = false
					break
				}
				keyVals[i] = t
			}
			if !ok {
				continue
			}
			key := EntityKey(keyVals)
			old := latest[key]
			if old != nil && (ev < old.ev || ev == old.ev && cr < old.cr) {
				continue
			}
			for i, c := range featCols {
				vals[i] = cellValue(&b.Columns[c], row, v.Spec.Features[i].Type)
			}
			var buf []byte
			if old != nil {
				buf = old.value[:0]
			}
			enc, err := appendValues(buf, v, vals)
			if err != nil {
				return err
			}
			if old == nil {
				latest[key] = &best{ev: ev, cr: cr, value: enc}
			} else {
				old.ev, old.cr, old.value = ev, cr, enc
			}
		}
		if time.Since(lastProgress) > progressEvery {
			lastProgress = time.Now()
			if _, err := s.DB.W.ExecContext(ctx, s.DB.Rebind(`UPDATE feature_materializations SET rows_read = ? WHERE id = ?`), m.RowsRead, m.ID); err != nil {
				s.log().Warn("feature: record materialization progress", "err", err)
			}
		}
	}
	names := make([]string, 0, len(latest))
	for k := range latest {
		names = append(names, k)
	}
	slices.Sort(names)
	recs := make([]online.Record, 0, min(putBatch, len(names)))
	for i, k := range names {
		bst := latest[k]
		recs = append(recs, online.Record{Key: k, EventTime: bst.ev, CreatedTime: bst.cr, Value: bst.value})
		if len(recs) == putBatch || i == len(names)-1 {
			if err := s.OnlineStore.Put(ctx, v.Metadata.Name, recs); err != nil {
				return fmt.Errorf("feature: write to the %s online store: %w", s.OnlineStore.Name(), err)
			}
			m.KeysWritten += int64(len(recs))
			recs = recs[:0]
		}
	}
	return nil
}

// timeMicros returns a Timestamp or Date cell in Unix microseconds.
func timeMicros(c *table.Column, row int, f *table.Field) int64 {
	x := c.Ints[row]
	if c.Type == table.Date {
		return x * 86400 * 1e6
	}
	switch f.Unit {
	case table.Millisecond:
		return x * 1e3
	case table.Microsecond:
		return x
	case table.Nanosecond, "":
		return floorDiv(x, 1e3)
	}
	per := f.Unit.PerSecond()
	return floorDiv(x*1e6, per)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// cellKey returns the key text of a join-key cell (false for a null).
func cellKey(c *table.Column, row int) (string, bool) {
	if c.Null(row) {
		return "", false
	}
	switch c.Type {
	case table.Int64:
		return strconv.FormatInt(c.Ints[row], 10), true
	case table.String:
		return c.Str(row), true
	case table.Bool:
		return strconv.FormatBool(c.Bools[row]), true
	}
	return "", false
}

// cellValue returns a feature cell as the feature type's Go value (nil
// for a null); CheckSchema has checked the types convert.
func cellValue(c *table.Column, row int, typ string) any {
	if c.Null(row) {
		return nil
	}
	switch c.Type {
	case table.Int64:
		if typ == TypeFloat64 {
			return float64(c.Ints[row])
		}
		return c.Ints[row]
	case table.Float64:
		return c.Floats[row]
	case table.String:
		return c.Str(row)
	case table.Bool:
		return c.Bools[row]
	}
	return nil
}

// Materializations returns the materializations of view, newest first
// (at most limit; 0: 100).
func (s *Service) Materializations(ctx context.Context, view string, limit int) ([]*Materialization, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.DB.R.QueryContext(ctx, s.DB.Rebind(`SELECT id, view, view_version, store, start_time, end_time, state, source,
		rows_read, keys_written, error, started_at, finished_at FROM feature_materializations WHERE view = ? ORDER BY id DESC LIMIT ?`), view, limit)
	if err != nil {
		return nil, fmt.Errorf("feature: materializations of %s: %w", view, err)
	}
	defer rows.Close()
	out := []*Materialization{}
	for rows.Next() {
		var m Materialization
		var start, end, started, finished int64
		if err := rows.Scan(&m.ID, &m.View, &m.ViewVersion, &m.Store, &start, &end, &m.State, &m.Source,
			&m.RowsRead, &m.KeysWritten, &m.Error, &started, &finished); err != nil {
			return nil, fmt.Errorf("feature: materializations of %s: %w", view, err)
		}
		if start != fromStart {
			t := fromMicros(start)
			m.Start = &t
		}
		m.End, m.StartedAt = fromMicros(end), fromMicros(started)
		if finished != 0 {
			t := fromMicros(finished)
			m.FinishedAt = &t
		}
		out = append(out, &m)
	}
	return out, rows.Err()
}
