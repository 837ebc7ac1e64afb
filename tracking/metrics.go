package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/store"
)

// allMetrics is every logged metric value: the compacted history and the
// values not compacted yet, for one run and key. It takes the run id and
// key twice, once per branch.
const allMetrics = `(SELECT run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics WHERE run_uuid = ? AND key = ?
	UNION ALL SELECT run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics_recent WHERE run_uuid = ? AND key = ?)`

// CompactMetrics moves the values logged since the last compaction into
// the history table in one transaction, sorted by run, key and step, and
// returns how many it moved. Run it periodically (the server does, every
// second); it is safe to run from several servers on one PostgreSQL.
func (s *Store) CompactMetrics(ctx context.Context) (int64, error) {
	const cols = `run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest`
	if s.db.Dialect == store.Postgres {
		res, err := s.db.W.ExecContext(ctx, `WITH moved AS (DELETE FROM metrics_recent WHERE id <= (SELECT MAX(id) FROM metrics_recent) RETURNING `+cols+`)
			INSERT INTO metrics (`+cols+`) SELECT `+cols+` FROM moved ORDER BY run_uuid, key, step`)
		if err != nil {
			return 0, fmt.Errorf("compact metrics: %w", err)
		}
		return res.RowsAffected()
	}
	var n int64
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		var maxID sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM metrics_recent`).Scan(&maxID); err != nil || !maxID.Valid {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO metrics (`+cols+`) SELECT `+cols+` FROM metrics_recent WHERE id <= ? ORDER BY run_uuid, key, step`, maxID.Int64)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `DELETE FROM metrics_recent WHERE id <= ?`, maxID.Int64)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("compact metrics: %w", err)
	}
	return n, nil
}

// GetMetricHistory returns every logged value of a metric, ordered by step
// and timestamp, a page at a time (maxResults 0 means all).
func (s *Store) GetMetricHistory(ctx context.Context, runID, key, pageToken string, maxResults int) ([]Metric, string, error) {
	if _, err := s.getRunInfo(ctx, s.db.R, runID); err != nil {
		return nil, "", err
	}
	offset, err := filter.DecodePageToken(pageToken)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT key, value, is_nan, timestamp, step, COALESCE(model_id, ''), COALESCE(dataset_name, ''), COALESCE(dataset_digest, '')
		FROM ` + allMetrics + ` m ORDER BY step, timestamp, value`
	args := []any{runID, key, runID, key}
	if maxResults > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, maxResults+1, offset)
	}
	ms, err := s.queryMetrics(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if maxResults > 0 && len(ms) > maxResults {
		ms = ms[:maxResults]
		next = filter.EncodePageToken(offset + maxResults)
	}
	for i := range ms {
		ms[i].RunID = runID
	}
	return ms, next, nil
}

func (s *Store) queryMetrics(ctx context.Context, q string, args ...any) ([]Metric, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("query metrics: %w", err)
	}
	defer rows.Close()
	var out []Metric
	for rows.Next() {
		var m Metric
		var isNaN bool
		if err := rows.Scan(&m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step, &m.ModelID, &m.DatasetName, &m.DatasetDigest); err != nil {
			return nil, err
		}
		if isNaN {
			m.Value = math.NaN()
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MaxBulkIntervalResults bounds the points per run of a bulk-interval query.
const MaxBulkIntervalResults = 2500

// GetMetricHistoryBulkInterval returns, for each run, the values of a metric
// at up to maxResults steps in [startStep, endStep], sampled evenly across
// the steps present (the first and last step always included), as MLflow's
// chart endpoint does.
func (s *Store) GetMetricHistoryBulkInterval(ctx context.Context, runIDs []string, key string, startStep, endStep *int64, maxResults int) ([]Metric, error) {
	if len(runIDs) == 0 {
		return nil, errdefs.Invalid("Missing value for required parameter 'run_ids'.")
	}
	if len(runIDs) > 100 {
		return nil, errdefs.Invalid("GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received %d run_ids.", len(runIDs))
	}
	if maxResults <= 0 || maxResults > MaxBulkIntervalResults {
		maxResults = MaxBulkIntervalResults
	}
	if startStep != nil && endStep != nil && *startStep > *endStep {
		return nil, errdefs.Invalid("end_step must be greater than start_step. Found start_step=%d and end_step=%d.", *startStep, *endStep)
	}
	var out []Metric
	for _, id := range runIDs {
		q := `SELECT DISTINCT step FROM ` + allMetrics + ` m WHERE 1 = 1`
		args := []any{id, key, id, key}
		if startStep != nil {
			q += ` AND step >= ?`
			args = append(args, *startStep)
		}
		if endStep != nil {
			q += ` AND step <= ?`
			args = append(args, *endStep)
		}
		rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q+` ORDER BY step`), args...)
		if err != nil {
			return nil, fmt.Errorf("bulk interval steps: %w", err)
		}
		var steps []int64
		for rows.Next() {
			var st int64
			if err := rows.Scan(&st); err != nil {
				rows.Close()
				return nil, err
			}
			steps = append(steps, st)
		}
		rows.Close()
		if len(steps) == 0 {
			continue
		}
		chosen := sampleSteps(steps, maxResults)
		sargs := []any{id, key, id, key}
		for _, st := range chosen {
			sargs = append(sargs, st)
		}
		ms, err := s.queryMetrics(ctx, `SELECT key, value, is_nan, timestamp, step, COALESCE(model_id, ''), COALESCE(dataset_name, ''), COALESCE(dataset_digest, '')
			FROM `+allMetrics+` m WHERE step IN (`+placeholders(len(chosen))+`) ORDER BY step, timestamp`, sargs...)
		if err != nil {
			return nil, err
		}
		for i := range ms {
			ms[i].RunID = id
		}
		out = append(out, ms...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].RunID != out[j].RunID {
			return false
		}
		return out[i].Step < out[j].Step
	})
	return out, nil
}

// sampleSteps picks up to n steps evenly spaced over sorted steps,
// always keeping the first and the last.
func sampleSteps(steps []int64, n int) []int64 {
	if len(steps) <= n {
		return steps
	}
	if n == 1 {
		return steps[:1]
	}
	out := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		idx := int(math.Round(float64(i) * float64(len(steps)-1) / float64(n-1)))
		if len(out) == 0 || out[len(out)-1] != steps[idx] {
			out = append(out, steps[idx])
		}
	}
	return out
}
