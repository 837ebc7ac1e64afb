// Package registry stores registered models, model versions, their tags,
// aliases and stages, with MLflow's model registry semantics.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// ModelSource resolves the sources of new model versions: logged models
// (models:/<model_id>) and runs (runs:/<run_id>/path). tracking.Store
// implements it.
type ModelSource interface {
	LoggedModelLocation(ctx context.Context, modelID string) (artifactURI, sourceRunID string, err error)
	RunArtifactURI(ctx context.Context, runID string) (string, error)
	SetLoggedModelTag(ctx context.Context, modelID, key, value string) error
}

// Store is the model registry.
type Store struct {
	db      *store.DB
	sources ModelSource
	guard   AliasGuard
}

// AliasGuard decides whether an alias may point at a version (promotion
// gates protect aliases such as "champion"). A refusal is an error, which
// SetAlias returns wrapped with ErrAliasRefused.
type AliasGuard interface {
	AllowAlias(ctx context.Context, model, alias string, version int64) error
}

// ErrAliasRefused marks an alias change that the alias guard refused.
var ErrAliasRefused = errors.New("alias change refused")

// SetAliasGuard makes SetAlias ask g before it moves an alias; nil (the
// default) allows every alias. Call it before the store is used.
func (s *Store) SetAliasGuard(g AliasGuard) { s.guard = g }

// New returns a registry on db that resolves sources through sources.
func New(db *store.DB, sources ModelSource) *Store {
	return &Store{db: db, sources: sources}
}

// KV is a tag.
type KV struct{ Key, Value string }

// Alias points a name at a version.
type Alias struct {
	Alias   string
	Version int64
}

// RegisteredModel is a named model with versions.
type RegisteredModel struct {
	Name            string
	CreationTime    int64
	LastUpdatedTime int64
	Description     string
	Tags            []KV
	Aliases         []Alias
	LatestVersions  []*ModelVersion
}

// ModelVersion is one version of a registered model.
type ModelVersion struct {
	Name            string
	Version         int64
	CreationTime    int64
	LastUpdatedTime int64
	Description     string
	UserID          string
	CurrentStage    string
	Source          string
	StorageLocation string
	RunID           string
	RunLink         string
	Status          string
	StatusMessage   string
	ModelID         string
	Tags            []KV
	Aliases         []string
}

// Stages, in MLflow's canonical spelling.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
)

var stages = []string{StageNone, StageStaging, StageProduction, StageArchived}

// CanonicalStage maps a case-insensitive stage name to its canonical form.
func CanonicalStage(s string) (string, error) {
	for _, st := range stages {
		if strings.EqualFold(s, st) {
			return st, nil
		}
	}
	return "", errdefs.Invalid("Invalid Model Version stage: %s. Value must be one of %s, %s, %s, %s.", s, StageNone, StageStaging, StageProduction, StageArchived)
}

func now() int64 { return time.Now().UnixMilli() }

func modelNotFound(name string) error {
	return errdefs.NotFound("Registered Model with name=%s not found", name)
}

func versionNotFound(name string, v int64) error {
	return errdefs.NotFound("Model Version (name=%s, version=%d) not found", name, v)
}

// CreateRegisteredModel creates a registered model.
func (s *Store) CreateRegisteredModel(ctx context.Context, name, description string, tags []KV) (*RegisteredModel, error) {
	if err := validateName("name", name); err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := validateTag(t.Key, t.Value); err != nil {
			return nil, err
		}
	}
	t := now()
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO registered_models (name, creation_time, last_updated_time, description) VALUES (?, ?, ?, ?)`), name, t, t, description)
		if store.IsUniqueViolation(err) {
			return errdefs.AlreadyExists("Registered Model (name=%s) already exists.", name)
		}
		if err != nil {
			return fmt.Errorf("create registered model: %w", err)
		}
		for _, tag := range tags {
			if err := s.upsertModelTag(ctx, tx, name, tag); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetRegisteredModel(ctx, name)
}

func (s *Store) upsertModelTag(ctx context.Context, tx store.Tx, name string, t KV) error {
	_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)`+
		store.Upsert([]string{"name", "key"}, "value")), name, t.Key, t.Value)
	if err != nil {
		return fmt.Errorf("set registered model tag: %w", err)
	}
	return nil
}

