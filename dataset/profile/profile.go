// Package profile computes data profiles: per-column statistics of a table
// in one streaming pass, built from mergeable sketches so that the profile
// of A ∪ B is Merge(profile(A), profile(B)) within the sketches' error.
//
// Per column a profile holds the row count, missing values (nulls and
// NaN), for numbers (ints, floats, bools as 0/1, timestamps and dates in
// their unit) min, max, mean and standard deviation (Welford per batch,
// Chan et al.'s formula across batches), quantiles from a KLL sketch, a
// distinct count from HyperLogLog++ (2^14 registers), the most frequent
// values from a Misra–Gries sketch (exact while a column has at most
// DefaultFreqCapacity distinct values), and a histogram: fixed bins from
// min to max for numbers, value counts for strings and bools. Infinite
// floats are counted (Inf) and left out of the moments and quantiles.
//
// Std is the sample standard deviation (ddof=1), as pandas' describe()
// reports it.
//
// Profiles are JSON documents; the sketches travel in them as base64 of
// their binary forms, so a stored profile can be merged with a new one or
// used as a drift reference (CDF, Quantiles, BinCounts, Frequencies).
package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// ErrIncompatible is returned (wrapped in an errdefs invalid-argument
// error) when two profiles of different schemas are merged.
var ErrIncompatible = errors.New("incompatible profiles")

// Options tune a profile. Zero values take the defaults.
type Options struct {
	// K is the KLL accuracy parameter (DefaultK).
	K int
	// FreqCapacity is the number of distinct values the frequent-items
	// sketch tracks (DefaultFreqCapacity).
	FreqCapacity int
	// TopK is how many frequent values a column reports (10).
	TopK int
	// HistogramBins is the number of numeric histogram bins (20).
	HistogramBins int
	// MaxCategories and MaxCategoryFraction decide when a string or int
	// column is categorical: at most MaxCategories (50) distinct values,
	// and at most MaxCategoryFraction (0.05) of its non-missing values.
	MaxCategories       int
	MaxCategoryFraction float64
	// Parallelism caps the goroutines Compute uses (GOMAXPROCS).
	Parallelism int
}

func (o Options) withDefaults() Options {
	if o.K <= 0 {
		o.K = DefaultK
	}
	if o.FreqCapacity <= 0 {
		o.FreqCapacity = DefaultFreqCapacity
	}
	if o.TopK <= 0 {
		o.TopK = 10
	}
	if o.HistogramBins <= 0 {
		o.HistogramBins = 20
	}
	if o.MaxCategories <= 0 {
		o.MaxCategories = 50
	}
	if o.MaxCategoryFraction <= 0 {
		o.MaxCategoryFraction = 0.05
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	return o
}

// ReportedQuantiles are the ranks every numeric column reports.
var ReportedQuantiles = []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}

// Profile is the profile of a table.
type Profile struct {
	Rows    int64     `json:"rows"`
	Columns []*Column `json:"columns"`
	opts    Options
}

// Quantile is a value at a rank.
type Quantile struct {
	Q     float64 `json:"q"`
	Value float64 `json:"value"`
}

// Histogram counts values per bin (numbers: Edges has one more entry than
// Counts, bins are [e_i, e_i+1) and the last is closed) or per value
// (strings and bools: Values, most frequent first, with Other counting the
// rest). Exact says the counts are exact rather than sketch estimates.
type Histogram struct {
	Edges  []float64 `json:"edges,omitempty"`
	Values []string  `json:"values,omitempty"`
	Counts []float64 `json:"counts"`
	Other  float64   `json:"other,omitempty"`
	Exact  bool      `json:"exact"`
}

