package tracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/store"
)

func now() int64 { return time.Now().UnixMilli() }

// CreateExperiment creates an experiment and returns its id. An empty
// artifactLocation means "<DefaultArtifactRoot><id>".
func (s *Store) CreateExperiment(ctx context.Context, name, artifactLocation string, tags []KV) (string, error) {
	if err := validateExperimentName(name); err != nil {
		return "", err
	}
	for _, t := range tags {
		if err := validateKey("tag", t.Key); err != nil {
			return "", err
		}
		if err := validateValueLength("tag", t.Key, t.Value, MaxExperimentTagValue); err != nil {
			return "", err
		}
	}
	var id int64
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		t := now()
		err := tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES (?, ?, 'active', ?, ?) RETURNING experiment_id`), name, artifactLocation, t, t).Scan(&id)
		if err != nil {
			if store.IsUniqueViolation(err) {
				return errdefs.AlreadyExists("Experiment(name=%s) already exists. Error: Experiment names must be unique.", name)
			}
			return fmt.Errorf("insert experiment: %w", err)
		}
		if artifactLocation == "" {
			loc := s.opts.DefaultArtifactRoot + strconv.FormatInt(id, 10)
			if !strings.HasSuffix(s.opts.DefaultArtifactRoot, "/") {
				loc = s.opts.DefaultArtifactRoot + "/" + strconv.FormatInt(id, 10)
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?`), loc, id); err != nil {
				return err
			}
		}
		return s.upsertExperimentTags(ctx, tx, id, tags)
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

func (s *Store) upsertExperimentTags(ctx context.Context, tx store.Tx, id int64, tags []KV) error {
	for _, t := range tags {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)`+
			store.Upsert([]string{"experiment_id", "key"}, "value")), id, t.Key, t.Value)
		if err != nil {
			return fmt.Errorf("set experiment tag: %w", err)
		}
	}
	return nil
}

const experimentCols = `experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time`

func scanExperiment(row interface{ Scan(...any) error }) (*Experiment, error) {
	var e Experiment
	var id int64
	if err := row.Scan(&id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage, &e.CreationTime, &e.LastUpdateTime); err != nil {
		return nil, err
	}
	e.ID = strconv.FormatInt(id, 10)
	return &e, nil
}

// GetExperiment returns an experiment with its tags.
func (s *Store) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	if err := validateExperimentID(id); err != nil {
		return nil, err
	}
	e, err := scanExperiment(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+experimentCols+` FROM experiments WHERE experiment_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("No Experiment with id=%s exists", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get experiment: %w", err)
	}
	return e, s.loadExperimentTags(ctx, []*Experiment{e})
}

// GetExperimentByName returns the experiment with the given name.
func (s *Store) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	e, err := scanExperiment(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+experimentCols+` FROM experiments WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Could not find experiment with name '%s'", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get experiment by name: %w", err)
	}
	return e, s.loadExperimentTags(ctx, []*Experiment{e})
}

func (s *Store) loadExperimentTags(ctx context.Context, exps []*Experiment) error {
	if len(exps) == 0 {
		return nil
	}
	byID := make(map[string]*Experiment, len(exps))
	args := make([]any, len(exps))
	for i, e := range exps {
		byID[e.ID] = e
		args[i], _ = strconv.ParseInt(e.ID, 10, 64)
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (`+placeholders(len(args))+`) ORDER BY key`), args...)
	if err != nil {
		return fmt.Errorf("load experiment tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var kv KV
		if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
			return err
		}
		e := byID[strconv.FormatInt(id, 10)]
		e.Tags = append(e.Tags, kv)
	}
	return rows.Err()
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// RenameExperiment renames an experiment.
func (s *Store) RenameExperiment(ctx context.Context, id, newName string) error {
	if err := validateExperimentName(newName); err != nil {
		return err
	}
	e, err := s.GetExperiment(ctx, id)
	if err != nil {
		return err
	}
	if e.LifecycleStage != StageActive {
		return errdefs.Invalid("Cannot rename a non-active experiment.")
	}
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?`), newName, now(), id)
	if store.IsUniqueViolation(err) {
		return errdefs.AlreadyExists("Experiment(name=%s) already exists.", newName)
	}
	return err
}

// DeleteExperiment marks an experiment and its runs deleted.
func (s *Store) DeleteExperiment(ctx context.Context, id string) error {
	return s.setExperimentStage(ctx, id, StageDeleted)
}

// RestoreExperiment restores a deleted experiment and its runs.
func (s *Store) RestoreExperiment(ctx context.Context, id string) error {
	return s.setExperimentStage(ctx, id, StageActive)
}

// setExperimentStage moves an experiment (and all its runs) to stage. As in
// MLflow, only an active experiment can be deleted and only a deleted one
// restored: anything else is "No Experiment with id=… exists".
func (s *Store) setExperimentStage(ctx context.Context, id, stage string) error {
	if err := validateExperimentID(id); err != nil {
		return err
	}
	from := StageActive
	if stage == StageActive {
		from = StageDeleted
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?`), id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) || err == nil && cur != from {
			return errdefs.NotFound("No Experiment with id=%s exists", id)
		}
		if err != nil {
			return fmt.Errorf("get experiment: %w", err)
		}
		t := now()
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?`), stage, t, id); err != nil {
			return err
		}
		var deleted any
		if stage == StageDeleted {
			deleted = t
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?`), stage, deleted, id)
		return err
	})
}