type queryer interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func (s *Store) modelRow(ctx context.Context, q queryer, name string) (*RegisteredModel, error) {
	var m RegisteredModel
	err := q.QueryRowContext(ctx, s.db.Rebind(`SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE name = ?`), name).
		Scan(&m.Name, &m.CreationTime, &m.LastUpdatedTime, &m.Description)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, modelNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("get registered model: %w", err)
	}
	return &m, nil
}

// GetRegisteredModel returns a registered model with its tags, aliases and
// the latest version in each stage.
func (s *Store) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	m, err := s.modelRow(ctx, s.db.R, name)
	if err != nil {
		return nil, err
	}
	return m, s.loadModels(ctx, []*RegisteredModel{m})
}

func (s *Store) loadModels(ctx context.Context, models []*RegisteredModel) error {
	if len(models) == 0 {
		return nil
	}
	byName := make(map[string]*RegisteredModel, len(models))
	args := make([]any, len(models))
	for i, m := range models {
		byName[m.Name] = m
		args[i] = m.Name
	}
	in := "(" + placeholders(len(args)) + ")"
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT name, key, value FROM registered_model_tags WHERE name IN `+in+` ORDER BY key`), args...)
	if err != nil {
		return fmt.Errorf("load model tags: %w", err)
	}
	for rows.Next() {
		var n string
		var kv KV
		if err := rows.Scan(&n, &kv.Key, &kv.Value); err != nil {
			rows.Close()
			return err
		}
		byName[n].Tags = append(byName[n].Tags, kv)
	}
	rows.Close()
	rows, err = s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT name, alias, version FROM registered_model_aliases WHERE name IN `+in+` ORDER BY alias`), args...)
	if err != nil {
		return fmt.Errorf("load aliases: %w", err)
	}
	for rows.Next() {
		var n string
		var a Alias
		if err := rows.Scan(&n, &a.Alias, &a.Version); err != nil {
			rows.Close()
			return err
		}
		byName[n].Aliases = append(byName[n].Aliases, a)
	}
	rows.Close()
	// Latest version per stage.
	latest, err := s.queryVersions(ctx, `WHERE mv.deleted = ? AND mv.name IN `+in+` AND mv.version = (SELECT MAX(v2.version) FROM model_versions v2
		WHERE v2.name = mv.name AND v2.current_stage = mv.current_stage AND v2.deleted = ?) ORDER BY mv.version`, append(append([]any{false}, args...), false)...)
	if err != nil {
		return err
	}
	for _, v := range latest {
		byName[v.Name].LatestVersions = append(byName[v.Name].LatestVersions, v)
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// RenameRegisteredModel renames a model; versions, tags and aliases follow.
func (s *Store) RenameRegisteredModel(ctx context.Context, name, newName string) (*RegisteredModel, error) {
	if err := validateName("new_name", newName); err != nil {
		return nil, err
	}
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.modelRow(ctx, tx, name); err != nil {
			return err
		}
		t := now()
		_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE registered_models SET name = ?, last_updated_time = ? WHERE name = ?`), newName, t, name)
		if store.IsUniqueViolation(err) {
			return errdefs.AlreadyExists("Registered Model (name=%s) already exists.", newName)
		}
		if err != nil {
			return fmt.Errorf("rename registered model: %w", err)
		}
		// Versions, tags and aliases follow through ON UPDATE CASCADE; the
		// versions are touched as MLflow does.
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE model_versions SET last_updated_time = ? WHERE name = ? AND deleted = ?`), t, newName, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetRegisteredModel(ctx, newName)
}

// UpdateRegisteredModel sets a model's description.
func (s *Store) UpdateRegisteredModel(ctx context.Context, name, description string) (*RegisteredModel, error) {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE registered_models SET description = ?, last_updated_time = ? WHERE name = ?`), description, now(), name)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, modelNotFound(name)
	}
	return s.GetRegisteredModel(ctx, name)
}

// DeleteRegisteredModel deletes a model with its versions, tags and aliases.
func (s *Store) DeleteRegisteredModel(ctx context.Context, name string) error {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM registered_models WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("delete registered model: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return modelNotFound(name)
	}
	return nil
}

// SetRegisteredModelTag sets a tag on a model.
func (s *Store) SetRegisteredModelTag(ctx context.Context, name, key, value string) error {
	if err := validateTag(key, value); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.modelRow(ctx, tx, name); err != nil {
			return err
		}
		return s.upsertModelTag(ctx, tx, name, KV{key, value})
	})
}

// DeleteRegisteredModelTag removes a tag from a model.
func (s *Store) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	if err := validateTagName(key); err != nil {
		return err
	}
	if _, err := s.modelRow(ctx, s.db.R, name); err != nil {
		return err
	}
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM registered_model_tags WHERE name = ? AND key = ?`), name, key)
	return err
}