// Column is the profile of one column. The summary fields are derived
// from the sketches after Compute, Add or Merge (see Refresh).
type Column struct {
	// Field is the column's schema entry, with Categorical and Categories
	// filled in from the data.
	Field table.Field `json:"field"`
	// Count is the number of non-missing values; Missing counts nulls and
	// NaN (NaN also counts in NaN); Inf counts infinite floats.
	Count   int64 `json:"count"`
	Missing int64 `json:"missing"`
	NaN     int64 `json:"nan,omitempty"`
	Inf     int64 `json:"inf,omitempty"`
	// Distinct estimates the number of distinct non-missing values
	// (exact when DistinctExact).
	Distinct      int64 `json:"distinct"`
	DistinctExact bool  `json:"distinct_exact"`

	// Numbers only (nil for strings): statistics of the finite values.
	Min       *float64   `json:"min,omitempty"`
	Max       *float64   `json:"max,omitempty"`
	Mean      *float64   `json:"mean,omitempty"`
	Std       *float64   `json:"std,omitempty"` // ddof=1
	Quantiles []Quantile `json:"quantiles,omitempty"`
	// MinTime and MaxTime are Min and Max of timestamp and date columns
	// in RFC 3339 (exact, unlike the float64 Min and Max).
	MinTime string `json:"min_time,omitempty"`
	MaxTime string `json:"max_time,omitempty"`

	// Top holds the most frequent values, each with a count at most
	// TopError below the true one (0: exact). Only values counted more
	// than TopError times are listed, so a column of all-distinct values
	// past the sketch's capacity lists none.
	Top      []Item     `json:"top"`
	TopError int64      `json:"top_error"`
	Hist     *Histogram `json:"histogram,omitempty"`

	Sketches Sketches `json:"sketches"`

	mom      moments
	minI     int64
	maxI     int64
	kll      *KLL
	hll      *HLL
	freq     *Freq
	scratch  []float64
	counts   []int64
	dictSeen *table.Strings
	dictHash []uint64
}

// Sketches is the mergeable state of a column, as stored in JSON: the
// moments as numbers and each sketch as base64 of its binary form.
type Sketches struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	MinI int64   `json:"min_int,omitempty"`
	MaxI int64   `json:"max_int,omitempty"`
	KLL  []byte  `json:"kll,omitempty"`
	HLL  []byte  `json:"hll,omitempty"`
	Freq []byte  `json:"freq,omitempty"`
}

// moments are running count, mean, sum of squared deviations, min, max.
type moments struct {
	n        int64
	mean, m2 float64
	min, max float64
}

// merge combines two moment sets (Chan, Golub, LeVeque).
func (m *moments) merge(o moments) {
	if o.n == 0 {
		return
	}
	if m.n == 0 {
		*m = o
		return
	}
	n := m.n + o.n
	d := o.mean - m.mean
	m.mean += d * float64(o.n) / float64(n)
	m.m2 += o.m2 + d*d*float64(m.n)*float64(o.n)/float64(n)
	m.n = n
	m.min = min(m.min, o.min)
	m.max = max(m.max, o.max)
}

// batchMoments computes the moments of xs in two passes.
func batchMoments(xs []float64) moments {
	if len(xs) == 0 {
		return moments{}
	}
	var sum float64
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		sum += x
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	mean := sum / float64(len(xs))
	var m2 float64
	for _, x := range xs {
		d := x - mean
		m2 += d * d
	}
	return moments{n: int64(len(xs)), mean: mean, m2: m2, min: lo, max: hi}
}

// New returns an empty profile of a table with schema s; fill it with Add.
func New(s table.Schema, opts Options) *Profile {
	opts = opts.withDefaults()
	p := &Profile{opts: opts}
	for _, f := range s.Fields {
		p.Columns = append(p.Columns, newColumn(f, opts))
	}
	return p
}

func newColumn(f table.Field, opts Options) *Column {
	c := &Column{Field: f, minI: math.MaxInt64, maxI: math.MinInt64}
	c.Field.Categories = slices.Clone(f.Categories)
	c.hll = NewHLL()
	c.freq = NewFreq(opts.FreqCapacity)
	if f.Type.Numeric() {
		c.kll = NewKLL(opts.K)
	}
	return c
}

