// Package validate checks tables against validation suites: rules written
// in YAML (types, not-null with mostly, ranges, allowed values, regular
// expressions, uniqueness, row count, freshness, and distribution distance
// to a reference version), evaluated in one streaming pass, with a report
// per rule that serialises to JSON and renders as a text table. Skew
// compares two profiles — a dataset version's and one of live traffic —
// feature by feature with the drift tests of package stattest.
//
// Run reads the table once. Every row-level rule is compiled for its
// column's type before the first batch, and each batch is checked rule by
// rule on the typed vectors of table.Batch: nothing is allocated per value
// (dictionary-encoded strings are checked once per dictionary entry).
// Aggregate rules (row count, freshness, distribution) are decided after
// the pass. A rule that cannot be evaluated — an unknown column, a column of
// the wrong type, a reference that cannot be read — gets status "error" and
// fails like a failed check; it never stops the run.
//
// The rule format is documented in docs/data-validation.md.
package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/stattest"
)

// Source is a table to validate; table.Reader satisfies it.
type Source interface {
	Schema() table.Schema
	Next(ctx context.Context) (*table.Batch, error)
}

// Profile gives the distribution of a table's columns: the reference of a
// distribution rule, or either side of a skew comparison. TableProfile
// (sampled from a table) implements it.
type Profile interface {
	// Columns lists the profiled columns.
	Columns() []string
	// Distribution returns the named column's values for the tests, as
	// kind (0: the column's natural kind: numerical for numbers, timestamps
	// and dates, categorical for strings and bools). An unknown column is
	// an errdefs.ErrNotFound error.
	Distribution(column string, kind stattest.Kind) (stattest.Column, error)
}

// ReferenceFunc resolves a distribution rule's reference (a dataset version
// as the caller names it) to its profile.
type ReferenceFunc func(ctx context.Context, name string) (Profile, error)

// Defaults of Options.
const (
	DefaultExamples = 5
	// DefaultMaxUniqueKeys bounds a uniqueness rule's memory: each distinct
	// key is kept as a 128-bit digest in an open-addressing table of 16-byte
	// slots at most three-quarters full, so 10M keys take at most 256 MiB
	// (384 MiB while the table doubles).
	DefaultMaxUniqueKeys = 10_000_000
	// DefaultSampleSize is how many values of a column a distribution rule
	// samples (uniformly, reservoir sampling) from each side; columns with
	// fewer values are used whole.
	DefaultSampleSize = 100_000
	// MaxCategories bounds the distinct values a categorical distribution
	// test counts.
	MaxCategories = 100_000
)

// Options tune a run. The zero value works; distribution rules then fail
// with an error unless References is set.
type Options struct {
	// Now is the clock of freshness rules (time.Now when nil).
	Now func() time.Time
	// References resolves distribution rules' references.
	References ReferenceFunc
	// DefaultReference is used by distribution rules when neither the rule
	// nor the suite names a reference (e.g. the dataset's previous version).
	DefaultReference string
	// Examples is how many failing values a rule reports (DefaultExamples
	// when 0; negative for none).
	Examples int
	// MaxUniqueKeys caps the distinct keys of a uniqueness rule
	// (DefaultMaxUniqueKeys when 0). Past it the rule reports an error.
	MaxUniqueKeys int
	// SampleSize is the default number of values a distribution rule
	// samples per side (DefaultSampleSize when 0).
	SampleSize int
	// Seed makes the sampling of distribution rules reproducible (runs with
	// the same seed and data sample the same values).
	Seed uint64
	// Logger receives debug messages (none when nil).
	Logger *slog.Logger
}