// SetAlias points alias at a version of a model.
func (s *Store) SetAlias(ctx context.Context, name, alias string, version int64) error {
	if err := ValidateAlias(alias); err != nil {
		return err
	}
	if s.guard != nil {
		if _, err := s.versionRow(ctx, s.db.R, name, version); err != nil {
			return err
		}
		if err := s.guard.AllowAlias(ctx, name, alias, version); err != nil {
			return fmt.Errorf("%w: %w", ErrAliasRefused, err)
		}
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.versionRow(ctx, tx, name, version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)`+
			store.Upsert([]string{"name", "alias"}, "version")), name, alias, version)
		return err
	})
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, name, alias string) error {
	if _, err := s.modelRow(ctx, s.db.R, name); err != nil {
		return err
	}
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?`), name, alias)
	return err
}

// GetVersionByAlias returns the version an alias points at.
func (s *Store) GetVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	var v int64
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?`), name, alias).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.modelRow(ctx, s.db.R, name); err != nil {
			return nil, err
		}
		return nil, errdefs.NotFound("Registered model alias %s not found.", alias)
	}
	if err != nil {
		return nil, err
	}
	return s.GetModelVersion(ctx, name, v)
}

// modelVersionsTag is the logged-model tag listing its registrations;
// promptTag marks registry entries that are prompts.
const (
	modelVersionsTag = "mlflow.modelVersions"
	promptTag        = "mlflow.prompt.is_prompt"
)

// CreateModelVersionInput describes a new version.
type CreateModelVersionInput struct {
	Name        string
	Source      string
	RunID       string
	RunLink     string
	Description string
	ModelID     string
	UserID      string
	Tags        []KV
}

// CreateModelVersion registers a new version of a model: the next number,
// assigned atomically. Sources models:/<model_id> and runs:/<run_id>/<path>
// are resolved to storage locations.
func (s *Store) CreateModelVersion(ctx context.Context, in CreateModelVersionInput) (*ModelVersion, error) {
	if err := validateName("name", in.Name); err != nil {
		return nil, err
	}
	if in.Source == "" {
		return nil, missingValue("source")
	}
	isPrompt := false
	for _, t := range in.Tags {
		if err := validateTag(t.Key, t.Value); err != nil {
			return nil, err
		}
		isPrompt = isPrompt || t.Key == promptTag
	}
	// As MLflow, prompt versions (tagged mlflow.prompt.is_prompt) carry
	// placeholder sources and skip the source checks.
	if !isPrompt {
		if err := s.validateSource(ctx, in.Source, in.RunID, in.ModelID); err != nil {
			return nil, err
		}
	}
	storage := in.Source
	switch {
	case strings.HasPrefix(in.Source, "models:/m-") || (in.ModelID != "" && in.Source == "models:/"+in.ModelID):
		id := strings.TrimPrefix(in.Source, "models:/")
		if in.ModelID == "" {
			in.ModelID = id
		}
		loc, runID, err := s.sources.LoggedModelLocation(ctx, id)
		if err != nil {
			return nil, err
		}
		storage = loc
		if in.RunID == "" {
			in.RunID = runID
		}
	case strings.HasPrefix(in.Source, "runs:/"):
		rest := strings.TrimPrefix(in.Source, "runs:/")
		runID, sub, _ := strings.Cut(rest, "/")
		uri, err := s.sources.RunArtifactURI(ctx, runID)
		if err != nil {
			return nil, err
		}
		storage = strings.TrimSuffix(uri, "/")
		if sub != "" {
			storage += "/" + sub
		}
		if in.RunID == "" {
			in.RunID = runID
		}
	}
	var version int64
	t := now()
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		lock := ""
		if s.db.Dialect == store.Postgres {
			lock = " FOR UPDATE"
		}
		var n string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT name FROM registered_models WHERE name = ?`+lock), in.Name).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return modelNotFound(in.Name)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?`), in.Name).Scan(&version); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage,
			source, storage_location, run_id, run_link, status, model_id) VALUES (?, ?, ?, ?, ?, ?, 'None', ?, ?, ?, ?, 'READY', ?)`),
			in.Name, version, t, t, in.Description, in.UserID, in.Source, storage, in.RunID, in.RunLink, in.ModelID)
		if err != nil {
			return fmt.Errorf("create model version: %w", err)
		}
		for _, tag := range in.Tags {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)`+
				store.Upsert([]string{"name", "version", "key"}, "value")), in.Name, version, tag.Key, tag.Value); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE registered_models SET last_updated_time = ? WHERE name = ?`), t, in.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if in.ModelID != "" {
		if err := s.tagLoggedModel(ctx, in.ModelID); err != nil {
			return nil, err
		}
	}
	return s.GetModelVersion(ctx, in.Name, version)
}

