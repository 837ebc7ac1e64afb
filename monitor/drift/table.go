package drift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// DefaultMaxExactValues bounds the values ProfileFiles holds in exact mode
// (8 bytes each: 512 MiB). A table with more falls back to sketches.
const DefaultMaxExactValues = 64 << 20

// TableOptions tune ProfileFiles.
type TableOptions struct {
	// Columns restricts the profile to these columns (all when empty).
	Columns []string
	// Exact holds every value (numbers as float64, categories as counts)
	// so that the tests are exactly Evidently's, when the tables have at
	// most MaxExactValues values; otherwise, and by default, the columns
	// are sketched (dataset/profile: KLL quantiles, exact counts of up to
	// profile.DefaultFreqCapacity distinct values).
	Exact          bool
	MaxExactValues int64
	// Parallelism caps the goroutines per file (GOMAXPROCS when 0).
	Parallelism int
}

// Table is the profile of one or more table files of the same schema.
type Table struct {
	// Rows is the number of rows read; Exact says the profile holds every
	// value rather than sketches.
	Rows  int64
	Exact bool
	validate.Profile
	types map[string]table.Type
}

// ColumnType implements ColumnTyper.
func (t *Table) ColumnType(column string) (table.Type, bool) {
	typ, ok := t.types[column]
	return typ, ok
}

// ErrTooLarge is returned (wrapped) by an exact profile past its value
// budget; ProfileFiles then falls back to sketches.
var ErrTooLarge = errors.New("too many values to hold exactly")

