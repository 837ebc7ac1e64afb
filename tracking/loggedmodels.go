package tracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/store"
)

// CreateLoggedModelInput describes a new logged model.
type CreateLoggedModelInput struct {
	ExperimentID string
	Name         string
	ModelType    string
	SourceRunID  string
	Params       []KV
	Tags         []KV
}

func newModelID() string { return "m-" + newRunID() }

// CreateLoggedModel creates a logged model in state LOGGED_MODEL_PENDING.
func (s *Store) CreateLoggedModel(ctx context.Context, in CreateLoggedModelInput) (*LoggedModel, error) {
	exp, err := s.GetExperiment(ctx, in.ExperimentID)
	if err != nil {
		return nil, err
	}
	if exp.LifecycleStage != StageActive {
		return nil, errdefs.Invalid("The experiment %s must be in the 'active' state. Current state is %s.", exp.ID, exp.LifecycleStage)
	}
	if in.Name == "" {
		in.Name = generateRunName()
	}
	for _, p := range in.Params {
		if err := validateKey("param", p.Key); err != nil {
			return nil, err
		}
	}
	for _, t := range in.Tags {
		if err := validateKey("tag", t.Key); err != nil {
			return nil, err
		}
	}
	if in.SourceRunID != "" {
		if _, err := s.getRunInfo(ctx, s.db.R, in.SourceRunID); err != nil {
			return nil, err
		}
	}
	id := newModelID()
	t := now()
	m := &LoggedModel{
		ID: id, ExperimentID: exp.ID, Name: in.Name, CreationTime: t, LastUpdatedTime: t,
		ArtifactLocation: strings.TrimSuffix(exp.ArtifactLocation, "/") + "/models/" + id + "/artifacts",
		Status:           ModelPending, ModelType: in.ModelType, SourceRunID: in.SourceRunID,
		Params: dedupLastWins(in.Params), Tags: dedupLastWins(in.Tags),
	}
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, model_type, source_run_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, exp.ID, m.Name, m.ArtifactLocation, t, t, m.Status, m.ModelType, m.SourceRunID)
		if err != nil {
			return fmt.Errorf("insert logged model: %w", err)
		}
		if err := s.upsertModelKVs(ctx, tx, "logged_model_params", id, m.Params); err != nil {
			return err
		}
		return s.upsertModelKVs(ctx, tx, "logged_model_tags", id, m.Tags)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Store) upsertModelKVs(ctx context.Context, tx store.Tx, table, id string, kvs []KV) error {
	if len(kvs) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(kvs))
	for _, kv := range kvs {
		args = append(args, id, kv.Key, kv.Value)
	}
	q := `INSERT INTO ` + table + ` (model_id, key, value) VALUES ` + rowsOf(3, len(kvs)) + store.Upsert([]string{"model_id", "key"}, "value")
	if _, err := tx.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
		return fmt.Errorf("write %s: %w", table, err)
	}
	return nil
}

const loggedModelCols = `model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, status_message, model_type, source_run_id`

func scanLoggedModel(row interface{ Scan(...any) error }) (*LoggedModel, error) {
	var m LoggedModel
	var exp int64
	if err := row.Scan(&m.ID, &exp, &m.Name, &m.ArtifactLocation, &m.CreationTime, &m.LastUpdatedTime, &m.Status, &m.StatusMessage, &m.ModelType, &m.SourceRunID); err != nil {
		return nil, err
	}
	m.ExperimentID = strconv.FormatInt(exp, 10)
	return &m, nil
}

// GetLoggedModel returns an active logged model with its tags, params and metrics.
func (s *Store) GetLoggedModel(ctx context.Context, id string) (*LoggedModel, error) {
	m, err := scanLoggedModel(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+loggedModelCols+` FROM logged_models WHERE model_id = ? AND lifecycle_stage = 'active'`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Logged model with ID '%s' not found.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get logged model: %w", err)
	}
	return m, s.loadModelData(ctx, []*LoggedModel{m})
}