// tagLoggedModel records a logged model's registrations on it as MLflow's
// tracking store does: Python's json.dumps of [{"name": …, "version": N}].
func (s *Store) tagLoggedModel(ctx context.Context, modelID string) error {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT name, version FROM model_versions WHERE model_id = ? AND deleted = ? ORDER BY creation_time, name, version`), modelID, false)
	if err != nil {
		return fmt.Errorf("list registrations: %w", err)
	}
	var b strings.Builder
	b.WriteByte('[')
	for n := 0; rows.Next(); n++ {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			rows.Close()
			return err
		}
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`{"name": `)
		b.WriteString(pyJSONString(name))
		b.WriteString(`, "version": `)
		b.WriteString(strconv.FormatInt(v, 10))
		b.WriteByte('}')
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	b.WriteByte(']')
	return s.sources.SetLoggedModelTag(ctx, modelID, modelVersionsTag, b.String())
}

// pyJSONString encodes s as Python's json.dumps does (ensure_ascii).
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r >= 0x7f:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

const versionCols = `mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, mv.user_id, mv.current_stage, mv.source,
	mv.storage_location, mv.run_id, mv.run_link, mv.status, mv.status_message, mv.model_id`

func scanVersion(row interface{ Scan(...any) error }) (*ModelVersion, error) {
	var v ModelVersion
	err := row.Scan(&v.Name, &v.Version, &v.CreationTime, &v.LastUpdatedTime, &v.Description, &v.UserID, &v.CurrentStage, &v.Source,
		&v.StorageLocation, &v.RunID, &v.RunLink, &v.Status, &v.StatusMessage, &v.ModelID)
	return &v, err
}

func (s *Store) versionRow(ctx context.Context, q queryer, name string, version int64) (*ModelVersion, error) {
	v, err := scanVersion(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+versionCols+` FROM model_versions mv WHERE mv.name = ? AND mv.version = ? AND mv.deleted = ?`), name, version, false))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, versionNotFound(name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("get model version: %w", err)
	}
	return v, nil
}

// queryVersions runs a SELECT of versions with the given tail (WHERE …)
// and loads their tags and aliases.
func (s *Store) queryVersions(ctx context.Context, tail string, args ...any) ([]*ModelVersion, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+versionCols+` FROM model_versions mv `+tail), args...)
	if err != nil {
		return nil, fmt.Errorf("query model versions: %w", err)
	}
	var out []*ModelVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.loadVersionExtras(ctx, out)
}

func (s *Store) loadVersionExtras(ctx context.Context, vs []*ModelVersion) error {
	if len(vs) == 0 {
		return nil
	}
	type key struct {
		name string
		v    int64
	}
	by := make(map[key]*ModelVersion, len(vs))
	names := map[string]bool{}
	var args []any
	for _, v := range vs {
		by[key{v.Name, v.Version}] = v
		if !names[v.Name] {
			names[v.Name] = true
			args = append(args, v.Name)
		}
	}
	in := "(" + placeholders(len(args)) + ")"
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT name, version, key, value FROM model_version_tags WHERE name IN `+in+` ORDER BY key`), args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k key
		var kv KV
		if err := rows.Scan(&k.name, &k.v, &kv.Key, &kv.Value); err != nil {
			rows.Close()
			return err
		}
		if v := by[k]; v != nil {
			v.Tags = append(v.Tags, kv)
		}
	}
	rows.Close()
	rows, err = s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT name, version, alias FROM registered_model_aliases WHERE name IN `+in+` ORDER BY alias`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var a string
		if err := rows.Scan(&k.name, &k.v, &a); err != nil {
			return err
		}
		if v := by[k]; v != nil {
			v.Aliases = append(v.Aliases, a)
		}
	}
	return rows.Err()
}

// GetModelVersion returns a version with its tags and aliases.
func (s *Store) GetModelVersion(ctx context.Context, name string, version int64) (*ModelVersion, error) {
	v, err := s.versionRow(ctx, s.db.R, name, version)
	if err != nil {
		return nil, err
	}
	return v, s.loadVersionExtras(ctx, []*ModelVersion{v})
}

// UpdateModelVersion sets a version's description.
func (s *Store) UpdateModelVersion(ctx context.Context, name string, version int64, description string) (*ModelVersion, error) {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE model_versions SET description = ?, last_updated_time = ? WHERE name = ? AND version = ? AND deleted = ?`),
		description, now(), name, version, false)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, versionNotFound(name, version)
	}
	return s.GetModelVersion(ctx, name, version)
}

