package dataset

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

// Version is one immutable version of a dataset. Its content fields
// (digest, kind, counts, source, parent, split) never change; description,
// tags, and the schema and profile derived from the content may be set
// later.
type Version struct {
	Dataset        string            `json:"dataset"`
	Version        int64             `json:"version"`
	Digest         Digest            `json:"digest"`
	Kind           Kind              `json:"kind"`
	FileCount      int64             `json:"file_count"`
	TotalSize      int64             `json:"total_size"`
	Description    string            `json:"description"`
	Tags           map[string]string `json:"tags"`
	Source         string            `json:"source,omitempty"`
	CreatedBy      string            `json:"created_by,omitempty"`
	CreationTime   int64             `json:"creation_time"`
	LastUpdateTime int64             `json:"last_update_time"`
	Parent         *VersionRef       `json:"parent,omitempty"`     // the version this split was cut from
	SplitSpec      json.RawMessage   `json:"split_spec,omitempty"` // how (a SplitSpec)
	// Schema and Profile are opaque JSON documents of the table and profile
	// packages. ListVersions leaves them out; GetVersion fills them.
	Schema  json.RawMessage `json:"schema,omitempty"`
	Profile json.RawMessage `json:"profile,omitempty"`
	// Rows (the profile's row count) and LatestValidation are what a list
	// of versions shows of the profile and the validations: ListVersions
	// fills them, so a version table needs no read per version.
	Rows             *int64             `json:"rows,omitempty"`
	LatestValidation *ValidationSummary `json:"latest_validation,omitempty"`
}

// ValidationSummary is a validation result without its report.
type ValidationSummary struct {
	ID           int64  `json:"id"`
	Suite        string `json:"suite"`
	Passed       bool   `json:"passed"`
	CreationTime int64  `json:"creation_time"`
}

// Ref returns the version's reference.
func (v *Version) Ref() VersionRef { return VersionRef{Dataset: v.Dataset, Version: v.Version} }

// NewVersion describes a version to create.
type NewVersion struct {
	Dataset     string
	Manifest    *Manifest // the content: digest, kind and counts come from it
	Description string
	Tags        map[string]string
	Source      string // where the content came from (a path or URL)
	CreatedBy   string
	Parent      *VersionRef // for splits: the version cut from (0 = latest is resolved)
	SplitSpec   any         // JSON-serialisable; stored as is
	Schema      any         // JSON-serialisable; stored as is
	Profile     any         // JSON-serialisable; stored as is
}

