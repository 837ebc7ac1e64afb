package dataset

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Store keeps the metadata of datasets and their versions in the metadata
// database (tables data_* of store's migrations): names, descriptions,
// tags, versions with their digests, splits, schemas and profiles,
// validation results and lineage. Contents live in a Remote.
type Store struct {
	db *store.DB
}

// NewStore returns the dataset store on db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// Dataset is a named series of versions.
type Dataset struct {
	Name           string            `json:"name"`
	Description    string            `json:"description"`
	Tags           map[string]string `json:"tags"`
	CreationTime   int64             `json:"creation_time"`    // ms since the epoch
	LastUpdateTime int64             `json:"last_update_time"` // ms since the epoch
	LatestVersion  int64             `json:"latest_version"`   // 0 when it has none
}

func now() int64 { return time.Now().UnixMilli() }

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func notFoundDataset(name string) error {
	return errdefs.NotFound("Dataset '%s' does not exist", name)
}

// CreateDataset creates an empty dataset.
func (s *Store) CreateDataset(ctx context.Context, name, description string, tags map[string]string) (*Dataset, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := validateText("description", description, MaxDescriptionLength); err != nil {
		return nil, err
	}
	if err := validateTags(tags); err != nil {
		return nil, err
	}
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		t := now()
		var id int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO data_datasets (name, description, creation_time, last_update_time) VALUES (?, ?, ?, ?) RETURNING dataset_id`),
			name, description, t, t).Scan(&id)
		if store.IsUniqueViolation(err) {
			return errdefs.AlreadyExists("Dataset '%s' already exists", name)
		}
		if err != nil {
			return fmt.Errorf("dataset: create: %w", err)
		}
		return s.setTags(ctx, tx, "data_dataset_tags", []string{"dataset_id"}, []any{id}, tags)
	})
	if err != nil {
		return nil, err
	}
	return s.GetDataset(ctx, name)
}

func (s *Store) setTags(ctx context.Context, tx store.Tx, table string, keyCols []string, keyVals []any, tags map[string]string) error {
	cols := strings.Join(keyCols, ", ")
	ph := strings.Repeat("?, ", len(keyCols))
	q := s.db.Rebind(`INSERT INTO ` + table + ` (` + cols + `, key, value) VALUES (` + ph + `?, ?)` + store.Upsert(append(keyCols[:len(keyCols):len(keyCols)], "key"), "value"))
	for k, v := range tags {
		if _, err := tx.ExecContext(ctx, q, append(keyVals[:len(keyVals):len(keyVals)], k, v)...); err != nil {
			return fmt.Errorf("dataset: set tag: %w", err)
		}
	}
	return nil
}

const datasetCols = `d.dataset_id, d.name, d.description, d.creation_time, d.last_update_time,
	COALESCE((SELECT MAX(v.version) FROM data_versions v WHERE v.dataset_id = d.dataset_id), 0)`

func scanDataset(row interface{ Scan(...any) error }) (int64, *Dataset, error) {
	var id int64
	d := &Dataset{Tags: map[string]string{}}
	err := row.Scan(&id, &d.Name, &d.Description, &d.CreationTime, &d.LastUpdateTime, &d.LatestVersion)
	return id, d, err
}

// GetDataset returns a dataset with its tags.
func (s *Store) GetDataset(ctx context.Context, name string) (*Dataset, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	id, d, err := scanDataset(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+datasetCols+` FROM data_datasets d WHERE d.name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFoundDataset(name)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: get: %w", err)
	}
	if err := s.loadTags(ctx, `SELECT key, value FROM data_dataset_tags WHERE dataset_id = ?`, d.Tags, id); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *Store) loadTags(ctx context.Context, q string, into map[string]string, args ...any) error {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("dataset: load tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		into[k] = v
	}
	return rows.Err()
}

// ListQuery pages through a listing.
type ListQuery struct {
	// Prefix keeps only datasets whose name starts with it (ListDatasets).
	Prefix string
	// Contains keeps only datasets whose name or description contains it,
	// ignoring ASCII case (ListDatasets).
	Contains   string
	MaxResults int    // default 100, at most 1000
	PageToken  string // from the previous page
}

func (q ListQuery) limit() (int, error) {
	switch {
	case q.MaxResults < 0 || q.MaxResults > 1000:
		return 0, errdefs.Invalid("Invalid max_results %d: want 1 to 1000", q.MaxResults)
	case q.MaxResults == 0:
		return 100, nil
	}
	return q.MaxResults, nil
}

