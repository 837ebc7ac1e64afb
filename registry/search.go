package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/store"
)

// Search limits, as MLflow's.
const (
	DefaultSearchModels  = 100
	MaxSearchModels      = 1000
	DefaultSearchVersion = 10000
	MaxSearchVersions    = 200000
)

// SearchQuery is a registry search.
type SearchQuery struct {
	Filter     string
	MaxResults int
	OrderBy    []string
	PageToken  string
}

func (q *SearchQuery) page(def, max int) (int, error) {
	if q.MaxResults <= 0 {
		q.MaxResults = def
	}
	if q.MaxResults > max {
		return 0, errdefs.Invalid("Invalid value for request parameter max_results. It must be at most %d, but got value %d", max, q.MaxResults)
	}
	return filter.DecodePageToken(q.PageToken)
}

// SearchRegisteredModels searches models by name and tags.
func (s *Store) SearchRegisteredModels(ctx context.Context, q SearchQuery) ([]*RegisteredModel, string, error) {
	offset, err := q.page(DefaultSearchModels, MaxSearchModels)
	if err != nil {
		return nil, "", err
	}
	clauses, err := filter.Parse(q.Filter)
	if err != nil {
		return nil, "", err
	}
	where := []string{"1 = 1"}
	var args []any
	for _, c := range clauses {
		switch {
		case c.Entity == filter.Attribute && c.Key == "name":
			if c.Value.IsNum {
				return nil, "", errdefs.Invalid("Invalid filter '%s': name must be compared to a quoted string", q.Filter)
			}
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, "m.name", c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			where = append(where, sqlc)
			args = append(args, a...)
		case c.Entity == filter.Tag:
			sqlc, a, err := tagCondition(s.db.Dialect, "registered_model_tags t WHERE t.name = m.name", c)
			if err != nil {
				return nil, "", err
			}
			where = append(where, sqlc)
			args = append(args, a...)
		default:
			return nil, "", errdefs.Invalid("Invalid filter '%s': search registered models supports 'name' and 'tags.<key>'", q.Filter)
		}
	}
	cols := map[string]string{"name": "m.name", "creation_timestamp": "m.creation_time", "timestamp": "m.creation_time",
		"last_updated_timestamp": "m.last_updated_time"}
	order, err := orderClauses(q.OrderBy, cols)
	if err != nil {
		return nil, "", err
	}
	order = append(order, "m.name ASC")
	query := `SELECT m.name, m.creation_time, m.last_updated_time, m.description FROM registered_models m WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ? OFFSET ?`
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(query), append(args, q.MaxResults+1, offset)...)
	if err != nil {
		return nil, "", fmt.Errorf("search registered models: %w", err)
	}
	var out []*RegisteredModel
	for rows.Next() {
		var m RegisteredModel
		if err := rows.Scan(&m.Name, &m.CreationTime, &m.LastUpdatedTime, &m.Description); err != nil {
			rows.Close()
			return nil, "", err
		}
		out = append(out, &m)
	}
	rows.Close()
	next := ""
	if len(out) > q.MaxResults {
		out = out[:q.MaxResults]
		next = filter.EncodePageToken(offset + q.MaxResults)
	}
	return out, next, s.loadModels(ctx, out)
}

func orderClauses(orderBy []string, cols map[string]string) ([]string, error) {
	var order []string
	for _, ob := range orderBy {
		o, err := filter.ParseOrderBy(ob)
		if err != nil {
			return nil, err
		}
		col, ok := cols[o.Key]
		if o.Entity != filter.Attribute || !ok {
			return nil, errdefs.Invalid("Invalid order by key '%s' specified.", ob)
		}
		order = append(order, filter.OrderSQL(col, o.Ascending))
	}
	return order, nil
}

// SearchModelVersions searches versions by name, version_number, run_id,
// source_path and tags.
func (s *Store) SearchModelVersions(ctx context.Context, q SearchQuery) ([]*ModelVersion, string, error) {
	offset, err := q.page(DefaultSearchVersion, MaxSearchVersions)
	if err != nil {
		return nil, "", err
	}
	clauses, err := filter.Parse(q.Filter)
	if err != nil {
		return nil, "", err
	}
	where := []string{"mv.deleted = ?"}
	args := []any{false}
	attrs := map[string]string{"name": "mv.name", "run_id": "mv.run_id", "source_path": "mv.source", "version_number": "mv.version", "model_id": "mv.model_id"}
	for _, c := range clauses {
		switch c.Entity {
		case filter.Attribute:
			col, ok := attrs[c.Key]
			if !ok {
				return nil, "", errdefs.Invalid("Invalid attribute '%s' in filter '%s'. Valid attributes are name, version_number, run_id, source_path.", c.Key, q.Filter)
			}
			if (col == "mv.version") != c.Value.IsNum && c.Value.List == nil {
				return nil, "", errdefs.Invalid("Invalid value for '%s' in filter '%s'", c.Key, q.Filter)
			}
			sqlc, a, err := filter.CompareSQL(s.db.Dialect, col, c.Op, c.Value)
			if err != nil {
				return nil, "", err
			}
			where = append(where, sqlc)
			args = append(args, a...)
		case filter.Tag:
			sqlc, a, err := tagCondition(s.db.Dialect, "model_version_tags t WHERE t.name = mv.name AND t.version = mv.version", c)
			if err != nil {
				return nil, "", err
			}
			where = append(where, sqlc)
			args = append(args, a...)
		default:
			return nil, "", errdefs.Invalid("Invalid entity in filter '%s'", q.Filter)
		}
	}
	cols := map[string]string{"name": "mv.name", "version_number": "mv.version", "creation_timestamp": "mv.creation_time",
		"timestamp": "mv.creation_time", "last_updated_timestamp": "mv.last_updated_time"}
	order, err := orderClauses(q.OrderBy, cols)
	if err != nil {
		return nil, "", err
	}
	order = append(order, "mv.last_updated_time DESC", "mv.name ASC", "mv.version DESC")
	out, err := s.queryVersions(ctx, `WHERE `+strings.Join(where, " AND ")+` ORDER BY `+strings.Join(order, ", ")+` LIMIT ? OFFSET ?`,
		append(args, q.MaxResults+1, offset)...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > q.MaxResults {
		out = out[:q.MaxResults]
		next = filter.EncodePageToken(offset + q.MaxResults)
	}
	return out, next, nil
}

// tagCondition renders a tag clause over "<table> t WHERE <join>". As in
// MLflow's registry, "tags.k != 'v'" also matches entities without tag k
// (the client itself adds "tags.`mlflow.prompt.is_prompt` != 'true'" to
// every model search).
func tagCondition(d store.Dialect, from string, c filter.Clause) (string, []any, error) {
	switch c.Op {
	case filter.Ne:
		return "NOT EXISTS (SELECT 1 FROM " + from + " AND t.key = ? AND t.value = ?)", []any{c.Key, c.Value.Str}, nil
	case filter.IsNull:
		return "NOT EXISTS (SELECT 1 FROM " + from + " AND t.key = ?)", []any{c.Key}, nil
	case filter.IsNotNull:
		return "EXISTS (SELECT 1 FROM " + from + " AND t.key = ?)", []any{c.Key}, nil
	}
	sqlc, a, err := filter.CompareSQL(d, "t.value", c.Op, c.Value)
	if err != nil {
		return "", nil, err
	}
	return "EXISTS (SELECT 1 FROM " + from + " AND t.key = ? AND " + sqlc + ")", append([]any{c.Key}, a...), nil
}
