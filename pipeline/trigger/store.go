package trigger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/store"
)

// row is one row of pipeline_trigger_state.
type row struct {
	Pipeline, Type, Name, Config  string
	FirstSeen, NextFire, LastFire int64
	LastRunID, Cursor, Error      string
	LeaseOwner                    string
	LeaseExpires                  int64
}

// update is what an evaluation writes back: the row's new values.
type update struct {
	NextFire, LastFire int64
	LastRunID, Cursor  string
	Error              string
}

func (r *row) update() update {
	return update{NextFire: r.NextFire, LastFire: r.LastFire, LastRunID: r.LastRunID, Cursor: r.Cursor, Error: r.Error}
}

const rowCols = `pipeline, type, name, config, first_seen, next_fire, last_fire, last_run_id, cursor_pos, error, lease_owner, lease_expires`

type scanner interface{ Scan(...any) error }

func scanRow(sc scanner) (*row, error) {
	r := &row{}
	err := sc.Scan(&r.Pipeline, &r.Type, &r.Name, &r.Config, &r.FirstSeen, &r.NextFire, &r.LastFire, &r.LastRunID,
		&r.Cursor, &r.Error, &r.LeaseOwner, &r.LeaseExpires)
	return r, err
}

// rows returns the state rows of a pipeline ("" = of every pipeline).
func (s *Service) rows(ctx context.Context, pipelineName string) ([]*row, error) {
	q := `SELECT ` + rowCols + ` FROM pipeline_trigger_state`
	var args []any
	if pipelineName != "" {
		q += ` WHERE pipeline = ?`
		args = append(args, pipelineName)
	}
	rs, err := s.db.R.QueryContext(ctx, s.db.Rebind(q+` ORDER BY pipeline, type, name`), args...)
	if err != nil {
		return nil, fmt.Errorf("trigger: list states: %w", err)
	}
	defer rs.Close()
	var out []*row
	for rs.Next() {
		r, err := scanRow(rs)
		if err != nil {
			return nil, fmt.Errorf("trigger: list states: %w", err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

type rowKey struct{ Pipeline, Type, Name string }

// wanted is what the specs say a row should be.
type wanted struct {
	config    string
	schedule  *pipeline.Schedule
	trigger   *pipeline.Trigger
	suspended bool
}

// reconcile makes the state table match the pipelines' schedules and
// triggers: new ones get a row (a schedule its next tick, a dataset or
// model trigger the newest version as its cursor: history never fires),
// changed ones are reset, suspended schedules get no next tick, and rows
// of schedules and triggers that are gone are deleted. Every server does
// this each poll; each write is conditional on what it read, so that
// concurrent reconciles agree.
func (s *Service) reconcile(ctx context.Context, pipes []*pipeline.StoredPipeline, listed time.Time) error {
	rows, err := s.rows(ctx, "")
	if err != nil {
		return err
	}
	want := map[rowKey]wanted{}
	for _, p := range pipes {
		for i := range p.Spec.Schedules {
			sc := &p.Spec.Schedules[i]
			want[rowKey{p.Metadata.Name, TypeSchedule, sc.Name}] = wanted{config: scheduleConfig(sc), schedule: sc, suspended: sc.Suspend}
		}
		for i := range p.Spec.Triggers {
			t := &p.Spec.Triggers[i]
			if typ := triggerType(t); typ != "" {
				want[rowKey{p.Metadata.Name, typ, t.Name}] = wanted{config: triggerConfig(t), trigger: t}
			}
		}
	}
	have := map[rowKey]*row{}
	for _, r := range rows {
		have[rowKey{r.Pipeline, r.Type, r.Name}] = r
	}
	now := s.now()
	var errs []error
	for k, w := range want {
		r := have[k]
		switch {
		case r == nil:
			next, cursor, msg, err := s.initial(ctx, k.Type, w, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipeline_trigger_state
				(pipeline, type, name, config, first_seen, next_fire, cursor_pos, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT DO NOTHING`), k.Pipeline, k.Type, k.Name, w.config, now.UnixMilli(), next, cursor, msg)
			if err != nil {
				errs = append(errs, fmt.Errorf("trigger: add state: %w", err))
			}
		case r.Config != w.config:
			next, cursor, msg, err := s.initial(ctx, k.Type, w, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_trigger_state SET config = ?, next_fire = ?, cursor_pos = ?, error = ?
				WHERE pipeline = ? AND type = ? AND name = ? AND config = ?`),
				w.config, next, cursor, msg, k.Pipeline, k.Type, k.Name, r.Config)
			if err != nil {
				errs = append(errs, fmt.Errorf("trigger: reset state: %w", err))
			}
		case k.Type == TypeSchedule && w.suspended && r.NextFire != 0:
			if err := s.setNext(ctx, r, 0); err != nil {
				errs = append(errs, err)
			}
		case k.Type == TypeSchedule && !w.suspended && r.NextFire == 0:
			// Resumed: the ticks while suspended are not run.
			next, err := nextTick(w.schedule, now)
			if err == nil && next != 0 {
				if err := s.setNext(ctx, r, next); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for k, r := range have {
		if _, ok := want[k]; ok || r.FirstSeen >= listed.UnixMilli() {
			// A row newer than our listing may belong to a pipeline
			// we did not see yet.
			continue
		}
		_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM pipeline_trigger_state
			WHERE pipeline = ? AND type = ? AND name = ? AND first_seen = ?`), k.Pipeline, k.Type, k.Name, r.FirstSeen)
		if err != nil {
			errs = append(errs, fmt.Errorf("trigger: delete state: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) setNext(ctx context.Context, r *row, next int64) error {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_trigger_state SET next_fire = ?
		WHERE pipeline = ? AND type = ? AND name = ? AND config = ? AND next_fire = ?`),
		next, r.Pipeline, r.Type, r.Name, r.Config, r.NextFire)
	if err != nil {
		return fmt.Errorf("trigger: set next tick: %w", err)
	}
	return nil
}

// initial returns a new row's next_fire, cursor and error message.
func (s *Service) initial(ctx context.Context, typ string, w wanted, now time.Time) (int64, string, string, error) {
	switch typ {
	case TypeSchedule:
		if w.suspended {
			return 0, "", "", nil
		}
		next, err := nextTick(w.schedule, now)
		if err != nil {
			return 0, "", err.Error(), nil
		}
		return next, "", "", nil
	case TypeDataset, TypeModel:
		latest, err := s.latestVersion(ctx, typ, w.config)
		if err != nil {
			return 0, "", "", err
		}
		return now.Add(s.poll).UnixMilli(), strconv.FormatInt(latest, 10), "", nil
	}
	return 0, "", "", nil
}

// claim leases a due row (a schedule whose tick has come, a dataset or
// model trigger due for a poll) whose lease is free or lapsed, for this
// server until now+LeaseTTL; nil when none is due. On PostgreSQL the
// candidate is locked with FOR UPDATE SKIP LOCKED so that servers never
// claim the same row.
func (s *Service) claim(ctx context.Context, now time.Time) (*row, error) {
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	t := now.UnixMilli()
	q := s.db.Rebind(`UPDATE pipeline_trigger_state SET lease_owner = ?, lease_expires = ?
		WHERE (pipeline, type, name) = (SELECT pipeline, type, name FROM pipeline_trigger_state
			WHERE type IN ('schedule', 'dataset', 'model') AND next_fire > 0 AND next_fire <= ? AND lease_expires <= ?
			ORDER BY next_fire, pipeline, type, name LIMIT 1` + lock + `)
		AND lease_expires <= ?
		RETURNING ` + rowCols)
	r, err := scanRow(s.db.W.QueryRowContext(ctx, q, s.owner, t+s.ttl.Milliseconds(), t, t, t))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trigger: claim: %w", err)
	}
	return r, nil
}

// progress writes an evaluation's state so far and renews the lease; it
// reports false when the lease was lost (another server took the row
// over, or the spec changed).
func (s *Service) progress(ctx context.Context, r *row, u update) (bool, error) {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_trigger_state
		SET next_fire = ?, last_fire = ?, last_run_id = ?, cursor_pos = ?, error = ?, lease_expires = ?
		WHERE pipeline = ? AND type = ? AND name = ? AND lease_owner = ? AND config = ?`),
		u.NextFire, u.LastFire, u.LastRunID, u.Cursor, u.Error, s.now().Add(s.ttl).UnixMilli(),
		r.Pipeline, r.Type, r.Name, s.owner, r.Config)
	if err != nil {
		return false, fmt.Errorf("trigger: save progress: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// release writes an evaluation's outcome and ends this server's lease. A
// row still due (a tick waiting for an active run, or to be retried) is
// not claimable again before the next poll.
func (s *Service) release(ctx context.Context, r *row, u update) error {
	until := int64(0)
	if now := s.now(); u.NextFire > 0 && u.NextFire <= now.UnixMilli() {
		until = now.Add(s.poll).UnixMilli()
	}
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_trigger_state
		SET next_fire = ?, last_fire = ?, last_run_id = ?, cursor_pos = ?, error = ?, lease_owner = '', lease_expires = ?
		WHERE pipeline = ? AND type = ? AND name = ? AND lease_owner = ? AND config = ?`),
		u.NextFire, u.LastFire, u.LastRunID, u.Cursor, u.Error, until, r.Pipeline, r.Type, r.Name, s.owner, r.Config)
	if err != nil {
		return fmt.Errorf("trigger: release: %w", err)
	}
	// If the spec changed meanwhile, the write above did nothing; free the
	// lease anyway.
	return s.unlease(ctx, r, until)
}

// skipRow releases a row without evaluating it, leased until the next
// poll so that this round does not claim it again.
func (s *Service) skipRow(ctx context.Context, r *row) {
	if err := s.unlease(ctx, r, s.now().Add(s.poll).UnixMilli()); err != nil {
		s.log.Warn("releasing a schedule or trigger failed", "pipeline", r.Pipeline, "name", r.Name, "err", err)
	}
}

func (s *Service) unlease(ctx context.Context, r *row, until int64) error {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_trigger_state SET lease_owner = '', lease_expires = ?
		WHERE pipeline = ? AND type = ? AND name = ? AND lease_owner = ?`), until, r.Pipeline, r.Type, r.Name, s.owner)
	if err != nil {
		return fmt.Errorf("trigger: release: %w", err)
	}
	return nil
}

// unleaseAll gives up every lease of this server (on shutdown).
func (s *Service) unleaseAll(ctx context.Context) {
	if _, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_trigger_state SET lease_owner = '', lease_expires = 0
		WHERE lease_owner = ?`), s.owner); err != nil {
		s.log.Warn("releasing leases failed", "err", err)
	}
}

// recordFire notes an alert's or webhook's fire on its trigger's row
// (creating the row if no reconcile has yet).
func (s *Service) recordFire(ctx context.Context, pipelineName, typ, name string, at int64, runID, msg string) {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipeline_trigger_state
		(pipeline, type, name, first_seen, last_fire, last_run_id, error) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (pipeline, type, name) DO UPDATE SET last_fire = excluded.last_fire,
			last_run_id = CASE WHEN excluded.last_run_id = '' THEN pipeline_trigger_state.last_run_id ELSE excluded.last_run_id END,
			error = excluded.error`),
		pipelineName, typ, name, at, at, runID, msg)
	if err != nil {
		s.log.Warn("recording a trigger's fire failed", "pipeline", pipelineName, "trigger", name, "err", err)
	}
}
