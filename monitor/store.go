package monitor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Store keeps monitors and their results in the metadata database (the
// monitors and monitor_results tables of migration 8).
type Store struct {
	db *store.DB
}

// NewStore returns a Store on db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// StoredMonitor is a monitor as stored.
type StoredMonitor struct {
	Monitor *Monitor `json:"monitor"`
	// Generation counts the changes of the spec, from 1.
	Generation     int64  `json:"generation"`
	UpdatedBy      string `json:"updated_by,omitempty"`
	CreationTime   int64  `json:"creation_time"`
	LastUpdateTime int64  `json:"last_update_time"`
	// NextRun is when the scheduler evaluates the monitor next (ms).
	NextRun int64 `json:"next_run"`
}

func monitorNotFound(name string) error {
	return errdefs.NotFound("Monitor '%s' does not exist", clip(name))
}

// Put creates or replaces the monitor named m.Metadata.Name (valid). It
// reports whether it was created and whether the stored document changed
// (putting the same document again changes nothing). A new monitor is due
// at once; a changed one keeps its schedule.
func (s *Store) Put(ctx context.Context, m *Monitor, actor string, now time.Time) (sm *StoredMonitor, created, changed bool, err error) {
	if err := m.Validate(); err != nil {
		return nil, false, false, err
	}
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, false, false, fmt.Errorf("encode monitor: %w", err)
	}
	t := now.UnixMilli()
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		var old string
		var gen int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT spec, generation FROM monitors WHERE name = ?`), m.Metadata.Name).Scan(&old, &gen)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created, changed = true, true
			_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO monitors (name, endpoint, spec, generation, updated_by, creation_time, last_update_time, next_run)
				VALUES (?, ?, ?, 1, ?, ?, ?, ?)`), m.Metadata.Name, m.Spec.Endpoint, string(doc), actor, t, t, t)
			if store.IsUniqueViolation(err) {
				return errdefs.InvalidState("Monitor '%s' was created concurrently; retry", m.Metadata.Name)
			}
			return err
		case err != nil:
			return err
		case old == string(doc):
			return nil
		}
		changed = true
		var prev Monitor
		if json.Unmarshal([]byte(old), &prev) != nil || prev.Digest() != m.Digest() {
			gen++
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE monitors SET endpoint = ?, spec = ?, generation = ?, updated_by = ?, last_update_time = ? WHERE name = ?`),
			m.Spec.Endpoint, string(doc), gen, actor, t, m.Metadata.Name)
		return err
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("put monitor: %w", err)
	}
	sm, err = s.Get(ctx, m.Metadata.Name)
	return sm, created, changed, err
}

const monitorCols = `spec, generation, updated_by, creation_time, last_update_time, next_run`

func scanMonitor(row interface{ Scan(...any) error }) (*StoredMonitor, error) {
	var sm StoredMonitor
	var doc string
	if err := row.Scan(&doc, &sm.Generation, &sm.UpdatedBy, &sm.CreationTime, &sm.LastUpdateTime, &sm.NextRun); err != nil {
		return nil, err
	}
	var m Monitor
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		return nil, fmt.Errorf("stored monitor: %w", err)
	}
	sm.Monitor = &m
	return &sm, nil
}

// Get returns the monitor named name.
func (s *Store) Get(ctx context.Context, name string) (*StoredMonitor, error) {
	sm, err := scanMonitor(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+monitorCols+` FROM monitors WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, monitorNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("get monitor: %w", err)
	}
	return sm, nil
}