func (s *Store) loadModelData(ctx context.Context, models []*LoggedModel) error {
	if len(models) == 0 {
		return nil
	}
	byID := make(map[string]*LoggedModel, len(models))
	args := make([]any, len(models))
	for i, m := range models {
		byID[m.ID] = m
		args[i] = m.ID
	}
	in := "(" + placeholders(len(args)) + ")"
	if err := s.loadKVs(ctx, "logged_model_tags", "model_id", args, func(id string, kv KV) { byID[id].Tags = append(byID[id].Tags, kv) }); err != nil {
		return err
	}
	if err := s.loadKVs(ctx, "logged_model_params", "model_id", args, func(id string, kv KV) { byID[id].Params = append(byID[id].Params, kv) }); err != nil {
		return err
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT model_id, key, value, is_nan, timestamp, step, run_uuid, COALESCE(dataset_name, ''), COALESCE(dataset_digest, '')
		FROM logged_model_metrics WHERE model_id IN `+in+` ORDER BY key, step, timestamp`), args...)
	if err != nil {
		return fmt.Errorf("load logged model metrics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var m Metric
		var isNaN bool
		if err := rows.Scan(&id, &m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step, &m.RunID, &m.DatasetName, &m.DatasetDigest); err != nil {
			return err
		}
		if isNaN {
			m.Value = math.NaN()
		}
		m.ModelID = id
		byID[id].Metrics = append(byID[id].Metrics, m)
	}
	return rows.Err()
}

// insertModelMetrics records metrics logged with a model_id on the logged
// model too. A metric naming an unknown model is still a run metric.
func (s *Store) insertModelMetrics(ctx context.Context, tx store.Tx, runID string, ms []Metric) error {
	ids := map[string]bool{}
	var idArgs []any
	for _, m := range ms {
		if !ids[m.ModelID] {
			ids[m.ModelID] = true
			idArgs = append(idArgs, m.ModelID)
		}
	}
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT model_id FROM logged_models WHERE model_id IN (`+placeholders(len(idArgs))+`)`), idArgs...)
	if err != nil {
		return fmt.Errorf("find logged models: %w", err)
	}
	exists := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		exists[id] = true
	}
	rows.Close()
	args := make([]any, 0, 9*len(ms))
	n := 0
	for _, m := range ms {
		if !exists[m.ModelID] {
			continue
		}
		v, isNaN := metricValue(m.Value)
		args = append(args, m.ModelID, m.Key, v, isNaN, m.Timestamp, m.Step, runID, nullable(m.DatasetName), nullable(m.DatasetDigest))
		n++
	}
	if n == 0 {
		return nil
	}
	q := `INSERT INTO logged_model_metrics (model_id, key, value, is_nan, timestamp, step, run_uuid, dataset_name, dataset_digest) VALUES ` + rowsOf(9, n)
	if _, err := tx.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
		return fmt.Errorf("record logged model metrics: %w", err)
	}
	return nil
}

// FinalizeLoggedModel sets a logged model's status to READY or UPLOAD_FAILED.
func (s *Store) FinalizeLoggedModel(ctx context.Context, id, status string) (*LoggedModel, error) {
	if status != ModelReady && status != ModelUploadFailed {
		return nil, errdefs.Invalid("Invalid model status '%s'. Expected one of [LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED]", status)
	}
	if _, err := s.GetLoggedModel(ctx, id); err != nil {
		return nil, err
	}
	if _, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?`), status, now(), id); err != nil {
		return nil, fmt.Errorf("finalize logged model: %w", err)
	}
	return s.GetLoggedModel(ctx, id)
}

// DeleteLoggedModel soft-deletes a logged model.
func (s *Store) DeleteLoggedModel(ctx context.Context, id string) error {
	if _, err := s.GetLoggedModel(ctx, id); err != nil {
		return err
	}
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? WHERE model_id = ?`), now(), id)
	return err
}

// SetLoggedModelTags sets tags on a logged model (last wins).
func (s *Store) SetLoggedModelTags(ctx context.Context, id string, tags []KV) error {
	for _, t := range tags {
		if err := validateKey("tag", t.Key); err != nil {
			return err
		}
		if err := validateValueLength("tag", t.Key, t.Value, MaxTagValueLength); err != nil {
			return err
		}
	}
	if _, err := s.GetLoggedModel(ctx, id); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		if err := s.upsertModelKVs(ctx, tx, "logged_model_tags", id, dedupLastWins(tags)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE logged_models SET last_updated_timestamp_ms = ? WHERE model_id = ?`), now(), id)
		return err
	})
}

// SetLoggedModelTag sets one tag on a logged model.
func (s *Store) SetLoggedModelTag(ctx context.Context, id, key, value string) error {
	return s.SetLoggedModelTags(ctx, id, []KV{{key, value}})
}

// DeleteLoggedModelTag removes a tag from a logged model.
func (s *Store) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	if _, err := s.GetLoggedModel(ctx, id); err != nil {
		return err
	}
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?`), id, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("No tag with key '%s' found for model with ID '%s'.", key, id)
	}
	return nil
}

// LogLoggedModelParams records params on a logged model.
func (s *Store) LogLoggedModelParams(ctx context.Context, id string, params []KV) error {
	for _, p := range params {
		if err := validateKey("param", p.Key); err != nil {
			return err
		}
		if err := validateValueLength("param", p.Key, p.Value, MaxParamValueLength); err != nil {
			return err
		}
	}
	if _, err := s.GetLoggedModel(ctx, id); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		return s.upsertModelKVs(ctx, tx, "logged_model_params", id, dedupLastWins(params))
	})
}

