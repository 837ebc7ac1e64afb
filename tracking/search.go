package tracking

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
)

// SearchRunsQuery is a search over runs.
type SearchRunsQuery struct {
	ExperimentIDs []string
	Filter        string
	ViewType      ViewType
	MaxResults    int
	OrderBy       []string
	PageToken     string
}

// MaxSearchRunsResults is the largest page search-runs returns.
const MaxSearchRunsResults = 50000

// runAttrCols maps searchable run attributes (and MLflow's aliases) to columns.
var runAttrCols = map[string]string{
	"run_id": "r.run_uuid", "run_uuid": "r.run_uuid",
	"run_name": "r.name", "run name": "r.name", "Run name": "r.name", "Run Name": "r.name",
	"user_id": "r.user_id", "status": "r.status", "artifact_uri": "r.artifact_uri",
	"lifecycle_stage": "r.lifecycle_stage",
	"start_time":      "r.start_time", "end_time": "r.end_time", "created": "r.start_time", "Created": "r.start_time",
}

var numericRunAttrs = map[string]bool{"r.start_time": true, "r.end_time": true}

// sqlBuilder accumulates joins, conditions and their arguments in order.
type sqlBuilder struct {
	joins     []string
	joinArgs  []any
	where     []string
	whereArgs []any
	metricAs  map[string]string // metric key → alias of an inner join
	// orderMetric is the metric the results are ordered by first (""
	// when they are not): a filter on it inner-joins latest_metrics so
	// that its (key, value) index drives both; a filter on any other
	// metric is an EXISTS, so that the order's own index (runs by start
	// time, say) drives the scan and it stops after one page — a join
	// there would read and sort every run that passes the filter.
	orderMetric string
}

func (b *sqlBuilder) metricJoin(key string) string {
	if a, ok := b.metricAs[key]; ok {
		return a
	}
	a := "m" + strconv.Itoa(len(b.metricAs))
	b.metricAs[key] = a
	b.joins = append(b.joins, "JOIN latest_metrics "+a+" ON "+a+".run_uuid = r.run_uuid AND "+a+".key = ?")
	b.joinArgs = append(b.joinArgs, key)
	return a
}

// SearchRuns searches runs; it returns a page and the next page's token.
func (s *Store) SearchRuns(ctx context.Context, q SearchRunsQuery) ([]*Run, string, error) {
	if q.MaxResults <= 0 {
		q.MaxResults = 1000
	}
	if q.MaxResults > MaxSearchRunsResults {
		return nil, "", errdefs.Invalid("Invalid value %d for parameter 'max_results' supplied. It must be at most %d, but got value %d", q.MaxResults, MaxSearchRunsResults, q.MaxResults)
	}
	offset, err := filter.DecodePageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	if len(q.ExperimentIDs) == 0 {
		return nil, "", nil
	}
	clauses, err := filter.Parse(q.Filter)
	if err != nil {
		return nil, "", err
	}
	b := &sqlBuilder{metricAs: map[string]string{}}
	if len(q.OrderBy) > 0 {
		if o, err := filter.ParseOrderBy(q.OrderBy[0]); err == nil && o.Entity == filter.Metric {
			b.orderMetric = o.Key
		}
	}
	expArgs := make([]any, 0, len(q.ExperimentIDs))
	for _, id := range q.ExperimentIDs {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, "", errdefs.Invalid("Invalid experiment id '%s'", id)
		}
		expArgs = append(expArgs, n)
	}
	stages := q.ViewType.stages()
	b.where = append(b.where, "r.experiment_id IN ("+placeholders(len(expArgs))+")", "r.lifecycle_stage IN ("+placeholders(len(stages))+")")
	b.whereArgs = append(append(b.whereArgs, expArgs...), stages...)
	for _, c := range clauses {
		if err := s.runClause(b, c); err != nil {
			return nil, "", err
		}
	}
	var order []string
	orderJoin := 0
	for _, ob := range q.OrderBy {
		o, err := filter.ParseOrderBy(ob)
		if err != nil {
			return nil, "", err
		}
		switch o.Entity {
		case filter.Attribute:
			col, ok := runAttrCols[o.Key]
			if !ok || col == "r.lifecycle_stage" {
				return nil, "", errdefs.Invalid("Invalid attribute key '%s' specified in order_by", o.Key)
			}
			if col == "r.end_time" {
				order = append(order, filter.OrderSQL(col, o.Ascending))
			} else {
				// NOT NULL columns: no NULLs-last term, which would keep
				// the runs index (experiment, stage, start time) from
				// giving the order and make every search sort all runs.
				order = append(order, col+dir(o.Ascending))
			}
		case filter.Metric:
			if a, ok := b.metricAs[o.Key]; ok {
				// Already inner-joined by a filter: no NULLs, and an index on (key, value) can drive the scan.
				order = append(order, a+".value"+dir(o.Ascending))
				continue
			}
			a := "om" + strconv.Itoa(orderJoin)
			orderJoin++
			b.joins = append(b.joins, "LEFT JOIN latest_metrics "+a+" ON "+a+".run_uuid = r.run_uuid AND "+a+".key = ?")
			b.joinArgs = append(b.joinArgs, o.Key)
			order = append(order, "("+a+".value IS NULL OR "+a+".is_nan)", a+".value"+dir(o.Ascending))
		case filter.Param, filter.Tag:
			table := "params"
			if o.Entity == filter.Tag {
				table = "tags"
			}
			a := "o" + strconv.Itoa(orderJoin)
			orderJoin++
			b.joins = append(b.joins, "LEFT JOIN "+table+" "+a+" ON "+a+".run_uuid = r.run_uuid AND "+a+".key = ?")
			b.joinArgs = append(b.joinArgs, o.Key)
			order = append(order, filter.OrderSQL(a+".value", o.Ascending))
		default:
			return nil, "", errdefs.Invalid("Invalid order_by entity '%s' in '%s'", o.Entity, ob)
		}
	}
	order = append(order, "r.start_time DESC", "r.run_uuid")
	query := `SELECT ` + prefixCols("r.", runCols) + ` FROM runs r ` + strings.Join(b.joins, " ") +
		` WHERE ` + strings.Join(b.where, " AND ") + ` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ? OFFSET ?`
	args := append(append(b.joinArgs, b.whereArgs...), q.MaxResults+1, offset)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("search runs: %w", err)
	}
	var runs []*Run
	for rows.Next() {
		info, err := scanRunInfo(rows)
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		runs = append(runs, &Run{Info: *info})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(runs) > q.MaxResults {
		runs = runs[:q.MaxResults]
		next = filter.EncodePageToken(offset + q.MaxResults)
	}
	return runs, next, s.loadRunData(ctx, runs)
}

