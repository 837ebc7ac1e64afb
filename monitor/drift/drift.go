// Package drift compares two profiles of the same features — a reference
// (the training data, or a chosen window of traffic) and a current window —
// feature by feature with the drift tests of package stattest, and decides
// dataset drift by the share of drifted features, as Evidently's
// DataDriftPreset does.
//
// Per feature the test and threshold are Evidently's defaults
// (stattest.DefaultMethod: with at most 1,000 reference values KS for
// numerical columns, chi-square or the Z-test for categorical ones; beyond,
// the normed Wasserstein distance and Jensen–Shannon), unless Options or
// Options.PerFeature choose another (PSI, KL, Hellinger…). The kind of a
// column follows Evidently's inference: strings and bools are categorical,
// floats numerical, and integers categorical when the current data has at
// most IntegerCardinalityLimit distinct values (numerical otherwise). The
// dataset drifts when the share of drifted features is at least
// Options.DriftShare (0.5).
//
// The profiles are validate.Profile values: FromProfile adapts the
// mergeable sketches of package dataset/profile (what the prediction log
// stores per segment), ProfileFiles reads local table files with sketches
// or exact values. The same Compare serves prediction drift: compare
// Prefixed(current, "outputs.") with a reference profile of predictions.
package drift

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// DefaultDriftShare is the share of drifted features at which the dataset
// drifts (Evidently's drift_share).
const DefaultDriftShare = 0.5

// IntegerCardinalityLimit is the most distinct values an integer column may
// have in the current data to be compared as categorical (Evidently's
// INTEGER_CARDINALITY_LIMIT).
const IntegerCardinalityLimit = 10

// Histogram display parameters: numerical features are drawn on
// DisplayBins equal-width bins over the range of both sides (Evidently's
// DEFAULT_NBINSX), categorical ones as their DisplayCategories most
// frequent categories (over both sides) and "other".
const (
	DisplayBins       = 10
	DisplayCategories = 20
	OtherCategory     = "other"
)

// Options choose what Compare compares and how. The zero value compares
// every common feature with Evidently's defaults.
type Options struct {
	// Features are the features to compare; empty compares every column of
	// the reference that the current profile also has, in the reference's
	// order.
	Features []string `json:"features,omitempty"`
	// Method and Threshold apply to every feature (Evidently's default test
	// per feature when empty, the method's default threshold when 0);
	// PerFeature overrides them.
	Method     stattest.Method        `json:"method,omitempty"`
	Threshold  float64                `json:"threshold,omitempty"`
	PerFeature map[string]FeatureTest `json:"per_feature,omitempty"`
	// DriftShare is the share of drifted features that makes dataset drift
	// (DefaultDriftShare when 0).
	DriftShare float64 `json:"drift_share,omitempty"`
	// Histograms adds each feature's histogram (shares per bin or
	// category, both sides) to its result, for reports.
	Histograms bool `json:"histograms,omitempty"`
}

// FeatureTest is the test of one feature. Zero fields fall back to
// Options' Method and Threshold, and Kind to the inferred kind.
type FeatureTest struct {
	Method    stattest.Method `json:"method,omitempty"`
	Threshold float64         `json:"threshold,omitempty"`
	// Kind forces numerical or categorical comparison (0: inferred).
	Kind stattest.Kind `json:"kind,omitempty"`
}

// Report is the outcome of Compare.
type Report struct {
	Features []FeatureResult `json:"features"`
	// Drifted of Total tested features drifted; features that could not be
	// tested (Errors of them) count in neither.
	Drifted int `json:"drifted"`
	Total   int `json:"total"`
	Errors  int `json:"errors"`
	// Share is Drifted/Total (0 when nothing was tested); the dataset
	// drifts when Share ≥ DriftShare.
	Share        float64 `json:"share"`
	DriftShare   float64 `json:"drift_share"`
	DatasetDrift bool    `json:"dataset_drift"`
}

// Feature returns the result of the named feature, or nil.
func (r *Report) Feature(name string) *FeatureResult {
	for i := range r.Features {
		if r.Features[i].Name == name {
			return &r.Features[i]
		}
	}
	return nil
}