// Add profiles one batch, whose columns follow the profile's schema.
func (p *Profile) Add(b *table.Batch) error {
	if err := p.check(b); err != nil {
		return err
	}
	for i, c := range p.Columns {
		c.add(&b.Columns[i], b.Len)
	}
	p.Rows += int64(b.Len)
	return nil
}

func (p *Profile) check(b *table.Batch) error {
	if len(b.Columns) != len(p.Columns) {
		return errdefs.Invalid("batch has %d columns, profile %d", len(b.Columns), len(p.Columns))
	}
	for i, c := range p.Columns {
		col := &b.Columns[i]
		if col.Type != c.Field.Type || col.Len() != b.Len {
			return errdefs.Invalid("column %q: batch holds %d %v values, want %d %v", c.Field.Name, col.Len(), col.Type, b.Len, c.Field.Type)
		}
	}
	return nil
}

// Compute profiles every batch of r in one pass. Columns are spread over
// Options.Parallelism goroutines while the reader decodes the next batch.
// The summary fields are filled in.
func Compute(ctx context.Context, r table.Reader, opts Options) (*Profile, error) {
	p := New(r.Schema(), opts)
	workers := min(p.opts.Parallelism, len(p.Columns))
	if workers <= 1 {
		for {
			b, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if err := p.Add(b); err != nil {
				return nil, err
			}
		}
		p.Refresh()
		return p, nil
	}
	chans := make([]chan *table.Batch, workers)
	var wg sync.WaitGroup
	for w := range chans {
		chans[w] = make(chan *table.Batch, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range chans[w] {
				for ci := w; ci < len(p.Columns); ci += workers {
					p.Columns[ci].add(&b.Columns[ci], b.Len)
				}
			}
		}()
	}
	var err error
	for {
		var b *table.Batch
		b, err = r.Next(ctx)
		if err != nil {
			break
		}
		if err = p.check(b); err != nil {
			break
		}
		p.Rows += int64(b.Len)
		for _, ch := range chans {
			ch <- b
		}
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	if !errors.Is(err, io.EOF) {
		return nil, err
	}
	p.Refresh()
	return p, nil
}

// floatKey is the frequent-items and distinct-count key of a float: its
// bits, with -0 folded into 0.
func floatKey(v float64) uint64 {
	if v == 0 {
		return 0
	}
	return math.Float64bits(v)
}

func (c *Column) add(col *table.Column, n int) {
	valid := col.Valid
	switch col.Type {
	case table.Float64:
		buf := c.scratch[:0]
		for i, v := range col.Floats[:n] {
			if valid != nil && !valid.Valid(i) {
				c.Missing++
				continue
			}
			if v != v {
				c.NaN++
				c.Missing++
				continue
			}
			if math.IsInf(v, 0) {
				c.Inf++
				c.Count++
				continue
			}
			buf = append(buf, v)
		}
		c.scratch = buf
		c.Count += int64(len(buf))
		for _, v := range buf {
			k := floatKey(v)
			h := mix64(k)
			c.hll.Add(h)
			c.freq.AddHashed(k, h, 1, nil)
		}
		c.addNumbers(buf)
	case table.Int64, table.Timestamp, table.Date:
		buf := c.scratch[:0]
		lo, hi := c.minI, c.maxI
		for i, v := range col.Ints[:n] {
			if valid != nil && !valid.Valid(i) {
				continue
			}
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
			k := uint64(v)
			h := mix64(k)
			c.hll.Add(h)
			c.freq.AddHashed(k, h, 1, nil)
			buf = append(buf, float64(v))
		}
		c.minI, c.maxI = lo, hi
		c.scratch = buf
		c.Missing += int64(n - len(buf))
		c.Count += int64(len(buf))
		c.addNumbers(buf)
	case table.Bool:
		var t, f int64
		for i, v := range col.Bools[:n] {
			if valid != nil && !valid.Valid(i) {
				continue
			}
			if v {
				t++
			} else {
				f++
			}
		}
		c.Missing += int64(n) - t - f
		c.Count += t + f
		if t > 0 {
			c.freq.Add(1, t, nil)
			c.hll.Add(mix64(1))
		}
		if f > 0 {
			c.freq.Add(0, f, nil)
			c.hll.Add(mix64(0))
		}
		if t+f > 0 {
			mean := float64(t) / float64(t+f)
			m2 := float64(t)*(1-mean)*(1-mean) + float64(f)*mean*mean
			m := moments{n: t + f, mean: mean, m2: m2, min: 1, max: 0}
			if f > 0 {
				m.min = 0
			}
			if t > 0 {
				m.max = 1
			}
			c.mom.merge(m)
		}
	case table.String:
		if col.Dict != nil {
			c.addDict(col, n)
			return
		}
		present := int64(0)
		for i := range n {
			if valid != nil && !valid.Valid(i) {
				continue
			}
			present++
			v := col.Strs.At(i)
			h := xxhash.Sum64(v)
			c.hll.Add(h)
			c.freq.Add(h, 1, v)
		}
		c.Count += present
		c.Missing += int64(n) - present
	}
}

// addDict profiles a dictionary-encoded string column: codes are counted
// first, so each distinct value is hashed once per dictionary.
func (c *Column) addDict(col *table.Column, n int) {
	d := col.Dict
	if c.dictSeen != d {
		c.dictSeen = d
		c.dictHash = c.dictHash[:0]
		for i := range d.Len() {
			c.dictHash = append(c.dictHash, xxhash.Sum64(d.At(i)))
		}
	}
	if cap(c.counts) < d.Len() {
		c.counts = make([]int64, d.Len())
	}
	counts := c.counts[:d.Len()]
	clear(counts)
	present := int64(0)
	valid := col.Valid
	for i, code := range col.Codes[:n] {
		if valid != nil && !valid.Valid(i) {
			continue
		}
		counts[code]++
		present++
	}
	for code, k := range counts {
		if k == 0 {
			continue
		}
		h := c.dictHash[code]
		c.hll.Add(h)
		c.freq.Add(h, k, d.At(code))
	}
	c.Count += present
	c.Missing += int64(n) - present
}

func (c *Column) addNumbers(buf []float64) {
	if len(buf) == 0 {
		return
	}
	c.mom.merge(batchMoments(buf))
	c.kll.AddBatch(buf)
}

// Refresh recomputes every column's summary fields from its sketches.
// Compute and Merge call it; call it after Add.
func (p *Profile) Refresh() {
	for _, c := range p.Columns {
		c.refresh(p.opts)
	}
}

func ptr(v float64) *float64 { return &v }

func (c *Column) refresh(opts Options) {
	f := c.freq
	exact := f.Offset() == 0 && f.Len() < opts.FreqCapacity
	c.DistinctExact = exact
	if exact {
		c.Distinct = int64(f.Len())
	} else {
		c.Distinct = int64(math.Round(c.hll.Estimate()))
	}
	c.Top = c.items(significant(f.Top(opts.TopK), f.Offset()))
	c.TopError = f.Offset()
	c.Min, c.Max, c.Mean, c.Std, c.Quantiles, c.MinTime, c.MaxTime = nil, nil, nil, nil, nil, "", ""
	t := c.Field.Type
	if (t.Numeric() || t == table.Bool) && c.mom.n > 0 {
		c.Min, c.Max, c.Mean = ptr(c.mom.min), ptr(c.mom.max), ptr(c.mom.mean)
		if t == table.Int64 || t == table.Timestamp || t == table.Date {
			c.Min, c.Max = ptr(float64(c.minI)), ptr(float64(c.maxI))
		}
		if c.mom.n > 1 {
			c.Std = ptr(math.Sqrt(c.mom.m2 / float64(c.mom.n-1)))
		}
		if c.kll != nil {
			qs := c.kll.Quantiles(ReportedQuantiles)
			for i, q := range ReportedQuantiles {
				c.Quantiles = append(c.Quantiles, Quantile{Q: q, Value: qs[i]})
			}
		}
		if t == table.Timestamp || t == table.Date {
			col := table.Column{Type: t, Ints: []int64{c.minI, c.maxI}}
			c.MinTime = col.Time(0, c.Field.Unit).Format(time.RFC3339Nano)
			c.MaxTime = col.Time(1, c.Field.Unit).Format(time.RFC3339Nano)
			if t == table.Date {
				c.MinTime, c.MaxTime = c.MinTime[:10], c.MaxTime[:10]
			}
		}
	}
	c.Hist = c.histogram(opts, exact)

	// Categorical domain: few distinct values, known exactly.
	if t == table.String || t == table.Int64 {
		rule := table.CategoryRule{MaxValues: opts.MaxCategories, MaxFraction: opts.MaxCategoryFraction}
		small := exact && rule.Categorical(c.Distinct, c.Count)
		if small || c.Field.Categorical {
			c.Field.Categorical = true
			if exact && c.Distinct <= int64(opts.MaxCategories) {
				all := c.items(f.Top(-1))
				cats := make([]string, len(all))
				for i, it := range all {
					cats[i] = it.Value
				}
				if t == table.Int64 {
					slices.SortFunc(cats, func(a, b string) int {
						x, _ := strconv.ParseInt(a, 10, 64)
						y, _ := strconv.ParseInt(b, 10, 64)
						return compareInts(x, y)
					})
				} else {
					slices.Sort(cats)
				}
				c.Field.Categories = cats
			}
		}
	}
}

// significant keeps the items whose count exceeds the sketch's error
// bound: those certainly more frequent than values it dropped.
func significant(items []Item, offset int64) []Item {
	out := items[:0]
	for _, it := range items {
		if it.Count > offset {
			out = append(out, it)
		}
	}
	return out
}

func compareInts(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// items turns sketch items into display values for the column's type.
func (c *Column) items(in []Item) []Item {
	out := make([]Item, len(in))
	for i, it := range in {
		out[i] = Item{Value: c.display(it), Count: it.Count, key: it.key}
	}
	return out
}

func (c *Column) display(it Item) string {
	switch c.Field.Type {
	case table.Float64:
		return strconv.FormatFloat(math.Float64frombits(it.key), 'g', -1, 64)
	case table.Int64:
		return strconv.FormatInt(int64(it.key), 10)
	case table.Bool:
		return strconv.FormatBool(it.key == 1)
	case table.Timestamp, table.Date:
		col := table.Column{Type: c.Field.Type, Ints: []int64{int64(it.key)}}
		s := col.Time(0, c.Field.Unit).Format(time.RFC3339Nano)
		if c.Field.Type == table.Date {
			s = s[:10]
		}
		return s
	}
	return it.Value
}

// itemNumber is the numeric value of a frequent item of a numeric column.
func (c *Column) itemNumber(it Item) float64 {
	if c.Field.Type == table.Float64 {
		return math.Float64frombits(it.key)
	}
	return float64(int64(it.key))
}

func (c *Column) histogram(opts Options, exact bool) *Histogram {
	t := c.Field.Type
	if t == table.String || t == table.Bool {
		h := &Histogram{Exact: exact}
		var sum float64
		for _, it := range c.items(significant(c.freq.Top(opts.MaxCategories), c.freq.Offset())) {
			h.Values = append(h.Values, it.Value)
			h.Counts = append(h.Counts, float64(it.Count))
			sum += float64(it.Count)
		}
		h.Other = float64(c.Count-c.Inf) - sum
		return h
	}
	if c.mom.n <= 0 || c.Min == nil || c.Max == nil {
		return nil
	}
	lo, hi := *c.Min, *c.Max
	bins := opts.HistogramBins
	if lo == hi {
		bins = 1
	}
	edges := make([]float64, bins+1)
	for i := range edges {
		edges[i] = lo + (hi-lo)*float64(i)/float64(bins)
	}
	edges[bins] = hi
	return &Histogram{Edges: edges, Counts: c.BinCounts(edges), Exact: exact}
}

// BinCounts estimates how many finite values fall in each bin
// [edges[i], edges[i+1]) (the last bin closed); edges must be increasing.
// Counts are exact while the frequent-items sketch is, else from the KLL
// sketch. Values outside the edges are not counted.
func (c *Column) BinCounts(edges []float64) []float64 {
	if len(edges) < 2 || c.kll == nil {
		return nil
	}
	counts := make([]float64, len(edges)-1)
	last := len(counts) - 1
	if c.freq.Offset() == 0 && c.freq.Len() < c.freq.capacity {
		for _, it := range c.freq.Top(-1) {
			v := c.itemNumber(it)
			if math.IsInf(v, 0) || v < edges[0] || v > edges[last+1] {
				continue
			}
			i := min(searchEdge(edges, v), last)
			counts[i] += float64(it.Count)
		}
		return counts
	}
	cdf := c.kll.CDF(edges)
	total := float64(c.mom.n)
	below := c.kll.CDF([]float64{math.Nextafter(edges[0], math.Inf(-1))})[0]
	prev := below
	for i := range counts {
		hiCDF := cdf[i+1]
		if i < last {
			hiCDF = c.kll.CDF([]float64{math.Nextafter(edges[i+1], math.Inf(-1))})[0]
		}
		counts[i] = (hiCDF - prev) * total
		prev = hiCDF
	}
	return counts
}

// searchEdge returns i with edges[i] <= v < edges[i+1].
func searchEdge(edges []float64, v float64) int {
	i, _ := slices.BinarySearch(edges, v)
	if i < len(edges) && edges[i] == v {
		return i
	}
	return i - 1
}

// QuantileValues estimates the values at ranks qs in [0, 1] (numeric columns;
// nil otherwise).
func (c *Column) QuantileValues(qs []float64) []float64 {
	if c.kll == nil {
		return nil
	}
	return c.kll.Quantiles(qs)
}

// CDF estimates the fraction of finite values <= each x (numeric columns;
// nil otherwise).
func (c *Column) CDF(xs []float64) []float64 {
	if c.kll == nil {
		return nil
	}
	return c.kll.CDF(xs)
}

// Frequencies returns every tracked value with its count, most frequent
// first: all values when DistinctExact.
func (c *Column) Frequencies() []Item { return c.items(c.freq.Top(-1)) }

// MarshalJSON encodes the column with its current sketches.
func (c *Column) MarshalJSON() ([]byte, error) {
	type plain Column
	v := plain(*c)
	v.Sketches = c.sketches()
	return json.Marshal(&v)
}

func (c *Column) sketches() Sketches {
	s := Sketches{N: c.mom.n, Mean: c.mom.mean, M2: c.mom.m2, Min: c.mom.min, Max: c.mom.max}
	if c.Field.Type == table.Int64 || c.Field.Type == table.Timestamp || c.Field.Type == table.Date {
		s.MinI, s.MaxI = c.minI, c.maxI
	}
	if c.kll != nil {
		s.KLL, _ = c.kll.MarshalBinary()
	}
	s.HLL, _ = c.hll.MarshalBinary()
	s.Freq, _ = c.freq.MarshalBinary()
	return s
}

// Schema returns the profiled columns' fields, with the categorical
// domains found in the data and nullability as seen (a column is nullable
// when it had missing values).
func (p *Profile) Schema() table.Schema {
	var s table.Schema
	for _, c := range p.Columns {
		f := c.Field
		f.Categories = slices.Clone(f.Categories)
		f.Nullable = c.Missing > 0
		s.Fields = append(s.Fields, f)
	}
	return s
}

// Column returns the profile of the column named name, or nil.
func (p *Profile) Column(name string) *Column {
	for _, c := range p.Columns {
		if c.Field.Name == name {
			return c
		}
	}
	return nil
}

// Merge returns the profile of the union of the tables that a and b
// profile. Their columns must match by name, order and type; a and b are
// not modified.
func Merge(a, b *Profile) (*Profile, error) {
	out, err := a.clone()
	if err != nil {
		return nil, err
	}
	if err := out.MergeFrom(b); err != nil {
		return nil, err
	}
	return out, nil
}

// MergeFrom merges o into p.
func (p *Profile) MergeFrom(o *Profile) error {
	if len(p.Columns) != len(o.Columns) {
		return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Err: ErrIncompatible,
			Msg: fmt.Sprintf("cannot merge profiles of %d and %d columns", len(p.Columns), len(o.Columns))}
	}
	for i, c := range p.Columns {
		oc := o.Columns[i]
		if c.Field.Name != oc.Field.Name || c.Field.Type != oc.Field.Type {
			return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Err: ErrIncompatible,
				Msg: fmt.Sprintf("cannot merge column %q (%v) with %q (%v)", c.Field.Name, c.Field.Type, oc.Field.Name, oc.Field.Type)}
		}
		if (c.kll == nil) != (oc.kll == nil) || (c.kll != nil && c.kll.k != oc.kll.k) || c.freq.capacity != oc.freq.capacity {
			return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Err: ErrIncompatible,
				Msg: fmt.Sprintf("column %q: profiles use different sketch parameters", c.Field.Name)}
		}
	}
	for i, c := range p.Columns {
		oc := o.Columns[i]
		c.Count += oc.Count
		c.Missing += oc.Missing
		c.NaN += oc.NaN
		c.Inf += oc.Inf
		c.mom.merge(oc.mom)
		c.minI, c.maxI = min(c.minI, oc.minI), max(c.maxI, oc.maxI)
		if c.kll != nil {
			if err := c.kll.Merge(oc.kll); err != nil {
				return err
			}
		}
		c.hll.Merge(oc.hll)
		c.freq.Merge(oc.freq)
		if oc.Field.Categorical && len(oc.Field.Categories) == 0 {
			c.Field.Categorical = true
		}
		c.Field.Nullable = c.Field.Nullable || oc.Field.Nullable
	}
	p.Rows += o.Rows
	p.Refresh()
	return nil
}