// DeleteModelVersion deletes a version (its number is never reused) and the
// aliases pointing at it.
func (s *Store) DeleteModelVersion(ctx context.Context, name string, version int64) error {
	var modelID string
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		modelID = v.ModelID
		t := now()
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE model_versions SET deleted = ?, current_stage = 'Deleted_Internal', last_updated_time = ? WHERE name = ? AND version = ?`), true, t, name, version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE registered_models SET last_updated_time = ? WHERE name = ?`), t, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM model_version_tags WHERE name = ? AND version = ?`), name, version); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM registered_model_aliases WHERE name = ? AND version = ?`), name, version)
		return err
	})
	if err == nil && modelID != "" {
		if terr := s.tagLoggedModel(ctx, modelID); terr != nil && !errors.Is(terr, errdefs.ErrNotFound) {
			return terr
		}
	}
	return err
}

// TransitionStage moves a version to a stage; with archiveExisting, other
// versions in that stage (Staging or Production) move to Archived.
func (s *Store) TransitionStage(ctx context.Context, name string, version int64, stage string, archiveExisting bool) (*ModelVersion, error) {
	canonical, err := CanonicalStage(stage)
	if err != nil {
		return nil, err
	}
	if archiveExisting && canonical != StageStaging && canonical != StageProduction {
		return nil, errdefs.Invalid("Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are ['Staging', 'Production']", stage)
	}
	stage = canonical
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.versionRow(ctx, tx, name, version); err != nil {
			return err
		}
		t := now()
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE registered_models SET last_updated_time = ? WHERE name = ?`), t, name); err != nil {
			return err
		}
		if archiveExisting {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ?
				WHERE name = ? AND current_stage = ? AND version != ? AND deleted = ?`), t, name, stage, version, false); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE name = ? AND version = ?`), stage, t, name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetModelVersion(ctx, name, version)
}

// GetLatestVersions returns the latest version of a model in each of the
// given stages (all stages when none are given).
func (s *Store) GetLatestVersions(ctx context.Context, name string, stageFilter []string) ([]*ModelVersion, error) {
	m, err := s.GetRegisteredModel(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(stageFilter) == 0 {
		return m.LatestVersions, nil
	}
	want := map[string]bool{}
	for _, st := range stageFilter {
		c, err := CanonicalStage(st)
		if err != nil {
			return nil, err
		}
		want[c] = true
	}
	var out []*ModelVersion
	for _, v := range m.LatestVersions {
		if want[v.CurrentStage] {
			out = append(out, v)
		}
	}
	return out, nil
}

// GetDownloadURI returns where a version's files are.
func (s *Store) GetDownloadURI(ctx context.Context, name string, version int64) (string, error) {
	v, err := s.GetModelVersion(ctx, name, version)
	if err != nil {
		return "", err
	}
	if v.StorageLocation != "" {
		return v.StorageLocation, nil
	}
	return v.Source, nil
}

// SetModelVersionTag sets a tag on a version.
func (s *Store) SetModelVersionTag(ctx context.Context, name string, version int64, key, value string) error {
	if err := validateTag(key, value); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.versionRow(ctx, tx, name, version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)`+
			store.Upsert([]string{"name", "version", "key"}, "value")), name, version, key, value)
		return err
	})
}

// DeleteModelVersionTag removes a tag from a version.
func (s *Store) DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error {
	if err := validateTagName(key); err != nil {
		return err
	}
	if _, err := s.versionRow(ctx, s.db.R, name, version); err != nil {
		return err
	}
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?`), name, version, key)
	return err
}