func marshalOpaque(what string, v any) (sql.NullString, error) {
	if v == nil {
		return sql.NullString{}, nil
	}
	if raw, ok := v.(json.RawMessage); ok && raw == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}, errdefs.Invalid("Invalid %s: %s", what, err)
	}
	if string(b) == "null" {
		return sql.NullString{}, nil
	}
	if strings.IndexByte(string(b), 0) >= 0 {
		return sql.NullString{}, errdefs.Invalid("Invalid %s: contains a NUL byte", what)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// CreateVersion records a new version of a dataset, creating the dataset
// if it does not exist. The version number is one more than the latest.
// If the latest version already has the same digest, nothing is created
// and that version is returned with created false (as DVC does when
// nothing changed).
//
// The caller stores the manifest and its objects (Push) first.
func (s *Store) CreateVersion(ctx context.Context, nv NewVersion) (v *Version, created bool, err error) {
	if err := ValidateName(nv.Dataset); err != nil {
		return nil, false, err
	}
	if nv.Manifest == nil {
		return nil, false, errdefs.Invalid("A new version needs a manifest")
	}
	if err := nv.Manifest.Validate(); err != nil {
		return nil, false, err
	}
	for _, f := range []struct{ what, s string }{{"description", nv.Description}, {"source", nv.Source}, {"creator", nv.CreatedBy}} {
		limit := MaxTextLength
		if f.what == "description" {
			limit = MaxDescriptionLength
		}
		if err := validateText(f.what, f.s, limit); err != nil {
			return nil, false, err
		}
	}
	if err := validateTags(nv.Tags); err != nil {
		return nil, false, err
	}
	split, err := marshalOpaque("split spec", nv.SplitSpec)
	if err != nil {
		return nil, false, err
	}
	schema, err := marshalOpaque("schema", nv.Schema)
	if err != nil {
		return nil, false, err
	}
	profile, err := marshalOpaque("profile", nv.Profile)
	if err != nil {
		return nil, false, err
	}
	digest := nv.Manifest.Digest()
	var number int64
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		t := now()
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO data_datasets (name, description, creation_time, last_update_time) VALUES (?, '', ?, ?)`+
			store.Upsert([]string{"name"})), nv.Dataset, t, t); err != nil {
			return fmt.Errorf("dataset: create dataset: %w", err)
		}
		// Lock the dataset's row (PostgreSQL) so that concurrent versions
		// of one dataset are numbered one after the other; SQLite has one
		// writer.
		lock := ""
		if s.db.Dialect == store.Postgres {
			lock = " FOR UPDATE"
		}
		var id int64
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT dataset_id FROM data_datasets WHERE name = ?`+lock), nv.Dataset).Scan(&id); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		var latest int64
		var latestDigest string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT version, digest FROM data_versions WHERE dataset_id = ? ORDER BY version DESC LIMIT 1`), id).Scan(&latest, &latestDigest)
		switch {
		case err == nil && latestDigest == digest.String():
			number = latest
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("dataset: %w", err)
		}
		var parentID, parentVer sql.NullInt64
		if nv.Parent != nil {
			pid, pv, err := s.resolve(ctx, tx, *nv.Parent)
			if err != nil {
				return err
			}
			parentID, parentVer = sql.NullInt64{Int64: pid, Valid: true}, sql.NullInt64{Int64: pv, Valid: true}
		}
		number = latest + 1
		created = true
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO data_versions (dataset_id, version, digest, kind, file_count, total_size, description, source, created_by,
			creation_time, last_update_time, parent_dataset_id, parent_version, split_spec, table_schema, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			id, number, digest.String(), string(nv.Manifest.Kind), len(nv.Manifest.Files), nv.Manifest.TotalSize(), nv.Description, nv.Source, nv.CreatedBy,
			t, t, parentID, parentVer, split, schema, profile)
		if err != nil {
			return fmt.Errorf("dataset: create version: %w", err)
		}
		if err := s.setTags(ctx, tx, "data_version_tags", []string{"dataset_id", "version"}, []any{id, number}, nv.Tags); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE data_datasets SET last_update_time = ? WHERE dataset_id = ?`), t, id)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	v, err = s.GetVersion(ctx, VersionRef{Dataset: nv.Dataset, Version: number})
	return v, created, err
}

// resolve returns the dataset id and version number of ref (the latest
// for version 0).
func (s *Store) resolve(ctx context.Context, q querier, ref VersionRef) (int64, int64, error) {
	id, err := s.datasetID(ctx, q, ref.Dataset)
	if err != nil {
		return 0, 0, err
	}
	if ref.Version < 0 {
		return 0, 0, errdefs.Invalid("Invalid version %d of dataset '%s'", ref.Version, ref.Dataset)
	}
	var v int64
	if ref.Version == 0 {
		var n sql.NullInt64
		if err := q.QueryRowContext(ctx, s.db.Rebind(`SELECT MAX(version) FROM data_versions WHERE dataset_id = ?`), id).Scan(&n); err != nil {
			return 0, 0, fmt.Errorf("dataset: %w", err)
		}
		if !n.Valid {
			return 0, 0, errdefs.NotFound("Dataset '%s' has no versions", ref.Dataset)
		}
		return id, n.Int64, nil
	}
	err = q.QueryRowContext(ctx, s.db.Rebind(`SELECT version FROM data_versions WHERE dataset_id = ? AND version = ?`), id, ref.Version).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, errdefs.NotFound("Dataset '%s' has no version %d", ref.Dataset, ref.Version)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("dataset: %w", err)
	}
	return id, v, nil
}

const versionCols = `d.name, v.dataset_id, v.version, v.digest, v.kind, v.file_count, v.total_size, v.description, v.source, v.created_by,
	v.creation_time, v.last_update_time, pd.name, v.parent_version, v.split_spec`

const versionFrom = ` FROM data_versions v JOIN data_datasets d ON d.dataset_id = v.dataset_id
	LEFT JOIN data_datasets pd ON pd.dataset_id = v.parent_dataset_id`

