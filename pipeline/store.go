package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// The queries on migration 9's pipeline tables.

func pipelineNotFound(name string) error {
	return errdefs.NotFound("Pipeline '%s' does not exist", clipText(name))
}

func runNotFound(id string) error {
	return errdefs.NotFound("Pipeline run '%s' does not exist", clipText(id))
}

const pipelineCols = `spec, generation, updated_by, creation_time, last_update_time`

func scanPipeline(row interface{ Scan(...any) error }) (*StoredPipeline, error) {
	var sp StoredPipeline
	var doc string
	if err := row.Scan(&doc, &sp.Generation, &sp.UpdatedBy, &sp.CreationTime, &sp.LastUpdateTime); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &sp.Pipeline); err != nil {
		return nil, fmt.Errorf("stored pipeline: %w", err)
	}
	return &sp, nil
}

func (s *Service) getPipeline(ctx context.Context, q querier, name string) (*StoredPipeline, error) {
	sp, err := scanPipeline(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+pipelineCols+` FROM pipelines WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, pipelineNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("get pipeline: %w", err)
	}
	return sp, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

const runCols = `run_id, pipeline, generation, state, spec, parameters, resolved, no_cache, cause, created_by, resumed_from,
	tracking_run_id, experiment_id, error, creation_time, start_time, end_time`

// runRow is a pipeline_runs row.
type runRow struct {
	Run
	specJSON string
	resolved map[string]string
}

func scanRun(row interface{ Scan(...any) error }) (*runRow, error) {
	var r runRow
	var params, resolved, cause string
	if err := row.Scan(&r.ID, &r.Pipeline, &r.Generation, &r.State, &r.specJSON, &params, &resolved, &r.NoCache, &cause,
		&r.CreatedBy, &r.ResumedFrom, &r.TrackingRunID, &r.ExperimentID, &r.Error, &r.CreationTime, &r.StartTime, &r.EndTime); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(params), &r.Parameters); err != nil {
		return nil, fmt.Errorf("pipeline run %s: parameters: %w", r.ID, err)
	}
	if r.Parameters == nil {
		r.Parameters = map[string]string{}
	}
	if err := json.Unmarshal([]byte(resolved), &r.resolved); err != nil {
		return nil, fmt.Errorf("pipeline run %s: resolved inputs: %w", r.ID, err)
	}
	if cause != "" {
		r.Cause = new(Cause)
		if err := json.Unmarshal([]byte(cause), r.Cause); err != nil {
			return nil, fmt.Errorf("pipeline run %s: cause: %w", r.ID, err)
		}
	}
	return &r, nil
}

func (s *Service) getRun(ctx context.Context, q querier, id string) (*runRow, error) {
	r, err := scanRun(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+runCols+` FROM pipeline_runs WHERE run_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, runNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get pipeline run: %w", err)
	}
	return r, nil
}

const stepCols = `step_id, run_id, step, position, state, attempt, failures, takeovers, cache_key, cached_from, tracking_run_id,
	outputs, exit_code, error, executor, handle, lease_owner, lease_expires, lease_gen, ready_time, start_time, end_time, next_attempt_time`

// stepRow is a pipeline_steps row.
type stepRow struct {
	StepRun
	id           int64
	runID        string
	position     int
	failures     int
	takeovers    int
	leaseExpires int64
	leaseGen     int64
	readyTime    int64
}

func scanStep(row interface{ Scan(...any) error }) (*stepRow, error) {
	var st stepRow
	var outputs string
	if err := row.Scan(&st.id, &st.runID, &st.Step, &st.position, &st.State, &st.Attempt, &st.failures, &st.takeovers,
		&st.CacheKey, &st.CachedFrom, &st.TrackingRunID, &outputs, &st.ExitCode, &st.Error, &st.Executor, &st.Handle,
		&st.Owner, &st.leaseExpires, &st.leaseGen, &st.readyTime, &st.StartTime, &st.EndTime, &st.NextAttemptTime); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(outputs), &st.Outputs); err != nil {
		return nil, fmt.Errorf("pipeline step %s: outputs: %w", st.Step, err)
	}
	return &st, nil
}

