package dataset

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// ValidationResult is the outcome of a validation suite run on a version.
type ValidationResult struct {
	ID           int64           `json:"id"`
	Version      VersionRef      `json:"version"`
	Suite        string          `json:"suite"`
	Passed       bool            `json:"passed"`
	Report       json.RawMessage `json:"report"` // the validate package's report, opaque here
	CreationTime int64           `json:"creation_time"`
}

// AddValidationResult records the result of a validation suite on a
// version; report is JSON-serialisable.
func (s *Store) AddValidationResult(ctx context.Context, ref VersionRef, suite string, passed bool, report any) (*ValidationResult, error) {
	if suite == "" {
		return nil, errdefs.Invalid("A validation result needs a suite name")
	}
	if err := validateText("suite name", suite, MaxTextLength); err != nil {
		return nil, err
	}
	rep, err := marshalOpaque("report", report)
	if err != nil {
		return nil, err
	}
	if !rep.Valid {
		rep = sql.NullString{String: "{}", Valid: true}
	}
	r := &ValidationResult{Suite: suite, Passed: passed, Report: json.RawMessage(rep.String), CreationTime: now()}
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		id, number, err := s.resolve(ctx, tx, ref)
		if err != nil {
			return err
		}
		r.Version = VersionRef{Dataset: ref.Dataset, Version: number}
		return tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO data_validations (dataset_id, version, suite, passed, report, creation_time) VALUES (?, ?, ?, ?, ?, ?) RETURNING validation_id`),
			id, number, suite, passed, rep.String, r.CreationTime).Scan(&r.ID)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ListValidationResults returns the validation results of a version,
// oldest first.
func (s *Store) ListValidationResults(ctx context.Context, ref VersionRef) ([]*ValidationResult, error) {
	id, number, err := s.resolve(ctx, s.db.R, ref)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT validation_id, suite, passed, report, creation_time FROM data_validations
		WHERE dataset_id = ? AND version = ? ORDER BY validation_id`), id, number)
	if err != nil {
		return nil, fmt.Errorf("dataset: list validations: %w", err)
	}
	defer rows.Close()
	var out []*ValidationResult
	for rows.Next() {
		r := &ValidationResult{Version: VersionRef{Dataset: ref.Dataset, Version: number}}
		var rep string
		if err := rows.Scan(&r.ID, &r.Suite, &r.Passed, &rep, &r.CreationTime); err != nil {
			return nil, err
		}
		r.Report = json.RawMessage(rep)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RunLink links a version to an MLflow run that used it, with the MLflow
// dataset input (name, digest, source) through which it was logged.
type RunLink struct {
	Version      VersionRef `json:"version"`
	RunID        string     `json:"run_id"`
	MLflowName   string     `json:"mlflow_name,omitempty"`
	MLflowDigest string     `json:"mlflow_digest,omitempty"`
	MLflowSource string     `json:"mlflow_source,omitempty"`
	Context      string     `json:"context,omitempty"` // e.g. "training", MLflow's mlflow.data.context input tag
	CreationTime int64      `json:"creation_time"`
}

// LinkRun records that a run used a version (again: the MLflow fields are
// replaced). The run must exist.
func (s *Store) LinkRun(ctx context.Context, l RunLink) error {
	if l.RunID == "" {
		return errdefs.Invalid("A run link needs a run id")
	}
	for _, f := range []struct{ what, s string }{{"run id", l.RunID}, {"MLflow dataset name", l.MLflowName}, {"MLflow dataset digest", l.MLflowDigest},
		{"MLflow dataset source", l.MLflowSource}, {"context", l.Context}} {
		if err := validateText(f.what, f.s, MaxTextLength); err != nil {
			return err
		}
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, number, err := s.resolve(ctx, tx, l.Version)
		if err != nil {
			return err
		}
		if err := exists(ctx, tx, s.db.Rebind(`SELECT 1 FROM runs WHERE run_uuid = ?`), errdefs.NotFound("Run with id=%s not found", l.RunID), l.RunID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO data_run_links (dataset_id, version, run_uuid, mlflow_name, mlflow_digest, mlflow_source, context, creation_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`+store.Upsert([]string{"dataset_id", "version", "run_uuid"}, "mlflow_name", "mlflow_digest", "mlflow_source", "context")),
			id, number, l.RunID, l.MLflowName, l.MLflowDigest, l.MLflowSource, l.Context, now())
		if err != nil {
			return fmt.Errorf("dataset: link run: %w", err)
		}
		return nil
	})
}

func exists(ctx context.Context, tx store.Tx, q string, notFound error, args ...any) error {
	var one int
	err := tx.QueryRowContext(ctx, q, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	return nil
}

// RunsOfVersion returns the runs that used a version.
func (s *Store) RunsOfVersion(ctx context.Context, ref VersionRef) ([]RunLink, error) {
	id, number, err := s.resolve(ctx, s.db.R, ref)
	if err != nil {
		return nil, err
	}
	return s.runLinks(ctx, `WHERE l.dataset_id = ? AND l.version = ? ORDER BY l.creation_time, l.run_uuid`, id, number)
}

// VersionsOfRun returns the versions that a run used.
func (s *Store) VersionsOfRun(ctx context.Context, runID string) ([]RunLink, error) {
	return s.runLinks(ctx, `WHERE l.run_uuid = ? ORDER BY d.name, l.version`, runID)
}

func (s *Store) runLinks(ctx context.Context, where string, args ...any) ([]RunLink, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT d.name, l.version, l.run_uuid, l.mlflow_name, l.mlflow_digest, l.mlflow_source, l.context, l.creation_time
		FROM data_run_links l JOIN data_datasets d ON d.dataset_id = l.dataset_id `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("dataset: run links: %w", err)
	}
	defer rows.Close()
	var out []RunLink
	for rows.Next() {
		var l RunLink
		if err := rows.Scan(&l.Version.Dataset, &l.Version.Version, &l.RunID, &l.MLflowName, &l.MLflowDigest, &l.MLflowSource, &l.Context, &l.CreationTime); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ModelLink links a version to a registered model version trained on it.
type ModelLink struct {
	Version      VersionRef `json:"version"`
	ModelName    string     `json:"model_name"`
	ModelVersion int64      `json:"model_version"`
	CreationTime int64      `json:"creation_time"`
}

// LinkModelVersion records that a registered model version was trained
// (or evaluated) on a dataset version. The model version must exist.
func (s *Store) LinkModelVersion(ctx context.Context, ref VersionRef, modelName string, modelVersion int64) error {
	if err := validateText("model name", modelName, MaxTextLength); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, number, err := s.resolve(ctx, tx, ref)
		if err != nil {
			return err
		}
		if err := exists(ctx, tx, s.db.Rebind(`SELECT 1 FROM model_versions WHERE name = ? AND version = ?`),
			errdefs.NotFound("Model Version (name=%s, version=%d) not found", modelName, modelVersion), modelName, modelVersion); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO data_model_links (dataset_id, version, model_name, model_version, creation_time) VALUES (?, ?, ?, ?, ?)`+
			store.Upsert([]string{"dataset_id", "version", "model_name", "model_version"})), id, number, modelName, modelVersion, now())
		if err != nil {
			return fmt.Errorf("dataset: link model version: %w", err)
		}
		return nil
	})
}

// ModelVersionsOfVersion returns the model versions linked to a version.
func (s *Store) ModelVersionsOfVersion(ctx context.Context, ref VersionRef) ([]ModelLink, error) {
	id, number, err := s.resolve(ctx, s.db.R, ref)
	if err != nil {
		return nil, err
	}
	return s.modelLinks(ctx, `WHERE l.dataset_id = ? AND l.version = ? ORDER BY l.model_name, l.model_version`, id, number)
}

// VersionsOfModelVersion returns the dataset versions linked to a model
// version.
func (s *Store) VersionsOfModelVersion(ctx context.Context, modelName string, modelVersion int64) ([]ModelLink, error) {
	return s.modelLinks(ctx, `WHERE l.model_name = ? AND l.model_version = ? ORDER BY d.name, l.version`, modelName, modelVersion)
}

func (s *Store) modelLinks(ctx context.Context, where string, args ...any) ([]ModelLink, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT d.name, l.version, l.model_name, l.model_version, l.creation_time
		FROM data_model_links l JOIN data_datasets d ON d.dataset_id = l.dataset_id `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("dataset: model links: %w", err)
	}
	defer rows.Close()
	var out []ModelLink
	for rows.Next() {
		var l ModelLink
		if err := rows.Scan(&l.Version.Dataset, &l.Version.Version, &l.ModelName, &l.ModelVersion, &l.CreationTime); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ResolveMLflowInput finds the version that an MLflow dataset input names:
// a version whose digest starts with the input's digest (at least 8
// hexadecimal digits), preferring one of the dataset named like the input.
// It returns errdefs.ErrNotFound when none matches.
func (s *Store) ResolveMLflowInput(ctx context.Context, name, digest string) (*Version, error) {
	vs, err := s.FindVersions(ctx, digest)
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return nil, errdefs.NotFound("No dataset version has digest '%s'", clip(digest))
	}
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, errdefs.NotFound("No dataset version has digest '%s'", digest)
	}
	for _, v := range vs {
		if v.Dataset == name {
			return v, nil
		}
	}
	return vs[0], nil
}