func scanVersion(row interface{ Scan(...any) error }, extra ...any) (int64, *Version, error) {
	v := &Version{Tags: map[string]string{}}
	var id int64
	var digest, kind string
	var parentName sql.NullString
	var parentVer sql.NullInt64
	var split sql.NullString
	dest := append([]any{&v.Dataset, &id, &v.Version, &digest, &kind, &v.FileCount, &v.TotalSize, &v.Description, &v.Source, &v.CreatedBy,
		&v.CreationTime, &v.LastUpdateTime, &parentName, &parentVer, &split}, extra...)
	if err := row.Scan(dest...); err != nil {
		return 0, nil, err
	}
	d, err := ParseDigest(digest)
	if err != nil {
		return 0, nil, fmt.Errorf("dataset: stored digest of %s@%d: %w", v.Dataset, v.Version, err)
	}
	v.Digest, v.Kind = d, Kind(kind)
	if parentName.Valid && parentVer.Valid {
		v.Parent = &VersionRef{Dataset: parentName.String, Version: parentVer.Int64}
	}
	if split.Valid {
		v.SplitSpec = json.RawMessage(split.String)
	}
	return id, v, nil
}

// GetVersion returns a version (version 0: the latest) with its tags,
// schema and profile.
func (s *Store) GetVersion(ctx context.Context, ref VersionRef) (*Version, error) {
	id, number, err := s.resolve(ctx, s.db.R, ref)
	if err != nil {
		return nil, err
	}
	var schema, profile sql.NullString
	_, v, err := scanVersion(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+versionCols+`, v.table_schema, v.profile`+versionFrom+
		` WHERE v.dataset_id = ? AND v.version = ?`), id, number), &schema, &profile)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Dataset '%s' has no version %d", ref.Dataset, number)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: get version: %w", err)
	}
	if schema.Valid {
		v.Schema = json.RawMessage(schema.String)
	}
	if profile.Valid {
		v.Profile = json.RawMessage(profile.String)
	}
	if err := s.loadTags(ctx, `SELECT key, value FROM data_version_tags WHERE dataset_id = ? AND version = ?`, v.Tags, id, number); err != nil {
		return nil, err
	}
	return v, nil
}

