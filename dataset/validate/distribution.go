package validate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// reservoir keeps a uniform random sample of at most k values of a stream
// (Li's Algorithm L: the gaps between replacements are drawn directly, so
// a long stream costs one comparison per value).
type reservoir struct {
	k    int
	vals []float64
	seen int64
	next int64 // 1-based position of the next value to take
	w    float64
	rng  *rand.Rand
}

func newReservoir(k int, seed uint64, name string) *reservoir {
	h := fnv.New64a()
	h.Write([]byte(name))
	return &reservoir{k: k, rng: rand.New(rand.NewPCG(seed, h.Sum64()))}
}

func (r *reservoir) uniform() float64 {
	for {
		if u := r.rng.Float64(); u > 0 {
			return u
		}
	}
}

func (r *reservoir) skip() {
	r.next += int64(math.Floor(math.Log(r.uniform())/math.Log1p(-r.w))) + 1
}

func (r *reservoir) add(v float64) {
	r.seen++
	if len(r.vals) < r.k {
		r.vals = append(r.vals, v)
		if len(r.vals) == r.k {
			r.w = math.Exp(math.Log(r.uniform()) / float64(r.k))
			r.next = r.seen
			r.skip()
		}
		return
	}
	if r.seen == r.next {
		r.vals[r.rng.IntN(r.k)] = v
		r.w *= math.Exp(math.Log(r.uniform()) / float64(r.k))
		r.skip()
	}
}

// collector gathers one column's values for a distribution test: a
// reservoir sample of numbers, or exact counts per category.
type collector struct {
	name  string
	kind  stattest.Kind
	field *table.Field
	res   *reservoir
	// categorical
	index   map[string]int
	counts  []float64
	scratch []byte
	codes   []float64
	err     error
}

// naturalKind is how a column of type t is compared by default.
func naturalKind(t table.Type) stattest.Kind {
	if t == table.String || t == table.Bool {
		return stattest.Categorical
	}
	return stattest.Numerical
}

func newCollector(f *table.Field, kind stattest.Kind, sampleSize int, seed uint64) (*collector, error) {
	if kind == 0 {
		kind = naturalKind(f.Type)
	}
	if kind == stattest.Numerical && f.Type == table.String {
		return nil, fmt.Errorf("column %q is string: a numerical test needs numbers", f.Name)
	}
	if kind == stattest.Categorical && (f.Type == table.Timestamp || f.Type == table.Date) {
		return nil, fmt.Errorf("column %q is %s: a categorical test needs strings, bools or numbers", f.Name, f.Type)
	}
	c := &collector{name: f.Name, kind: kind, field: f}
	if kind == stattest.Numerical {
		c.res = newReservoir(sampleSize, seed, f.Name)
	} else {
		c.index = map[string]int{}
	}
	return c, nil
}

// category adds w observations of the category b.
func (c *collector) category(b []byte, w float64) {
	if k, ok := c.index[string(b)]; ok {
		c.counts[k] += w
		return
	}
	if len(c.counts) >= MaxCategories {
		c.err = fmt.Errorf("column %q has more than %d distinct values: too many for a categorical test", c.name, MaxCategories)
		return
	}
	c.index[string(b)] = len(c.counts)
	c.counts = append(c.counts, w)
}

func (c *collector) observe(col *table.Column, n int) {
	if c.err != nil {
		return
	}
	if c.kind == stattest.Numerical {
		c.observeNumbers(col, n)
		return
	}
	switch col.Type {
	case table.String:
		if col.Dict != nil {
			d := col.Dict.Len()
			if cap(c.codes) < d {
				c.codes = make([]float64, d)
			}
			c.codes = c.codes[:d]
			clear(c.codes)
			for i, code := range col.Codes[:n] {
				if valid(col, i) {
					c.codes[code]++
				}
			}
			for k, cnt := range c.codes {
				if cnt > 0 {
					c.category(col.Dict.At(k), cnt)
				}
			}
			return
		}
		for i := 0; i < n; i++ {
			if valid(col, i) {
				c.category(col.Strs.At(i), 1)
			}
		}
	case table.Bool:
		for i, v := range col.Bools[:n] {
			if valid(col, i) {
				c.category(strconv.AppendBool(c.scratch[:0], v), 1)
			}
		}
	case table.Float64:
		for i, v := range col.Floats[:n] {
			if valid(col, i) && !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.scratch = strconv.AppendFloat(c.scratch[:0], v, 'g', -1, 64)
				c.category(c.scratch, 1)
			}
		}
	default: // Int64, Timestamp, Date: their integer text
		for i, v := range col.Ints[:n] {
			if valid(col, i) {
				c.scratch = strconv.AppendInt(c.scratch[:0], v, 10)
				c.category(c.scratch, 1)
			}
		}
	}
}

