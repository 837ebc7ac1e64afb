package registry

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/store"
)

// Search limits, as MLflow's.
const (
	DefaultSearchModels  = 100
	MaxSearchModels      = 1000
	DefaultSearchVersion = 200000
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
		var sqlc string
		var a []any
		switch c.Entity {
		case filter.Attribute:
			if c.Key != "name" {
				return nil, "", errdefs.Invalid("Invalid attribute name: %s", c.Key)
			}
			sqlc, a, err = attributeCondition(s.db.Dialect, "m.name", c, false)
		case filter.Tag:
			sqlc, a, err = tagCondition(s.db.Dialect, "registered_model_tags t WHERE t.name = m.name", c)
		default:
			return nil, "", invalidEntity(c)
		}
		if err != nil {
			return nil, "", err
		}
		where = append(where, sqlc)
		args = append(args, a...)
	}
	cols := map[string]string{"name": "m.name", "creation_timestamp": "m.creation_time", "timestamp": "m.creation_time",
		"last_updated_timestamp": "m.last_updated_time"}
	order, err := orderClauses(q.OrderBy, cols, "'name', 'creation_timestamp', 'last_updated_timestamp'")
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

func orderClauses(orderBy []string, cols map[string]string, valid string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	for _, ob := range orderBy {
		o, err := filter.ParseOrderBy(ob)
		if err != nil {
			return nil, err
		}
		col, ok := cols[o.Key]
		if o.Entity != filter.Attribute || !ok {
			return nil, errdefs.Invalid("Invalid order by key '%s' specified. Valid keys are %s", o.Key, valid)
		}
		if seen[col] {
			return nil, errdefs.Invalid("`order_by` contains duplicate fields: %s", pyList(orderBy))
		}
		seen[col] = true
		order = append(order, filter.OrderSQL(col, o.Ascending))
	}
	return order, nil
}

// pyList renders strings as Python's repr of a list.
func pyList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = pyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
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
		var sqlc string
		var a []any
		switch c.Entity {
		case filter.Attribute:
			col, ok := attrs[c.Key]
			if !ok {
				return nil, "", errdefs.Invalid("Invalid attribute name: %s", c.Key)
			}
			if c.Key == "version_number" {
				sqlc, a, err = versionNumberCondition(c)
			} else {
				sqlc, a, err = attributeCondition(s.db.Dialect, col, c, c.Key == "run_id")
			}
		case filter.Tag:
			sqlc, a, err = tagCondition(s.db.Dialect, "model_version_tags t WHERE t.name = mv.name AND t.version = mv.version", c)
		default:
			return nil, "", invalidEntity(c)
		}
		if err != nil {
			return nil, "", err
		}
		where = append(where, sqlc)
		args = append(args, a...)
	}
	cols := map[string]string{"name": "mv.name", "version_number": "mv.version", "creation_timestamp": "mv.creation_time",
		"timestamp": "mv.creation_time", "last_updated_timestamp": "mv.last_updated_time"}
	order, err := orderClauses(q.OrderBy, cols, "'name', 'version_number', 'creation_timestamp', 'last_updated_timestamp'")
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

func invalidEntity(c filter.Clause) error {
	return errdefs.Invalid("Invalid entity type '%s'. Valid values are ['attribute', 'tag']", strings.TrimSuffix(c.Entity.String(), "s"))
}

// attributeCondition renders a string attribute clause: = != LIKE ILIKE,
// and IN where allowIn (run_id), as MLflow's registry store allows.
func attributeCondition(d store.Dialect, col string, c filter.Clause, allowIn bool) (string, []any, error) {
	switch c.Op {
	case filter.Eq, filter.Ne, filter.Like, filter.ILike:
	case filter.In:
		if !allowIn {
			return "", nil, errdefs.Invalid("Invalid comparator for attribute: %s", c.Op)
		}
	default:
		return "", nil, errdefs.Invalid("Invalid comparator for attribute: %s", c.Op)
	}
	if c.Op != filter.In && c.Value.IsNum {
		return "", nil, errdefs.Invalid("Expected a quoted string value for attributes. Got value %s", formatNum(c.Value.Num))
	}
	return filter.CompareSQL(d, col, c.Op, c.Value)
}

// versionNumberCondition renders a version_number clause: numeric
// comparisons, or IN over a list of integers.
func versionNumberCondition(c filter.Clause) (string, []any, error) {
	switch {
	case c.Op == filter.In || c.Op == filter.NotIn:
		args := make([]any, len(c.Value.List))
		for i, s := range c.Value.List {
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return "", nil, errdefs.Invalid("Expected numeric values for version_number. Got value %s", s)
			}
			args[i] = v
		}
		return "mv.version " + string(c.Op) + " (" + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ")", args, nil
	case !c.Op.Numeric():
		return "", nil, errdefs.Invalid("Invalid comparator for attribute: %s", c.Op)
	case !c.Value.IsNum:
		return "", nil, errdefs.Invalid("Expected numeric value type for version_number. Found '%s'", c.Value.Str)
	}
	return "mv.version " + string(c.Op) + " ?", []any{c.Value.Num}, nil
}

func formatNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// tagCondition renders a tag clause over "<table> t WHERE <join>". As in
// MLflow's registry, "tags.k != 'v'" also matches entities without tag k
// (the client itself adds "tags.`mlflow.prompt.is_prompt` != 'true'" to
// every model search).
func tagCondition(d store.Dialect, from string, c filter.Clause) (string, []any, error) {
	switch c.Op {
	case filter.Eq, filter.Ne, filter.Like, filter.ILike:
	default:
		return "", nil, errdefs.Invalid("Invalid comparator for tag: %s", c.Op)
	}
	if c.Op == filter.Ne {
		return "NOT EXISTS (SELECT 1 FROM " + from + " AND t.key = ? AND t.value = ?)", []any{c.Key, c.Value.Str}, nil
	}
	sqlc, a, err := filter.CompareSQL(d, "t.value", c.Op, c.Value)
	if err != nil {
		return "", nil, err
	}
	return "EXISTS (SELECT 1 FROM " + from + " AND t.key = ? AND " + sqlc + ")", append([]any{c.Key}, a...), nil
}