// SetExperimentTag sets a tag on an experiment.
func (s *Store) SetExperimentTag(ctx context.Context, id, key, value string) error {
	if err := validateKey("tag", key); err != nil {
		return err
	}
	if err := validateValueLength("tag", key, value, MaxExperimentTagValue); err != nil {
		return err
	}
	e, err := s.GetExperiment(ctx, id)
	if err != nil {
		return err
	}
	if e.LifecycleStage != StageActive {
		return errdefs.Invalid("The experiment %s must be in the 'active' state. Current state is %s.", id, e.LifecycleStage)
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	return s.db.Tx(ctx, func(tx store.Tx) error { return s.upsertExperimentTags(ctx, tx, n, []KV{{key, value}}) })
}

// DeleteExperimentTag removes a tag from an experiment.
func (s *Store) DeleteExperimentTag(ctx context.Context, id, key string) error {
	if _, err := s.GetExperiment(ctx, id); err != nil {
		return err
	}
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?`), id, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("No tag with name: %s in experiment with id %s", key, id)
	}
	return nil
}

// SearchExperimentsQuery is a search over experiments.
type SearchExperimentsQuery struct {
	Filter     string
	OrderBy    []string
	MaxResults int
	PageToken  string
	ViewType   ViewType
}

var experimentAttrCols = map[string]string{
	"name": "e.name", "experiment_id": "e.experiment_id",
	"creation_time": "e.creation_time", "last_update_time": "e.last_update_time",
}

// SearchExperiments searches experiments; it returns a page and the token of
// the next page ("" when there is none).
func (s *Store) SearchExperiments(ctx context.Context, q SearchExperimentsQuery) ([]*Experiment, string, error) {
	if q.MaxResults <= 0 {
		q.MaxResults = 1000
	}
	if q.MaxResults > 50000 {
		return nil, "", errdefs.Invalid("Invalid value %d for parameter 'max_results' supplied. It must be at most 50000", q.MaxResults)
	}
	offset, err := filter.DecodePageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	clauses, err := filter.Parse(q.Filter)
	if err != nil {
		return nil, "", err
	}
	stages := q.ViewType.stages()
	where := []string{"e.lifecycle_stage IN (" + placeholders(len(stages)) + ")"}
	args := append([]any{}, stages...)
	for _, c := range clauses {
		switch c.Entity {
		case filter.Attribute:
			col, ok := experimentAttrCols[c.Key]
			if !ok || c.Key == "experiment_id" {
				return nil, "", errdefs.Invalid("Invalid attribute key '%s' specified. Valid keys are '[name, creation_time, last_update_time]'", c.Key)
			}
			numeric := col != "e.name"
			if numeric != c.Value.IsNum && c.Op != filter.IsNull && c.Op != filter.IsNotNull {
				return nil, "", errdefs.Invalid("Invalid value for attribute '%s' in filter %q", c.Key, q.Filter)
			}
			if numeric && !c.Op.Numeric() {
				return nil, "", errdefs.Invalid("Invalid comparator '%s' for attribute '%s'", c.Op, c.Key)
			}
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, col, c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			where = append(where, sqlc)
			args = append(args, a...)
		case filter.Tag:
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, "t.value", c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			if c.Op == filter.IsNull {
				where = append(where, "NOT EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ?)")
				args = append(args, c.Key)
				continue
			}
			where = append(where, "EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ? AND "+sqlc+")")
			args = append(append(args, c.Key), a...)
		default:
			return nil, "", errdefs.Invalid("Invalid entity type '%s' in filter %q. Valid values are ['attribute', 'tag']", c.Entity, q.Filter)
		}
	}
	var order []string
	for _, ob := range q.OrderBy {
		o, err := filter.ParseOrderBy(ob)
		if err != nil {
			return nil, "", err
		}
		col, ok := experimentAttrCols[o.Key]
		if o.Entity != filter.Attribute || !ok {
			return nil, "", errdefs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", ob)
		}
		order = append(order, filter.OrderSQL(col, o.Ascending))
	}
	if len(order) == 0 {
		order = append(order, "e.creation_time DESC")
	}
	order = append(order, "e.experiment_id DESC")
	query := `SELECT ` + prefixCols("e.", experimentCols) + ` FROM experiments e WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ? OFFSET ?`
	args = append(args, q.MaxResults+1, offset)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("search experiments: %w", err)
	}
	defer rows.Close()
	var out []*Experiment
	for rows.Next() {
		e, err := scanExperiment(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > q.MaxResults {
		out = out[:q.MaxResults]
		next = filter.EncodePageToken(offset + q.MaxResults)
	}
	return out, next, s.loadExperimentTags(ctx, out)
}

func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return strings.Join(parts, ", ")
}