// ListVersions lists the versions of a dataset, newest first, without
// their schema and profile.
func (s *Store) ListVersions(ctx context.Context, name string, q ListQuery) ([]*Version, string, error) {
	limit, err := q.limit()
	if err != nil {
		return nil, "", err
	}
	id, err := s.datasetID(ctx, s.db.R, name)
	if err != nil {
		return nil, "", err
	}
	before := int64(1) << 62
	if q.PageToken != "" {
		n, err := strconv.ParseInt(q.PageToken, 10, 64)
		if err != nil || n < 1 {
			return nil, "", errdefs.Invalid("Invalid page token")
		}
		before = n
	}
	out, next, err := s.listVersions(ctx, `WHERE v.dataset_id = ? AND v.version < ? ORDER BY v.version DESC LIMIT ?`, limit, id, before, limit+1)
	if err != nil || len(out) == 0 {
		return out, next, err
	}
	if err := s.summarize(ctx, id, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// summarize fills the Rows and LatestValidation of a page of versions of
// one dataset, newest first, in two reads: the page is every version
// between its last and its first.
func (s *Store) summarize(ctx context.Context, datasetID int64, page []*Version) error {
	lo, hi := page[len(page)-1].Version, page[0].Version
	byVersion := make(map[int64]*Version, len(page))
	for _, v := range page {
		byVersion[v.Version] = v
	}
	rowsExpr := `json_extract(profile, '$.rows')`
	if s.db.Dialect == store.Postgres {
		rowsExpr = `CAST(profile::jsonb ->> 'rows' AS BIGINT)`
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT version, `+rowsExpr+` FROM data_versions
		WHERE dataset_id = ? AND version BETWEEN ? AND ? AND profile IS NOT NULL`), datasetID, lo, hi)
	if err != nil {
		return fmt.Errorf("dataset: list versions' row counts: %w", err)
	}
	for rows.Next() {
		var number int64
		var n sql.NullInt64
		if err := rows.Scan(&number, &n); err != nil {
			rows.Close()
			return err
		}
		if v := byVersion[number]; v != nil && n.Valid {
			v.Rows = &n.Int64
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT version, validation_id, suite, passed, creation_time FROM data_validations
		WHERE dataset_id = ? AND version BETWEEN ? AND ? ORDER BY validation_id`), datasetID, lo, hi)
	if err != nil {
		return fmt.Errorf("dataset: list versions' validations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var number int64
		r := &ValidationSummary{}
		if err := rows.Scan(&number, &r.ID, &r.Suite, &r.Passed, &r.CreationTime); err != nil {
			return err
		}
		if v := byVersion[number]; v != nil {
			v.LatestValidation = r // in id order: the last one wins
		}
	}
	return rows.Err()
}

func (s *Store) listVersions(ctx context.Context, where string, limit int, args ...any) ([]*Version, string, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+versionCols+versionFrom+` `+where), args...)
	if err != nil {
		return nil, "", fmt.Errorf("dataset: list versions: %w", err)
	}
	var out []*Version
	var ids []int64
	for rows.Next() {
		id, v, err := scanVersion(rows)
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		out = append(out, v)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if limit > 0 && len(out) > limit {
		out, ids = out[:limit], ids[:limit]
		next = strconv.FormatInt(out[limit-1].Version, 10)
	}
	for i, v := range out {
		if err := s.loadTags(ctx, `SELECT key, value FROM data_version_tags WHERE dataset_id = ? AND version = ?`, v.Tags, ids[i], v.Version); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// FindVersions returns the versions whose digest starts with prefix (at
// least 8 hexadecimal digits), newest first: how an MLflow dataset input,
// whose digest field holds at most 36 characters, is matched to the
// version it names.
func (s *Store) FindVersions(ctx context.Context, prefix string) ([]*Version, error) {
	if len(prefix) < 8 || len(prefix) > 64 {
		return nil, errdefs.Invalid("Invalid digest prefix '%s': want 8 to 64 hexadecimal digits", clip(prefix))
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, errdefs.Invalid("Invalid digest prefix '%s': want lowercase hexadecimal digits", clip(prefix))
		}
	}
	// Hex digits sort the same in every collation, and every digest with
	// this prefix lies in [prefix, prefix + "g").
	out, _, err := s.listVersions(ctx, `WHERE v.digest >= ? AND v.digest < ? ORDER BY v.creation_time DESC, d.name, v.version DESC LIMIT 1000`, 0, prefix, prefix+"g")
	return out, err
}

// UpdateVersion sets a version's description.
func (s *Store) UpdateVersion(ctx context.Context, ref VersionRef, description string) error {
	if err := validateText("description", description, MaxDescriptionLength); err != nil {
		return err
	}
	return s.updateVersion(ctx, ref, `description = ?`, description)
}

// SetVersionSchema attaches the table schema (JSON-serialisable) inferred
// from a version's content, replacing any earlier one.
func (s *Store) SetVersionSchema(ctx context.Context, ref VersionRef, schema any) error {
	v, err := marshalOpaque("schema", schema)
	if err != nil {
		return err
	}
	return s.updateVersion(ctx, ref, `table_schema = ?`, v)
}

// SetVersionProfile attaches the profile (JSON-serialisable) computed from
// a version's content, replacing any earlier one.
func (s *Store) SetVersionProfile(ctx context.Context, ref VersionRef, profile any) error {
	v, err := marshalOpaque("profile", profile)
	if err != nil {
		return err
	}
	return s.updateVersion(ctx, ref, `profile = ?`, v)
}

func (s *Store) updateVersion(ctx context.Context, ref VersionRef, set string, value any) error {
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, number, err := s.resolve(ctx, tx, ref)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE data_versions SET `+set+`, last_update_time = ? WHERE dataset_id = ? AND version = ?`), value, now(), id, number)
		if err != nil {
			return fmt.Errorf("dataset: update version: %w", err)
		}
		return nil
	})
}

// SetVersionTag sets one tag of a version.
func (s *Store) SetVersionTag(ctx context.Context, ref VersionRef, key, value string) error {
	if err := validateTag(key, value); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, number, err := s.resolve(ctx, tx, ref)
		if err != nil {
			return err
		}
		return s.setTags(ctx, tx, "data_version_tags", []string{"dataset_id", "version"}, []any{id, number}, map[string]string{key: value})
	})
}

// DeleteVersionTag deletes one tag of a version.
func (s *Store) DeleteVersionTag(ctx context.Context, ref VersionRef, key string) error {
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, number, err := s.resolve(ctx, tx, ref)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM data_version_tags WHERE dataset_id = ? AND version = ? AND key = ?`), id, number, key)
		return checkUpdated(res, err, errdefs.NotFound("Version %s has no tag '%s'", VersionRef{ref.Dataset, number}, key))
	})
}

// Children returns the versions cut from ref (its splits), by dataset name.
func (s *Store) Children(ctx context.Context, ref VersionRef) ([]*Version, error) {
	id, number, err := s.resolve(ctx, s.db.R, ref)
	if err != nil {
		return nil, err
	}
	out, _, err := s.listVersions(ctx, `WHERE v.parent_dataset_id = ? AND v.parent_version = ? ORDER BY d.name, v.version`, 0, id, number)
	return out, err
}