func (c *collector) observeNumbers(col *table.Column, n int) {
	switch col.Type {
	case table.Float64:
		for i, v := range col.Floats[:n] {
			if valid(col, i) && !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.res.add(v)
			}
		}
	case table.Int64:
		for i, v := range col.Ints[:n] {
			if valid(col, i) {
				c.res.add(float64(v))
			}
		}
	case table.Timestamp:
		per := float64(c.field.Unit.PerSecond())
		if per == 0 {
			per = 1e9
		}
		for i, v := range col.Ints[:n] {
			if valid(col, i) {
				c.res.add(float64(v) / per) // seconds, whatever the unit
			}
		}
	case table.Date:
		for i, v := range col.Ints[:n] {
			if valid(col, i) {
				c.res.add(float64(v))
			}
		}
	case table.Bool:
		for i, v := range col.Bools[:n] {
			if valid(col, i) {
				x := 0.0
				if v {
					x = 1
				}
				c.res.add(x)
			}
		}
	}
}

// column returns the collected values as the tests take them, as kind
// (0: the collector's own).
func (c *collector) column(kind stattest.Kind) (stattest.Column, error) {
	if c.err != nil {
		return stattest.Column{}, c.err
	}
	if kind == 0 {
		kind = c.kind
	}
	if c.kind == stattest.Numerical {
		s := stattest.NewSample(c.res.vals)
		if kind == stattest.Numerical {
			return stattest.Column{Kind: stattest.Numerical, Sample: s, Rows: float64(c.res.seen)}, nil
		}
		if c.field.Type == table.Timestamp || c.field.Type == table.Date {
			return stattest.Column{}, fmt.Errorf("column %q is %s: a categorical test needs strings, bools or numbers", c.name, c.field.Type)
		}
		// Categories from the sampled numbers, written as the current side
		// writes them.
		counts := map[string]float64{}
		for _, v := range s.Values() {
			if c.field.Type == table.Float64 {
				counts[fmtFloat(v)]++
			} else {
				counts[strconv.FormatInt(int64(v), 10)]++
			}
		}
		return stattest.Column{Kind: stattest.Categorical, Counts: counts, Rows: float64(c.res.seen)}, nil
	}
	counts := make(map[string]float64, len(c.counts))
	total := 0.0
	for k, i := range c.index {
		counts[k] = c.counts[i]
		total += c.counts[i]
	}
	if kind == stattest.Categorical {
		return stattest.Column{Kind: stattest.Categorical, Counts: counts}, nil
	}
	if c.field.Type != table.Bool {
		return stattest.Column{}, fmt.Errorf("column %q is %s: a numerical test needs numbers", c.name, c.field.Type)
	}
	s, err := stattest.NewWeightedSample([]float64{0, 1}, []float64{counts["false"], counts["true"]})
	if err != nil {
		return stattest.Column{}, err
	}
	return stattest.Column{Kind: stattest.Numerical, Sample: s, Rows: total}, nil
}

// ---- distribution rule ----

type distributionCheck struct {
	rule *Rule
	col  int
	coll *collector
	opts *Options
}

func compileDistribution(e *env, r *Rule) (check, error) {
	i, f, err := e.column(r.Columns[0])
	if err != nil {
		return nil, err
	}
	size := r.SampleSize
	if size == 0 {
		size = e.opts.SampleSize
	}
	if size <= 0 {
		size = DefaultSampleSize
	}
	coll, err := newCollector(f, r.Kind, size, e.opts.Seed)
	if err != nil {
		return nil, err
	}
	return &distributionCheck{rule: r, col: i, coll: coll, opts: e.opts}, nil
}

func (c *distributionCheck) observe(b *table.Batch, _ int64) {
	c.coll.observe(&b.Columns[c.col], b.Len)
}

func (c *distributionCheck) finish(ctx context.Context, res *Result, _ int64, suite *Suite, refs *referenceCache) {
	name := c.rule.Reference
	if name == "" {
		name = suite.Reference
	}
	if name == "" {
		name = c.opts.DefaultReference
	}
	if name == "" {
		res.Status, res.Error = StatusError, "no reference: name one in the rule or the suite (reference: …)"
		return
	}
	cur, err := c.coll.column(0)
	if err != nil {
		res.Status, res.Error = StatusError, err.Error()
		return
	}
	prof, err := refs.get(ctx, name)
	if err != nil {
		res.Status, res.Error = StatusError, err.Error()
		return
	}
	ref, err := prof.Distribution(c.rule.Columns[0], cur.Kind)
	if err != nil {
		res.Status, res.Error = StatusError, fmt.Sprintf("reference %q: %s", name, errdefs.Message(err))
		return
	}
	d, err := compare(ref, cur, c.rule.Test, c.rule.Threshold)
	if err != nil {
		res.Status, res.Error = StatusError, errdefs.Message(err)
		return
	}
	d.Reference = name
	fillDrift(res, d)
}