// FeatureResult is one feature's test.
type FeatureResult struct {
	Name string `json:"name"`
	// Kind is "numerical" or "categorical" (empty when unknown).
	Kind   string          `json:"kind,omitempty"`
	Method stattest.Method `json:"method,omitempty"`
	// Score is the p-value (ks, chi2, z; PValue set) or the distance;
	// Statistic the statistic behind a p-value (equal to Score for
	// distances). Both are NaN when the feature could not be tested.
	Score     float64 `json:"score"`
	Statistic float64 `json:"statistic"`
	Threshold float64 `json:"threshold"`
	PValue    bool    `json:"p_value"`
	Drift     bool    `json:"drift"`
	// RefCount and CurCount are the non-missing, finite values compared on
	// each side.
	RefCount int64 `json:"ref_count"`
	CurCount int64 `json:"cur_count"`
	// Error says why the feature could not be tested (then Drift is false
	// and the feature counts in neither Drifted nor Total).
	Error     string     `json:"error,omitempty"`
	Histogram *Histogram `json:"histogram,omitempty"`
}

// Histogram holds both sides' distributions of a feature as shares:
// numerical features per bin of Edges (len(Edges) = len(Ref)+1, bins
// [e_i, e_i+1), the last closed), categorical ones per entry of Categories
// (the last may be OtherCategory).
type Histogram struct {
	Edges      []float64 `json:"edges,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Ref        []float64 `json:"ref"`
	Cur        []float64 `json:"cur"`
}

// ColumnTyper is implemented by profiles that know their columns' storage
// types (FromProfile, ProfileFiles, Prefixed of either). Compare uses it to
// infer integer columns' kind as Evidently does; without it every number
// is numerical.
type ColumnTyper interface {
	ColumnType(column string) (table.Type, bool)
}

// Compare tests every feature of ref against cur. A feature that cannot be
// tested (missing on a side, empty, of an unusable type, a sketch that lost
// categories) gets Error and no verdict; the error return is for unusable
// arguments and a cancelled ctx only.
func Compare(ctx context.Context, ref, cur validate.Profile, opts Options) (*Report, error) {
	if ref == nil || cur == nil {
		return nil, errors.New("drift: compare needs two profiles")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	features := opts.Features
	if len(features) == 0 {
		have := cur.Columns()
		for _, c := range ref.Columns() {
			if slices.Contains(have, c) && !slices.Contains(features, c) {
				features = append(features, c)
			}
		}
		if len(features) == 0 {
			return nil, errdefs.Invalid("drift: the reference and current profiles have no column in common")
		}
	}
	share := opts.DriftShare
	if share == 0 {
		share = DefaultDriftShare
	}
	rep := &Report{Features: make([]FeatureResult, len(features)), DriftShare: share}
	refCols, curCols := columnSet(ref), columnSet(cur)

	// Features are independent: test them in parallel (exact samples of
	// millions of values make each test worth a core).
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(features)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rep.Features[i] = compareFeature(ref, cur, refCols, curCols, features[i], opts)
			}
		}()
	}
	var err error
	for i := range features {
		if err = ctx.Err(); err != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for _, f := range rep.Features {
		switch {
		case f.Error != "":
			rep.Errors++
		case f.Drift:
			rep.Drifted++
			rep.Total++
		default:
			rep.Total++
		}
	}
	if rep.Total > 0 {
		rep.Share = float64(rep.Drifted) / float64(rep.Total)
		rep.DatasetDrift = rep.Share >= share
	}
	return rep, nil
}

func checkOptions(opts Options) error {
	if s := opts.DriftShare; s < 0 || s > 1 || math.IsNaN(s) {
		return errdefs.Invalid("drift: drift share %v is not in [0, 1]", s)
	}
	check := func(what string, m stattest.Method, t float64) error {
		if m != "" && !slices.Contains(stattest.Methods, m) {
			return errdefs.Invalid("drift: %sunknown test %q", what, m)
		}
		if t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
			return errdefs.Invalid("drift: %sthreshold %v is not a positive number", what, t)
		}
		return nil
	}
	if err := check("", opts.Method, opts.Threshold); err != nil {
		return err
	}
	for name, ft := range opts.PerFeature {
		if err := check("feature "+name+": ", ft.Method, ft.Threshold); err != nil {
			return err
		}
		if ft.Kind != 0 && ft.Kind != stattest.Numerical && ft.Kind != stattest.Categorical {
			return errdefs.Invalid("drift: feature %s: unknown kind %v", name, ft.Kind)
		}
	}
	return nil
}

func columnSet(p validate.Profile) map[string]bool {
	m := map[string]bool{}
	for _, c := range p.Columns() {
		m[c] = true
	}
	return m
}

func compareFeature(ref, cur validate.Profile, refCols, curCols map[string]bool, name string, opts Options) FeatureResult {
	res := FeatureResult{Name: name, Score: math.NaN(), Statistic: math.NaN()}
	ft := FeatureTest{Method: opts.Method, Threshold: opts.Threshold}
	if o, ok := opts.PerFeature[name]; ok {
		if o.Method != "" {
			ft.Method, ft.Threshold = o.Method, 0
		}
		if o.Threshold != 0 {
			ft.Threshold = o.Threshold
		}
		ft.Kind = o.Kind
	}
	switch {
	case !refCols[name]:
		res.Error = fmt.Sprintf("no column %q in the reference", name)
		return res
	case !curCols[name]:
		res.Error = fmt.Sprintf("no column %q in the current data", name)
		return res
	}
	kind := ft.Kind
	if kind == 0 {
		kind = inferKind(ref, cur, name)
	}
	rc, err := ref.Distribution(name, kind)
	if err != nil {
		res.Error = "reference: " + errdefs.Message(err)
		return res
	}
	res.Kind = rc.Kind.String()
	cc, err := cur.Distribution(name, rc.Kind)
	if err != nil {
		res.Error = "current: " + errdefs.Message(err)
		return res
	}
	res.RefCount, res.CurCount = values(rc), values(cc)
	method := ft.Method
	if method == "" {
		method = defaultMethod(rc, cc)
	}
	r, err := stattest.Test(rc, cc, method, ft.Threshold)
	if err != nil {
		res.Error = strings.TrimPrefix(errdefs.Message(err), "stattest: ")
		return res
	}
	res.Method, res.Score, res.Statistic, res.Threshold, res.PValue, res.Drift = r.Method, r.Score, r.Statistic, r.Threshold, r.PValue, r.Drift
	if opts.Histograms {
		res.Histogram = histogram(rc, cc)
	}
	return res
}

// defaultMethod is stattest.DefaultMethod without counting every distinct
// value of two large numerical samples: past 5 distinct values the choice
// depends on the reference size only, so counting stops at 6.
func defaultMethod(ref, cur stattest.Column) stattest.Method {
	if ref.Kind != stattest.Numerical || ref.Sample == nil || cur.Sample == nil || !moreDistinct(ref.Sample.Values(), cur.Sample.Values(), 5) {
		return stattest.DefaultMethod(ref, cur)
	}
	if values(ref) <= 1000 {
		return stattest.MethodKS
	}
	return stattest.MethodWasserstein
}

// moreDistinct reports whether the union of two sorted slices has more than
// n distinct values.
func moreDistinct(a, b []float64, n int) bool {
	var i, j, seen int
	have := false
	var last float64
	for i < len(a) || j < len(b) {
		var v float64
		if j >= len(b) || (i < len(a) && a[i] <= b[j]) {
			v = a[i]
			i++
		} else {
			v = b[j]
			j++
		}
		if !have || v != last {
			seen++
			if seen > n {
				return true
			}
			last, have = v, true
		}
	}
	return false
}

// inferKind is Evidently's column type inference (core/datasets.py
// infer_column_type, applied to the current data): integers with at most
// IntegerCardinalityLimit distinct values are categorical; other numbers
// numerical, strings and bools categorical (the profile's natural kind).
func inferKind(ref, cur validate.Profile, name string) stattest.Kind {
	t, ok := cur.(ColumnTyper)
	if !ok {
		return 0
	}
	typ, ok := t.ColumnType(name)
	if !ok || typ != table.Int64 {
		return 0
	}
	c, err := cur.Distribution(name, stattest.Numerical)
	if err != nil || c.Sample == nil {
		return 0
	}
	if c.Sample.Unique() <= IntegerCardinalityLimit {
		// Categorical counts need every distinct value on both sides: an
		// integer column whose sketch lost values still compares
		// numerically.
		if _, err := ref.Distribution(name, stattest.Categorical); err == nil {
			if _, err := cur.Distribution(name, stattest.Categorical); err == nil {
				return stattest.Categorical
			}
		}
	}
	return stattest.Numerical
}

// values is the number of observations a column holds: all of them (Rows)
// when it is a subsample.
func values(c stattest.Column) int64 {
	if c.Rows > 0 {
		return int64(math.Round(c.Rows))
	}
	if c.Kind == stattest.Numerical && c.Sample != nil {
		return int64(math.Round(c.Sample.Count()))
	}
	s := 0.0
	for _, v := range c.Counts {
		s += v
	}
	return int64(math.Round(s))
}

// histogram draws both sides for reports.
func histogram(ref, cur stattest.Column) *Histogram {
	if ref.Kind == stattest.Numerical {
		lo := math.Min(ref.Sample.Min(), cur.Sample.Min())
		hi := math.Max(ref.Sample.Max(), cur.Sample.Max())
		var edges []float64
		if lo == hi {
			edges = []float64{lo - 0.5, hi + 0.5}
		} else {
			edges = make([]float64, DisplayBins+1)
			for i := range edges {
				edges[i] = lo + (hi-lo)*float64(i)/DisplayBins
			}
			edges[DisplayBins] = hi
		}
		return &Histogram{Edges: edges, Ref: shares(ref.Sample.Histogram(edges)), Cur: shares(cur.Sample.Histogram(edges))}
	}
	rt, ct := total(ref.Counts), total(cur.Counts)
	type cat struct {
		name string
		w    float64
	}
	var cats []cat
	for k, v := range ref.Counts {
		cats = append(cats, cat{k, v/rt + cur.Counts[k]/ct})
	}
	for k, v := range cur.Counts {
		if _, ok := ref.Counts[k]; !ok {
			cats = append(cats, cat{k, v / ct})
		}
	}
	slices.SortFunc(cats, func(a, b cat) int {
		if a.w != b.w {
			if a.w > b.w {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	h := &Histogram{}
	var rRest, cRest float64 = 1, 1
	for i, c := range cats {
		if i == DisplayCategories && len(cats) > DisplayCategories+1 {
			h.Categories = append(h.Categories, OtherCategory)
			h.Ref = append(h.Ref, math.Max(0, rRest))
			h.Cur = append(h.Cur, math.Max(0, cRest))
			break
		}
		r, q := ref.Counts[c.name]/rt, cur.Counts[c.name]/ct
		h.Categories = append(h.Categories, c.name)
		h.Ref, h.Cur = append(h.Ref, r), append(h.Cur, q)
		rRest, cRest = rRest-r, cRest-q
	}
	return h
}

func total(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
}

func shares(counts []float64) []float64 {
	s := 0.0
	for _, c := range counts {
		s += c
	}
	out := make([]float64, len(counts))
	if s > 0 {
		for i, c := range counts {
			out[i] = c / s
		}
	}
	return out
}

// FromProfile adapts a dataset profile (package dataset/profile: a
// dataset version's, or the merged per-segment profiles of the prediction
// log) for Compare: validate.FromProfile, plus the column types that the
// kind inference needs.
func FromProfile(p *profile.Profile) validate.Profile {
	return typedProfile{Profile: validate.FromProfile(p), p: p}
}

type typedProfile struct {
	validate.Profile
	p *profile.Profile
}

func (t typedProfile) ColumnType(column string) (table.Type, bool) {
	c := t.p.Column(column)
	if c == nil {
		return table.Invalid, false
	}
	return c.Field.Type, true
}

func (t typedProfile) Rows() int64 { return t.p.Rows }

// Prefixed returns the columns of p whose names start with prefix, renamed
// without it: Prefixed(log, "inputs.") compares the prediction log's inputs
// with a training dataset's columns, Prefixed(log, "outputs.") its
// predictions with a reference of predictions.
func Prefixed(p validate.Profile, prefix string) validate.Profile {
	return prefixed{p: p, prefix: prefix}
}

type prefixed struct {
	p      validate.Profile
	prefix string
}

func (x prefixed) Columns() []string {
	var out []string
	for _, c := range x.p.Columns() {
		if rest, ok := strings.CutPrefix(c, x.prefix); ok && rest != "" {
			out = append(out, rest)
		}
	}
	return out
}

func (x prefixed) Distribution(column string, kind stattest.Kind) (stattest.Column, error) {
	return x.p.Distribution(x.prefix+column, kind)
}

func (x prefixed) ColumnType(column string) (table.Type, bool) {
	if t, ok := x.p.(ColumnTyper); ok {
		return t.ColumnType(x.prefix + column)
	}
	return table.Invalid, false
}