func (o *Options) examples() int {
	switch {
	case o.Examples < 0:
		return 0
	case o.Examples == 0:
		return DefaultExamples
	}
	return o.Examples
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Run validates src against suite in one pass over its rows.
// The error is non-nil only when the table cannot be read (then the
// report is nil); failing rules are reported, not returned as errors.
func Run(ctx context.Context, suite *Suite, src Source, opts Options) (*Report, error) {
	if suite == nil {
		return nil, errors.New("validate: nil suite")
	}
	start := time.Now()
	schema := src.Schema()
	env := &env{schema: schema, opts: &opts, maxEx: opts.examples()}
	rules := make([]compiled, len(suite.Rules))
	var row []rowRule
	for i := range suite.Rules {
		r := &suite.Rules[i]
		c, err := compile(env, r)
		rules[i] = compiled{rule: r, check: c, err: err}
		if err == nil {
			if rr, ok := c.(rowRule); ok {
				row = append(row, rr)
			}
		}
	}
	var rows int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("validate: reading row %d: %w", rows, err)
		}
		if err := checkBatch(b, schema); err != nil {
			return nil, fmt.Errorf("validate: rows from %d: %w", rows, err)
		}
		for _, r := range row {
			r.observe(b, rows)
		}
		rows += int64(b.Len)
	}
	rep := &Report{Suite: suite.Name, Rows: rows, StartedAt: start.UTC()}
	refs := &referenceCache{resolve: opts.References, profiles: map[string]refResult{}}
	for _, c := range rules {
		res := Result{Rule: c.rule.Name, Check: c.rule.Check, Columns: c.rule.Columns, Severity: c.rule.Severity}
		if c.err != nil {
			res.Status, res.Error = StatusError, c.err.Error()
		} else {
			c.check.finish(ctx, &res, rows, suite, refs)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.summarise()
	rep.DurationMS = time.Since(start).Milliseconds()
	if opts.Logger != nil {
		opts.Logger.Debug("validation done", "suite", suite.Name, "rows", rows, "passed", rep.Passed, "ms", rep.DurationMS)
	}
	return rep, nil
}

// checkBatch verifies the shape of a batch (cheaply: types and lengths,
// not string offsets) so that a malformed source gives an error, not a
// panic.
func checkBatch(b *table.Batch, s table.Schema) error {
	if len(b.Columns) != len(s.Fields) {
		return fmt.Errorf("batch has %d columns, schema %d", len(b.Columns), len(s.Fields))
	}
	for i := range b.Columns {
		c := &b.Columns[i]
		if c.Type != s.Fields[i].Type || c.Len() != b.Len || (c.Valid != nil && len(c.Valid) < (b.Len+63)/64) {
			return fmt.Errorf("column %q: batch column of type %v with %d rows, schema type %v, batch %d rows",
				s.Fields[i].Name, c.Type, c.Len(), s.Fields[i].Type, b.Len)
		}
		if c.Type == table.String && c.Dict != nil {
			n := c.Dict.Len()
			for _, code := range c.Codes {
				if code < 0 || int(code) >= n {
					return fmt.Errorf("column %q: dictionary code %d out of range", s.Fields[i].Name, code)
				}
			}
		}
	}
	return nil
}

type compiled struct {
	rule  *Rule
	check check
	err   error
}

// check is a compiled rule.
type check interface {
	// finish fills res (status, observed, expected…) once every row has
	// been seen.
	finish(ctx context.Context, res *Result, rows int64, suite *Suite, refs *referenceCache)
}

// rowRule is a check that looks at every batch.
type rowRule interface {
	check
	observe(b *table.Batch, base int64)
}

type env struct {
	schema table.Schema
	opts   *Options
	maxEx  int
}

// column finds a rule's column in the schema.
func (e *env) column(name string) (int, *table.Field, error) {
	i := e.schema.Index(name)
	if i < 0 {
		return -1, nil, fmt.Errorf("no column %q in the table", name)
	}
	return i, &e.schema.Fields[i], nil
}

type referenceCache struct {
	resolve  ReferenceFunc
	profiles map[string]refResult
}

type refResult struct {
	p   Profile
	err error
}

func (c *referenceCache) get(ctx context.Context, name string) (Profile, error) {
	if r, ok := c.profiles[name]; ok {
		return r.p, r.err
	}
	var r refResult
	if c.resolve == nil {
		r.err = errors.New("no reference resolver: this run cannot read reference versions")
	} else {
		r.p, r.err = c.resolve(ctx, name)
		if r.err != nil {
			r.err = fmt.Errorf("reference %q: %w", name, r.err)
		}
	}
	c.profiles[name] = r
	return r.p, r.err
}