func dir(asc bool) string {
	if asc {
		return " ASC"
	}
	return " DESC"
}

func (s *Store) runClause(b *sqlBuilder, c filter.Clause) error {
	d := s.db.Dialect
	switch c.Entity {
	case filter.Metric:
		if c.Key != b.orderMetric {
			sqlc, args, err := filter.CompareSQL(d, "x.value", c.Op, c.Value)
			if err != nil {
				return err
			}
			b.where = append(b.where, "EXISTS (SELECT 1 FROM latest_metrics x WHERE x.run_uuid = r.run_uuid AND x.key = ? AND "+sqlc+" AND x.is_nan = ?)")
			b.whereArgs = append(append(append(b.whereArgs, c.Key), args...), false)
			return nil
		}
		a := b.metricJoin(c.Key)
		sqlc, args, err := filter.CompareSQL(d, a+".value", c.Op, c.Value)
		if err != nil {
			return err
		}
		b.where = append(b.where, sqlc, a+".is_nan = ?")
		b.whereArgs = append(append(b.whereArgs, args...), false)
	case filter.Param, filter.Tag:
		table := "params"
		if c.Entity == filter.Tag {
			table = "tags"
		}
		if c.Op == filter.IsNull || c.Op == filter.IsNotNull {
			not := ""
			if c.Op == filter.IsNull {
				not = "NOT "
			}
			b.where = append(b.where, not+"EXISTS (SELECT 1 FROM "+table+" x WHERE x.run_uuid = r.run_uuid AND x.key = ?)")
			b.whereArgs = append(b.whereArgs, c.Key)
			return nil
		}
		sqlc, args, err := filter.CompareSQL(d, "x.value", c.Op, c.Value)
		if err != nil {
			return err
		}
		b.where = append(b.where, "EXISTS (SELECT 1 FROM "+table+" x WHERE x.run_uuid = r.run_uuid AND x.key = ? AND "+sqlc+")")
		b.whereArgs = append(append(b.whereArgs, c.Key), args...)
	case filter.Attribute:
		col, ok := runAttrCols[c.Key]
		if !ok {
			return errdefs.Invalid("Invalid attribute key '%s' specified. Valid keys are '[run_id, run_name, user_id, status, artifact_uri, start_time, end_time, created]'", c.Key)
		}
		if numericRunAttrs[col] {
			if !c.Value.IsNum || !c.Op.Numeric() {
				return errdefs.Invalid("Invalid comparison for numeric attribute '%s': expected a number and one of =, !=, >, >=, <, <=", c.Key)
			}
		} else {
			if c.Value.IsNum {
				return errdefs.Invalid("Invalid value for attribute '%s': expected a quoted string", c.Key)
			}
			switch c.Op {
			case filter.Eq, filter.Ne, filter.Like, filter.ILike:
			case filter.In, filter.NotIn:
				if col != "r.run_uuid" {
					return errdefs.Invalid("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
				}
			default:
				return errdefs.Invalid("Invalid comparator '%s' for string attribute '%s'", c.Op, c.Key)
			}
		}
		sqlc, args, err := filter.CompareSQL(d, col, c.Op, c.Value)
		if err != nil {
			return err
		}
		b.where = append(b.where, sqlc)
		b.whereArgs = append(b.whereArgs, args...)
	case filter.Dataset:
		var col string
		switch c.Key {
		case "name":
			col = "ds.name"
		case "digest":
			col = "ds.digest"
		case "context":
			col = "it.value"
		default:
			return errdefs.Invalid("Invalid dataset key '%s'. Valid keys are '[name, digest, context]'", c.Key)
		}
		sqlc, args, err := filter.CompareSQL(d, col, c.Op, c.Value)
		if err != nil {
			return err
		}
		b.where = append(b.where, `EXISTS (SELECT 1 FROM run_inputs ri JOIN datasets ds ON ds.dataset_uuid = ri.dataset_uuid
			LEFT JOIN input_tags it ON it.input_uuid = ri.input_uuid AND it.name = 'mlflow.data.context'
			WHERE ri.run_uuid = r.run_uuid AND `+sqlc+`)`)
		b.whereArgs = append(b.whereArgs, args...)
	}
	return nil
}