// LoggedModelLocation returns a logged model's artifact URI and source run.
func (s *Store) LoggedModelLocation(ctx context.Context, id string) (string, string, error) {
	var loc, run string
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = ? AND lifecycle_stage = 'active'`), id).Scan(&loc, &run)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", errdefs.NotFound("Logged model with ID '%s' not found.", id)
	}
	return loc, run, err
}

// LoggedModelOrder is one order_by entry of a logged-model search.
type LoggedModelOrder struct {
	FieldName string
	Ascending bool
}

// SearchLoggedModelsQuery is a search over logged models.
type SearchLoggedModelsQuery struct {
	ExperimentIDs []string
	Filter        string
	OrderBy       []LoggedModelOrder
	MaxResults    int
	PageToken     string
}

var loggedModelAttrCols = map[string]string{
	"model_id": "lm.model_id", "name": "lm.name", "model_type": "lm.model_type", "status": "lm.status",
	"source_run_id": "lm.source_run_id", "creation_timestamp": "lm.creation_timestamp_ms",
	"creation_time": "lm.creation_timestamp_ms", "last_updated_timestamp": "lm.last_updated_timestamp_ms",
}

// SearchLoggedModels searches active logged models.
func (s *Store) SearchLoggedModels(ctx context.Context, q SearchLoggedModelsQuery) ([]*LoggedModel, string, error) {
	if q.MaxResults <= 0 {
		q.MaxResults = 100
	}
	if q.MaxResults > 1000 {
		q.MaxResults = 1000
	}
	offset, err := filter.DecodePageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	if len(q.ExperimentIDs) == 0 {
		return nil, "", errdefs.Invalid("Missing value for required parameter 'experiment_ids'.")
	}
	clauses, err := filter.Parse(q.Filter)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	exps := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, "", errdefs.Invalid("Invalid experiment id '%s'", id)
		}
		exps[i] = n
	}
	where = append(where, "lm.experiment_id IN ("+placeholders(len(exps))+")", "lm.lifecycle_stage = 'active'")
	args = append(args, exps...)
	for _, c := range clauses {
		switch c.Entity {
		case filter.Attribute:
			col, ok := loggedModelAttrCols[c.Key]
			if !ok {
				return nil, "", errdefs.Invalid("Invalid attribute key '%s' for logged model search", c.Key)
			}
			if c.Key == "status" && !c.Value.IsNum && !strings.HasPrefix(c.Value.Str, "LOGGED_MODEL_") {
				c.Value.Str = "LOGGED_MODEL_" + c.Value.Str
			}
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, col, c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			where = append(where, sqlc)
			args = append(args, a...)
		case filter.Metric:
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, "x.value", c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			where = append(where, `EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model_id = lm.model_id AND x.key = ? AND `+sqlc+`)`)
			args = append(append(args, c.Key), a...)
		case filter.Param, filter.Tag:
			table := "logged_model_params"
			if c.Entity == filter.Tag {
				table = "logged_model_tags"
			}
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, "x.value", c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			where = append(where, `EXISTS (SELECT 1 FROM `+table+` x WHERE x.model_id = lm.model_id AND x.key = ? AND `+sqlc+`)`)
			args = append(append(args, c.Key), a...)
		default:
			return nil, "", errdefs.Invalid("Invalid entity '%s' in logged model filter", c.Entity)
		}
	}
	var order []string
	var orderArgs []any
	for i, o := range q.OrderBy {
		if col, ok := loggedModelAttrCols[o.FieldName]; ok {
			order = append(order, filter.OrderSQL(col, o.Ascending))
			continue
		}
		if key, ok := strings.CutPrefix(o.FieldName, "metrics."); ok {
			a := "om" + strconv.Itoa(i)
			order = append(order, filter.OrderSQL(`(SELECT MAX(`+a+`.value) FROM logged_model_metrics `+a+` WHERE `+a+`.model_id = lm.model_id AND `+a+`.key = ?)`, o.Ascending))
			orderArgs = append(orderArgs, key, key)
			continue
		}
		return nil, "", errdefs.Invalid("Invalid order_by field name '%s'", o.FieldName)
	}
	order = append(order, "lm.creation_timestamp_ms DESC", "lm.model_id")
	query := `SELECT ` + prefixCols("lm.", loggedModelCols) + ` FROM logged_models lm WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ? OFFSET ?`
	args = append(append(args, orderArgs...), q.MaxResults+1, offset)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("search logged models: %w", err)
	}
	var out []*LoggedModel
	for rows.Next() {
		m, err := scanLoggedModel(rows)
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("search logged models: %w", err)
	}
	next := ""
	if len(out) > q.MaxResults {
		out = out[:q.MaxResults]
		next = filter.EncodePageToken(offset + q.MaxResults)
	}
	return out, next, s.loadModelData(ctx, out)
}