// ListDatasets lists datasets by name.
func (s *Store) ListDatasets(ctx context.Context, q ListQuery) ([]*Dataset, string, error) {
	limit, err := q.limit()
	if err != nil {
		return nil, "", err
	}
	after := ""
	if q.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.PageToken)
		if err != nil {
			return nil, "", errdefs.Invalid("Invalid page token")
		}
		after = string(b)
	}
	sqlq := `SELECT ` + datasetCols + ` FROM data_datasets d WHERE d.name > ?`
	args := []any{after}
	if q.Prefix != "" {
		if err := validateText("prefix", q.Prefix, MaxNameLength); err != nil {
			return nil, "", err
		}
		// A range on the name rather than LIKE: no escaping, and the
		// unique index serves it.
		sqlq += ` AND d.name >= ? AND substr(d.name, 1, ?) = ?`
		args = append(args, q.Prefix, len([]rune(q.Prefix)), q.Prefix)
	}
	if q.Contains != "" {
		if err := validateText("contains", q.Contains, MaxNameLength); err != nil {
			return nil, "", err
		}
		// instr/strpos rather than LIKE: no wildcards to escape.
		find := "instr(lower(%s), lower(?)) > 0"
		if s.db.Dialect == store.Postgres {
			find = "strpos(lower(%s), lower(?)) > 0"
		}
		sqlq += ` AND (` + fmt.Sprintf(find, "d.name") + ` OR ` + fmt.Sprintf(find, "d.description") + `)`
		args = append(args, q.Contains, q.Contains)
	}
	sqlq += ` ORDER BY d.name LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(sqlq), args...)
	if err != nil {
		return nil, "", fmt.Errorf("dataset: list: %w", err)
	}
	var out []*Dataset
	var ids []int64
	for rows.Next() {
		id, d, err := scanDataset(rows)
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		out = append(out, d)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out, ids = out[:limit], ids[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[limit-1].Name))
	}
	for i, d := range out {
		if err := s.loadTags(ctx, `SELECT key, value FROM data_dataset_tags WHERE dataset_id = ?`, d.Tags, ids[i]); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// UpdateDataset sets a dataset's description.
func (s *Store) UpdateDataset(ctx context.Context, name, description string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateText("description", description, MaxDescriptionLength); err != nil {
		return err
	}
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE data_datasets SET description = ?, last_update_time = ? WHERE name = ?`), description, now(), name)
	return checkUpdated(res, err, notFoundDataset(name))
}

func checkUpdated(res sql.Result, err error, notFound error) error {
	if err != nil {
		return fmt.Errorf("dataset: update: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}

// SetDatasetTag sets one tag of a dataset.
func (s *Store) SetDatasetTag(ctx context.Context, name, key, value string) error {
	if err := validateTag(key, value); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, err := s.datasetID(ctx, tx, name)
		if err != nil {
			return err
		}
		return s.setTags(ctx, tx, "data_dataset_tags", []string{"dataset_id"}, []any{id}, map[string]string{key: value})
	})
}

// DeleteDatasetTag deletes one tag of a dataset.
func (s *Store) DeleteDatasetTag(ctx context.Context, name, key string) error {
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, err := s.datasetID(ctx, tx, name)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM data_dataset_tags WHERE dataset_id = ? AND key = ?`), id, key)
		return checkUpdated(res, err, errdefs.NotFound("Dataset '%s' has no tag '%s'", name, key))
	})
}

// DeleteDataset deletes a dataset, its versions and their metadata
// (objects stay in the remote, where other versions may share them). A
// dataset whose versions are the parents of splits in other datasets
// cannot be deleted before them.
func (s *Store) DeleteDataset(ctx context.Context, name string) error {
	return s.db.Tx(ctx, func(tx store.Tx) error {
		id, err := s.datasetID(ctx, tx, name)
		if err != nil {
			return err
		}
		var child string
		var ver int64
		err = tx.QueryRowContext(ctx, s.db.Rebind(`SELECT d.name, v.version FROM data_versions v JOIN data_datasets d ON d.dataset_id = v.dataset_id
			WHERE v.parent_dataset_id = ? AND v.dataset_id <> ? LIMIT 1`), id, id).Scan(&child, &ver)
		if err == nil {
			return errdefs.InvalidState("Dataset '%s' cannot be deleted: version %s was derived from it", name, VersionRef{child, ver})
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("dataset: delete: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM data_datasets WHERE dataset_id = ?`), id); err != nil {
			return fmt.Errorf("dataset: delete: %w", err)
		}
		return nil
	})
}

// datasetID returns the id of a dataset, inside tx.
func (s *Store) datasetID(ctx context.Context, q querier, name string) (int64, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	var id int64
	err := q.QueryRowContext(ctx, s.db.Rebind(`SELECT dataset_id FROM data_datasets WHERE name = ?`), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFoundDataset(name)
	}
	if err != nil {
		return 0, fmt.Errorf("dataset: %w", err)
	}
	return id, nil
}