// compare runs the test and describes its inputs.
func compare(ref, cur stattest.Column, method stattest.Method, threshold float64) (*Drift, error) {
	r, err := stattest.Test(ref, cur, method, threshold)
	if err != nil {
		return nil, err
	}
	d := &Drift{Test: r, Kind: ref.Kind.String()}
	d.ReferenceValues, d.ReferenceRows = sideCounts(ref)
	d.CurrentValues, d.CurrentRows = sideCounts(cur)
	d.ReferenceSampled = d.ReferenceRows > d.ReferenceValues
	d.CurrentSampled = d.CurrentRows > d.CurrentValues
	return d, nil
}

func sideCounts(c stattest.Column) (values, rows float64) {
	if c.Kind == stattest.Numerical && c.Sample != nil {
		values = c.Sample.Count()
	} else {
		for _, v := range c.Counts {
			values += v
		}
	}
	rows = c.Rows
	if rows == 0 {
		rows = values
	}
	return values, rows
}

func fillDrift(res *Result, d *Drift) {
	r := d.Test
	res.Drift = d
	res.Elements = int64(d.CurrentValues)
	score := "score"
	if r.PValue {
		score = "p-value"
	}
	res.Observed = fmt.Sprintf("%s %s %s", r.Method, score, strconv.FormatFloat(r.Score, 'g', 4, 64))
	switch {
	case r.Method == stattest.MethodKS:
		res.Expected = fmt.Sprintf("p-value > %g", r.Threshold)
	case r.PValue:
		res.Expected = fmt.Sprintf("p-value ≥ %g", r.Threshold)
	default:
		res.Expected = fmt.Sprintf("%s < %g", score, r.Threshold)
	}
	if d.ReferenceSampled || d.CurrentSampled {
		res.Observed += " (sampled)"
	}
	res.Status = StatusPassed
	if r.Drift {
		res.Status = StatusFailed
	}
}

// ---- TableProfile ----

// TableProfile is a Profile read from a table in one pass: for each column
// a uniform sample of up to SampleSize numbers, or exact counts per
// category (strings and bools).
type TableProfile struct {
	rows  int64
	names []string
	cols  map[string]*collector
}

// ProfileOptions tune ProfileTable.
type ProfileOptions struct {
	// Columns restricts the profile to these columns (all when empty).
	Columns []string
	// SampleSize per numeric column (DefaultSampleSize when 0).
	SampleSize int
	// Seed makes the sampling reproducible.
	Seed uint64
}

// ProfileTable reads src once and returns its TableProfile.
func ProfileTable(ctx context.Context, src Source, opts ProfileOptions) (*TableProfile, error) {
	schema := src.Schema()
	size := opts.SampleSize
	if size <= 0 {
		size = DefaultSampleSize
	}
	p := &TableProfile{cols: map[string]*collector{}}
	type slot struct {
		i int
		c *collector
	}
	var slots []slot
	names := opts.Columns
	if len(names) == 0 {
		names = schema.Names()
	}
	for _, name := range names {
		i := schema.Index(name)
		if i < 0 {
			return nil, errdefs.NotFound("no column %q in the table", name)
		}
		if _, dup := p.cols[name]; dup {
			continue
		}
		c, err := newCollector(&schema.Fields[i], 0, size, opts.Seed)
		if err != nil {
			return nil, err
		}
		p.cols[name] = c
		p.names = append(p.names, name)
		slots = append(slots, slot{i, c})
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("profile: reading row %d: %w", p.rows, err)
		}
		for _, s := range slots {
			s.c.observe(&b.Columns[s.i], b.Len)
		}
		p.rows += int64(b.Len)
	}
	return p, nil
}

// Rows returns the number of rows read.
func (p *TableProfile) Rows() int64 { return p.rows }

// Columns implements Profile.
func (p *TableProfile) Columns() []string { return p.names }

// Distribution implements Profile.
func (p *TableProfile) Distribution(column string, kind stattest.Kind) (stattest.Column, error) {
	c, ok := p.cols[column]
	if !ok {
		return stattest.Column{}, errdefs.NotFound("no column %q in the profile", column)
	}
	return c.column(kind)
}

// ReferenceFromTables returns a ReferenceFunc that opens a reference
// version's table with open and profiles it with ProfileTable (once per
// name per run: Run asks for each reference once). The source is closed
// when it has a Close method.
func ReferenceFromTables(open func(ctx context.Context, name string) (Source, error), opts ProfileOptions) ReferenceFunc {
	return func(ctx context.Context, name string) (Profile, error) {
		src, err := open(ctx, name)
		if err != nil {
			return nil, err
		}
		if c, ok := src.(io.Closer); ok {
			defer c.Close()
		}
		return ProfileTable(ctx, src, opts)
	}
}