// List returns the monitors by name; with endpoint set, only that
// endpoint's.
func (s *Store) List(ctx context.Context, endpoint string) ([]*StoredMonitor, error) {
	q, args := `SELECT `+monitorCols+` FROM monitors ORDER BY name`, []any{}
	if endpoint != "" {
		q, args = `SELECT `+monitorCols+` FROM monitors WHERE endpoint = ? ORDER BY name`, []any{endpoint}
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list monitors: %w", err)
	}
	defer rows.Close()
	out := []*StoredMonitor{}
	for rows.Next() {
		sm, err := scanMonitor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	return out, rows.Err()
}

// Delete removes a monitor and its results (a monitor created again
// under the same name starts a new series). Its alert history stays.
func (s *Store) Delete(ctx context.Context, name string) error {
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM monitors WHERE name = ?`), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return monitorNotFound(name)
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM monitor_results WHERE monitor = ?`), name)
		return err
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("delete monitor: %w", err)
	}
	return err
}

// AddResult stores a result under a new id (set on r).
func (s *Store) AddResult(ctx context.Context, r *Result) error {
	r.ID = store.NewID()
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode monitor result: %w", err)
	}
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO monitor_results (result_id, monitor, evaluated_time, window_start, window_end, status, result)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), r.ID, r.Monitor, r.Time.UnixMilli(), r.WindowStart.UnixMilli(), r.WindowEnd.UnixMilli(), r.Status, string(doc))
	if err != nil {
		return fmt.Errorf("store monitor result: %w", err)
	}
	return nil
}

// MaxResults bounds the results one query returns.
const MaxResults = 10000

// Results returns a monitor's results evaluated in [from, to) (zero
// times are unbounded), oldest first: the newest limit of them
// (MaxResults when 0).
func (s *Store) Results(ctx context.Context, name string, from, to time.Time, limit int) ([]*Result, error) {
	if limit <= 0 || limit > MaxResults {
		limit = MaxResults
	}
	q := `SELECT result FROM monitor_results WHERE monitor = ?`
	args := []any{name}
	if !from.IsZero() {
		q += ` AND evaluated_time >= ?`
		args = append(args, from.UnixMilli())
	}
	if !to.IsZero() {
		q += ` AND evaluated_time < ?`
		args = append(args, to.UnixMilli())
	}
	q += ` ORDER BY evaluated_time DESC, result_id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("monitor results: %w", err)
	}
	defer rows.Close()
	out := []*Result{}
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("stored monitor result: %w", err)
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Latest returns a monitor's newest result, or nil when it has none.
func (s *Store) Latest(ctx context.Context, name string) (*Result, error) {
	rs, err := s.Results(ctx, name, time.Time{}, time.Time{}, 1)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return rs[0], nil
}

// claim leases a due monitor (next_run ≤ now, not leased by another
// replica or its lease expired) for owner until now+ttl, and returns it;
// nil when none is due. On PostgreSQL the candidate row is locked with
// FOR UPDATE SKIP LOCKED, so that replicas never claim the same one.
func (s *Store) claim(ctx context.Context, owner string, now time.Time, ttl time.Duration) (*StoredMonitor, error) {
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	t := now.UnixMilli()
	q := s.db.Rebind(`UPDATE monitors SET lease_owner = ?, lease_expires = ?
		WHERE name = (SELECT name FROM monitors WHERE next_run <= ? AND (lease_owner = '' OR lease_expires < ?)
			ORDER BY next_run, name LIMIT 1` + lock + `)
		RETURNING ` + monitorCols)
	sm, err := scanMonitor(s.db.W.QueryRowContext(ctx, q, owner, t+ttl.Milliseconds(), t, t))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim monitor: %w", err)
	}
	return sm, nil
}

// release ends owner's lease of a monitor and sets its next run.
func (s *Store) release(ctx context.Context, name, owner string, next time.Time) error {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE monitors SET next_run = ?, lease_owner = '', lease_expires = 0 WHERE name = ? AND lease_owner = ?`),
		next.UnixMilli(), name, owner)
	if err != nil {
		return fmt.Errorf("release monitor: %w", err)
	}
	return nil
}

// unlease gives up every lease of owner (on shutdown).
func (s *Store) unlease(ctx context.Context, owner string) {
	s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE monitors SET lease_owner = '', lease_expires = 0 WHERE lease_owner = ?`), owner)
}