func (s *Service) listSteps(ctx context.Context, q querier, runID string) ([]*stepRow, error) {
	rows, err := q.QueryContext(ctx, s.db.Rebind(`SELECT `+stepCols+` FROM pipeline_steps WHERE run_id = ? ORDER BY position`), runID)
	if err != nil {
		return nil, fmt.Errorf("list pipeline steps: %w", err)
	}
	defer rows.Close()
	var out []*stepRow
	for rows.Next() {
		st, err := scanStep(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// stepStates reads the state and outputs of a run's steps (all of them
// when names is nil).
func (s *Service) stepStates(ctx context.Context, q querier, runID string, names []string) (map[string]StepScope, error) {
	query, args := `SELECT step, state, outputs FROM pipeline_steps WHERE run_id = ?`, []any{runID}
	if names != nil {
		if len(names) == 0 {
			return map[string]StepScope{}, nil
		}
		query += ` AND step IN (` + placeholders(len(names)) + `)`
		for _, n := range names {
			args = append(args, n)
		}
	}
	rows, err := q.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read pipeline steps: %w", err)
	}
	defer rows.Close()
	out := map[string]StepScope{}
	for rows.Next() {
		var name, state, outputs string
		if err := rows.Scan(&name, &state, &outputs); err != nil {
			return nil, err
		}
		sc := StepScope{State: state}
		if err := json.Unmarshal([]byte(outputs), &sc.Outputs); err != nil {
			return nil, fmt.Errorf("pipeline step %s: outputs: %w", name, err)
		}
		out[name] = sc
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and plain structs always encode
	}
	return string(b)
}

// lockRun serializes the advancement of one run across servers: on
// PostgreSQL it locks the run's row until tx ends (SQLite's single writer
// already serializes every write transaction). It returns the run's state.
func (s *Service) lockRun(ctx context.Context, tx store.Tx, runID string) (string, error) {
	q := `SELECT state FROM pipeline_runs WHERE run_id = ?`
	if s.db.Dialect == store.Postgres {
		q += ` FOR UPDATE`
	}
	var state string
	err := tx.QueryRowContext(ctx, s.db.Rebind(q), runID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", runNotFound(runID)
	}
	return state, err
}

// claimQueued leases the oldest ready step (queued, its backoff passed,
// its run under its parallelism) for this server and marks it running.
// The state is checked again in the outer WHERE so that a row another
// server claimed between the subquery's snapshot and the update is not
// claimed twice; its start time is never before it became ready.
func (s *Service) claimQueued(ctx context.Context, now int64) (*stepRow, error) {
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := s.db.Rebind(`UPDATE pipeline_steps SET state = 'running', attempt = attempt + 1, claim_state = state,
		lease_owner = ?, lease_expires = ?, lease_gen = lease_gen + 1,
		start_time = CASE WHEN ready_time > ? THEN ready_time ELSE ? END, end_time = 0, error = '', exit_code = 0, handle = ''
		WHERE step_id = (SELECT q.step_id FROM pipeline_steps q WHERE q.state = 'queued' AND q.next_attempt_time <= ?
			AND (q.parallelism = 0 OR (SELECT COUNT(*) FROM pipeline_steps r WHERE r.run_id = q.run_id AND r.state = 'running') < q.parallelism)
			ORDER BY q.next_attempt_time, q.step_id LIMIT 1` + lock + `)
		AND state = 'queued'
		RETURNING ` + stepCols)
	st, err := scanStep(s.db.W.QueryRowContext(ctx, q, s.owner, now+s.ttl.Milliseconds(), now, now, now))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim pipeline step: %w", err)
	}
	return st, nil
}

// claimLapsed takes over a running step whose server stopped renewing
// its lease; the attempt number is kept (the caller re-attaches or
// starts the next attempt).
func (s *Service) claimLapsed(ctx context.Context, now int64) (*stepRow, error) {
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := s.db.Rebind(`UPDATE pipeline_steps SET takeovers = takeovers + 1, claim_state = state,
		lease_owner = ?, lease_expires = ?, lease_gen = lease_gen + 1
		WHERE step_id = (SELECT step_id FROM pipeline_steps WHERE state = 'running' AND lease_expires < ?
			ORDER BY lease_expires, step_id LIMIT 1` + lock + `)
		AND state = 'running' AND lease_expires < ?
		RETURNING ` + stepCols)
	st, err := scanStep(s.db.W.QueryRowContext(ctx, q, s.owner, now+s.ttl.Milliseconds(), now, now))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take over pipeline step: %w", err)
	}
	return st, nil
}

// leased runs an update of a step this server holds: it applies only
// under the lease generation it claimed, and reports whether it did.
func (s *Service) leased(ctx context.Context, e interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}, st *stepRow, set string, args ...any) (bool, error) {
	args = append(args, st.id, st.leaseGen)
	res, err := e.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_steps SET `+set+` WHERE step_id = ? AND lease_gen = ? AND state = 'running'`), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// appendLog stores one chunk of an attempt's log.
func (s *Service) appendLog(ctx context.Context, runID, step string, attempt int, seq, t int64, data []byte) error {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipeline_logs (run_id, step, attempt, seq, time, data) VALUES (?, ?, ?, ?, ?, ?)`),
		runID, step, attempt, seq, t, data)
	return err
}

// lastLog returns the last stored chunk's sequence number and time (Unix
// ms) of an attempt's log, 0 and 0 when none is stored.
func (s *Service) lastLog(ctx context.Context, runID, step string, attempt int) (seq, at int64, err error) {
	var q, t sql.NullInt64
	err = s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT MAX(seq), MAX(time) FROM pipeline_logs WHERE run_id = ? AND step = ? AND attempt = ?`),
		runID, step, attempt).Scan(&q, &t)
	return q.Int64, t.Int64, err
}

// cacheLookup returns the newest cached outputs of a key.
func (s *Service) cacheLookup(ctx context.Context, pipeline, key string) (outputs map[string]string, runID string, ok bool, err error) {
	var doc string
	err = s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT outputs, run_id FROM pipeline_cache WHERE pipeline = ? AND cache_key = ?
		ORDER BY creation_time DESC, run_id DESC LIMIT 1`), pipeline, key).Scan(&doc, &runID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("read step cache: %w", err)
	}
	if err := json.Unmarshal([]byte(doc), &outputs); err != nil {
		return nil, "", false, fmt.Errorf("step cache entry: %w", err)
	}
	return outputs, runID, true, nil
}

func (s *Service) cacheStore(ctx context.Context, tx store.Tx, pipeline, key, runID, step string, outputs map[string]string, t int64) error {
	_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipeline_cache (pipeline, cache_key, run_id, step, outputs, creation_time) VALUES (?, ?, ?, ?, ?, ?)`+
		store.Upsert([]string{"pipeline", "cache_key", "run_id", "step"}, "outputs", "creation_time")),
		pipeline, key, runID, step, mustJSON(outputs), t)
	return err
}

func itoa(n int) string { return strconv.Itoa(n) }