// ProfileFiles reads the table files at paths (CSV, Parquet or JSON Lines;
// the same columns in each) and profiles them for Compare. Files are read
// in parallel, and each file's columns are profiled in parallel while the
// next batch is decoded.
func ProfileFiles(ctx context.Context, paths []string, opts TableOptions) (*Table, error) {
	if len(paths) == 0 {
		return nil, errdefs.Invalid("drift: no table file to profile")
	}
	if opts.Exact {
		budget := opts.MaxExactValues
		if budget <= 0 {
			budget = DefaultMaxExactValues
		}
		t, err := profileExact(ctx, paths, opts, budget)
		if !errors.Is(err, ErrTooLarge) {
			return t, err
		}
	}
	profiles := make([]*profile.Profile, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() {
			r, err := table.Open(ctx, path, table.Options{Columns: opts.Columns, Parallelism: opts.Parallelism})
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close()
			profiles[i], errs[i] = profile.Compute(ctx, r, profile.Options{Parallelism: opts.Parallelism})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", path, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := profiles[0]
	for i, o := range profiles[1:] {
		if err := p.MergeFrom(o); err != nil {
			return nil, fmt.Errorf("%s: %w", paths[i+1], err)
		}
	}
	t := &Table{Rows: p.Rows, Profile: validate.FromProfile(p), types: map[string]table.Type{}}
	for _, c := range p.Columns {
		t.types[c.Field.Name] = c.Field.Type
	}
	return t, nil
}

// exactColumn holds one column's values: finite numbers (numeric and bool
// columns, bools as 0 and 1), or counts per category (strings).
type exactColumn struct {
	field  table.Field
	nums   []float64
	counts map[string]float64
	codes  []float64
	sorted bool
}

func (c *exactColumn) add(col *table.Column, n int) {
	valid := func(i int) bool { return col.Valid == nil || col.Valid.Valid(i) }
	switch col.Type {
	case table.Float64:
		for i, v := range col.Floats[:n] {
			if valid(i) && !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.nums = append(c.nums, v)
			}
		}
	case table.Int64, table.Date:
		for i, v := range col.Ints[:n] {
			if valid(i) {
				c.nums = append(c.nums, float64(v))
			}
		}
	case table.Timestamp:
		per := float64(c.field.Unit.PerSecond())
		if per == 0 {
			per = 1e9
		}
		for i, v := range col.Ints[:n] {
			if valid(i) {
				c.nums = append(c.nums, float64(v)/per) // seconds, as validate compares them
			}
		}
	case table.Bool:
		for i, v := range col.Bools[:n] {
			if valid(i) {
				x := 0.0
				if v {
					x = 1
				}
				c.nums = append(c.nums, x)
			}
		}
	case table.String:
		if c.counts == nil {
			c.counts = map[string]float64{}
		}
		if col.Dict != nil {
			d := col.Dict.Len()
			if cap(c.codes) < d {
				c.codes = make([]float64, d)
			}
			c.codes = c.codes[:d]
			clear(c.codes)
			for i, code := range col.Codes[:n] {
				if valid(i) {
					c.codes[code]++
				}
			}
			for k, cnt := range c.codes {
				if cnt > 0 {
					c.counts[string(col.Dict.At(k))] += cnt
				}
			}
			return
		}
		for i := range n {
			if valid(i) {
				c.counts[string(col.Strs.At(i))]++
			}
		}
	}
}

func (c *exactColumn) size() int64 { return int64(len(c.nums)) + int64(len(c.counts)) }

// exactProfile implements validate.Profile over exactColumns.
type exactProfile struct {
	names []string
	cols  map[string]*exactColumn
}

func (p *exactProfile) Columns() []string { return p.names }

func (p *exactProfile) Distribution(column string, kind stattest.Kind) (stattest.Column, error) {
	c, ok := p.cols[column]
	if !ok {
		return stattest.Column{}, errdefs.NotFound("no column %q in the profile", column)
	}
	t := c.field.Type
	if kind == 0 {
		kind = stattest.Numerical
		if t == table.String || t == table.Bool {
			kind = stattest.Categorical
		}
	}
	if kind == stattest.Numerical {
		if t == table.String {
			return stattest.Column{}, errdefs.Invalid("column %q is string: a numerical test needs numbers", column)
		}
		return stattest.Column{Kind: stattest.Numerical, Sample: stattest.NewSample(c.nums)}, nil
	}
	switch t {
	case table.String:
		return stattest.Column{Kind: stattest.Categorical, Counts: c.counts}, nil
	case table.Timestamp, table.Date:
		return stattest.Column{}, errdefs.Invalid("column %q is %s: a categorical test needs strings, bools or numbers", column, t)
	}
	// Numbers and bools as categories, written as dataset/profile writes
	// them (so that an exact side compares with a sketched one).
	counts := map[string]float64{}
	for i := 0; i < len(c.nums); {
		j := i + 1
		for j < len(c.nums) && c.nums[j] == c.nums[i] {
			j++
		}
		var key string
		switch t {
		case table.Bool:
			key = strconv.FormatBool(c.nums[i] == 1)
		case table.Int64:
			key = strconv.FormatInt(int64(c.nums[i]), 10)
		default:
			key = strconv.FormatFloat(c.nums[i], 'g', -1, 64)
		}
		counts[key] += float64(j - i)
		i = j
	}
	return stattest.Column{Kind: stattest.Categorical, Counts: counts}, nil
}

func profileExact(ctx context.Context, paths []string, opts TableOptions, budget int64) (*Table, error) {
	var (
		schema table.Schema
		prof   = &exactProfile{cols: map[string]*exactColumn{}}
		rows   int64
	)
	for fi, path := range paths {
		r, err := table.Open(ctx, path, table.Options{Columns: opts.Columns, Parallelism: opts.Parallelism})
		if err != nil {
			return nil, err
		}
		s := r.Schema()
		if fi == 0 {
			schema = s
			for _, f := range s.Fields {
				if f.Type == table.Invalid {
					continue
				}
				prof.names = append(prof.names, f.Name)
				prof.cols[f.Name] = &exactColumn{field: f}
			}
		} else if !sameColumns(schema, s) {
			r.Close()
			return nil, errdefs.Invalid("%s: its columns differ from those of %s", path, paths[0])
		}
		err = exactRead(ctx, r, prof, schema, &rows, budget)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	// Sort each numeric column once (in parallel), so that the tests'
	// samples are built from sorted input.
	var wg sync.WaitGroup
	for _, c := range prof.cols {
		if len(c.nums) > 0 {
			wg.Go(func() { slices.Sort(c.nums) })
		}
	}
	wg.Wait()
	t := &Table{Rows: rows, Exact: true, Profile: prof, types: map[string]table.Type{}}
	for _, f := range schema.Fields {
		t.types[f.Name] = f.Type
	}
	return t, nil
}

func sameColumns(a, b table.Schema) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || a.Fields[i].Type != b.Fields[i].Type {
			return false
		}
	}
	return true
}

// exactRead adds every batch of r, columns spread over goroutines.
func exactRead(ctx context.Context, r table.Reader, prof *exactProfile, schema table.Schema, rows *int64, budget int64) error {
	cols := make([]*exactColumn, len(schema.Fields))
	for i, f := range schema.Fields {
		cols[i] = prof.cols[f.Name]
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for i, c := range cols {
			if c != nil {
				wg.Go(func() { c.add(&b.Columns[i], b.Len) })
			}
		}
		wg.Wait()
		*rows += int64(b.Len)
		var held int64
		for _, c := range cols {
			if c != nil {
				held += c.size()
			}
		}
		if held > budget {
			return fmt.Errorf("drift: more than %d values: %w", budget, ErrTooLarge)
		}
	}
}
