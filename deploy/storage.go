package deploy

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// The queries on the endpoints and endpoint_events tables (migration 5).

// errConflict is a write that lost a race with another writer (another
// replica, or a concurrent call): the stored revision moved.
var errConflict = errdefs.InvalidState("the endpoint changed concurrently; retry")

// row is one stored endpoint.
type row struct {
	doc    Endpoint
	status Status
}

// eventRec is an event to append with a write.
type eventRec struct {
	action string
	actor  string
	reason string
	detail any
}

func now() int64 { return time.Now().UnixMilli() }

func marshalDetail(d any) (string, error) {
	if d == nil {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (m *Manager) appendEvents(ctx context.Context, tx store.Tx, name string, t int64, evs []eventRec) error {
	for _, ev := range evs {
		d, err := marshalDetail(ev.detail)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.db.Rebind(`INSERT INTO endpoint_events (endpoint, time, actor, action, reason, detail) VALUES (?, ?, ?, ?, ?, ?)`),
			name, t, ev.actor, ev.action, ev.reason, d); err != nil {
			return fmt.Errorf("record endpoint event: %w", err)
		}
	}
	return nil
}

// insertRow stores a new endpoint with its events; st.Revision is 1.
func (m *Manager) insertRow(ctx context.Context, r *row, evs []eventRec) error {
	spec, err := json.Marshal(&r.doc)
	if err != nil {
		return err
	}
	status, err := json.Marshal(&r.status)
	if err != nil {
		return err
	}
	return m.db.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, m.db.Rebind(`INSERT INTO endpoints (name, spec, status, revision, creation_time, last_update_time, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), r.doc.Metadata.Name, string(spec), string(status), r.status.Revision,
			r.status.CreatedAt, r.status.UpdatedAt, r.status.UpdatedBy)
		if store.IsUniqueViolation(err) {
			return errConflict
		}
		if err != nil {
			return fmt.Errorf("store endpoint: %w", err)
		}
		return m.appendEvents(ctx, tx, r.doc.Metadata.Name, r.status.UpdatedAt, evs)
	})
}

// updateRow stores a changed endpoint if its stored revision is still
// prev, with its events.
func (m *Manager) updateRow(ctx context.Context, r *row, prev int64, evs []eventRec) error {
	spec, err := json.Marshal(&r.doc)
	if err != nil {
		return err
	}
	status, err := json.Marshal(&r.status)
	if err != nil {
		return err
	}
	return m.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, m.db.Rebind(`UPDATE endpoints SET spec = ?, status = ?, revision = ?, last_update_time = ?, updated_by = ?
			WHERE name = ? AND revision = ?`), string(spec), string(status), r.status.Revision, r.status.UpdatedAt, r.status.UpdatedBy,
			r.doc.Metadata.Name, prev)
		if err != nil {
			return fmt.Errorf("store endpoint: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errConflict
		}
		return m.appendEvents(ctx, tx, r.doc.Metadata.Name, r.status.UpdatedAt, evs)
	})
}

// deleteRow removes an endpoint (its events stay) if its stored revision
// is still prev.
func (m *Manager) deleteRow(ctx context.Context, name string, prev int64, ev eventRec) error {
	return m.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, m.db.Rebind(`DELETE FROM endpoints WHERE name = ? AND revision = ?`), name, prev)
		if err != nil {
			return fmt.Errorf("delete endpoint: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errConflict
		}
		return m.appendEvents(ctx, tx, name, now(), []eventRec{ev})
	})
}

func scanRow(sc interface{ Scan(...any) error }) (*row, error) {
	var spec, status string
	var rev int64
	if err := sc.Scan(&spec, &status, &rev); err != nil {
		return nil, err
	}
	r := &row{}
	if err := json.Unmarshal([]byte(spec), &r.doc); err != nil {
		return nil, fmt.Errorf("stored endpoint spec: %w", err)
	}
	if err := json.Unmarshal([]byte(status), &r.status); err != nil {
		return nil, fmt.Errorf("stored endpoint status: %w", err)
	}
	r.status.Revision = rev
	return r, nil
}

// loadRow reads one endpoint.
func (m *Manager) loadRow(ctx context.Context, name string) (*row, error) {
	r, err := scanRow(m.db.R.QueryRowContext(ctx, m.db.Rebind(`SELECT spec, status, revision FROM endpoints WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(name)
	}
	return r, err
}

// revisions reads every endpoint's name and revision (the controller's
// cheap check for changes made by other replicas).
func (m *Manager) revisions(ctx context.Context) (map[string]int64, error) {
	rows, err := m.db.R.QueryContext(ctx, `SELECT name, revision FROM endpoints`)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var rev int64
		if err := rows.Scan(&n, &rev); err != nil {
			return nil, err
		}
		out[n] = rev
	}
	return out, rows.Err()
}

// events reads an endpoint's events, newest first.
func (m *Manager) events(ctx context.Context, name string, limit int) ([]Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	rows, err := m.db.R.QueryContext(ctx, m.db.Rebind(`SELECT event_id, time, actor, action, reason, detail FROM endpoint_events
		WHERE endpoint = ? ORDER BY event_id DESC LIMIT ?`), name, limit)
	if err != nil {
		return nil, fmt.Errorf("read endpoint events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		e := Event{Endpoint: name}
		var detail string
		if err := rows.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Reason, &detail); err != nil {
			return nil, err
		}
		if detail != "" && detail != "{}" {
			e.Detail = json.RawMessage(detail)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// leaseTTL is how long a replica holds an endpoint's lease without
// renewing it.
func (m *Manager) leaseTTL() time.Duration { return max(10*m.tick, 10*time.Second) }

// lease takes or renews the lease on an endpoint's row, so that one
// replica drives its rollout. On SQLite the single process holds every
// lease. On PostgreSQL the row is locked with FOR UPDATE SKIP LOCKED (a
// replica busy with it makes the others skip it) and taken when free,
// expired or already ours.
func (m *Manager) lease(ctx context.Context, name string) (bool, error) {
	if m.db.Dialect != store.Postgres {
		return true, nil
	}
	got := false
	err := m.db.Tx(ctx, func(tx store.Tx) error {
		var owner string
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT lease_owner, lease_expires FROM endpoints WHERE name = $1 FOR UPDATE SKIP LOCKED`, name).Scan(&owner, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // locked by another replica right now, or gone
		}
		if err != nil {
			return err
		}
		t := now()
		if owner != m.id && expires > t {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET lease_owner = $1, lease_expires = $2 WHERE name = $3`,
			m.id, t+m.leaseTTL().Milliseconds(), name); err != nil {
			return err
		}
		got = true
		return nil
	})
	return got, err
}

// unlease gives up this replica's leases (on shutdown).
func (m *Manager) unlease(ctx context.Context) {
	if m.db.Dialect != store.Postgres {
		return
	}
	m.db.W.ExecContext(ctx, `UPDATE endpoints SET lease_owner = '', lease_expires = 0 WHERE lease_owner = $1`, m.id)
}

func notFound(name string) error {
	return errdefs.NotFound("endpoint %q not found", name)
}