func (p *Profile) clone() (*Profile, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var out Profile
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	out.opts = p.opts
	return &out, nil
}

// UnmarshalJSON decodes a profile and its sketches, so that it can be
// merged or compared again.
func (p *Profile) UnmarshalJSON(b []byte) error {
	type plain Profile
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Rows < 0 {
		return errdefs.Invalid("profile: negative row count")
	}
	opts := Options{}
	for _, c := range v.Columns {
		if c == nil {
			return errdefs.Invalid("profile: null column")
		}
		if err := c.restore(); err != nil {
			return errdefs.Invalid("profile column %q: %v", c.Field.Name, err)
		}
		if c.kll != nil {
			opts.K = c.kll.k
		}
		opts.FreqCapacity = c.freq.capacity
	}
	*p = Profile(v)
	p.opts = opts.withDefaults()
	return nil
}

// restore rebuilds the sketches from their stored form.
func (c *Column) restore() error {
	s := c.Sketches
	if c.Field.Type == table.Invalid {
		return errors.New("no type")
	}
	if s.N < 0 || c.Count < 0 || c.Missing < 0 || c.NaN < 0 || c.Inf < 0 || s.M2 < 0 || s.Min > s.Max && s.N > 0 {
		return errors.New("negative counts or inconsistent moments")
	}
	c.mom = moments{n: s.N, mean: s.Mean, m2: s.M2, min: s.Min, max: s.Max}
	c.minI, c.maxI = math.MaxInt64, math.MinInt64
	if s.N > 0 {
		c.minI, c.maxI = s.MinI, s.MaxI
	}
	c.hll, c.freq = NewHLL(), &Freq{}
	if err := c.hll.UnmarshalBinary(s.HLL); err != nil {
		return err
	}
	if err := c.freq.UnmarshalBinary(s.Freq); err != nil {
		return err
	}
	if c.Field.Type.Numeric() {
		c.kll = &KLL{}
		if err := c.kll.UnmarshalBinary(s.KLL); err != nil {
			return err
		}
	}
	return nil
}
