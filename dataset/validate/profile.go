package validate

import (
	"math"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// ProfileQuantiles is how many quantiles of a profile's KLL sketch stand
// for a numeric column whose distinct values the profile does not hold
// exactly (as Evidently's Spark engine approximates the Wasserstein
// distance with 1,000 bins).
const ProfileQuantiles = 1000

// FromProfile adapts a stored dataset profile (package dataset/profile) to
// Profile, so that it can serve as a distribution rule's reference or as
// either side of Skew without the data it was computed from.
//
// A numeric column whose frequent-value sketch holds every distinct value
// (DistinctExact) becomes an exact weighted sample, so the tests give
// exactly what they give on the raw values. Otherwise it becomes
// ProfileQuantiles evenly spaced quantiles of the KLL sketch, equally
// weighted: distribution functions are then within the sketch's rank error
// (about 1% at the default k) plus 1/(2·ProfileQuantiles), and KS
// p-values use the column's full count. The Wasserstein distance is normed
// by the profile's exact standard deviation. A categorical column (strings,
// bools) needs exact counts; a profile with more distinct values than its
// sketch tracks cannot be tested categorically and gives an error.
func FromProfile(p *profile.Profile) Profile { return datasetProfile{p} }

type datasetProfile struct{ p *profile.Profile }

// Rows returns the profiled table's row count.
func (d datasetProfile) Rows() int64 { return d.p.Rows }

func (d datasetProfile) Columns() []string {
	out := make([]string, len(d.p.Columns))
	for i, c := range d.p.Columns {
		out[i] = c.Field.Name
	}
	return out
}

func (d datasetProfile) Distribution(column string, kind stattest.Kind) (stattest.Column, error) {
	c := d.p.Column(column)
	if c == nil {
		return stattest.Column{}, errdefs.NotFound("no column %q in the profile", column)
	}
	f := &c.Field
	if kind == 0 {
		kind = naturalKind(f.Type)
	}
	if kind == stattest.Categorical {
		switch f.Type {
		case table.String, table.Bool, table.Int64, table.Float64:
		default:
			return stattest.Column{}, errdefs.Invalid("column %q is %s: a categorical test needs strings, bools or numbers", column, f.Type)
		}
		if !c.DistinctExact {
			return stattest.Column{}, errdefs.Invalid("the profile of column %q holds the counts of its most frequent values only (it has more distinct values than the profile tracks): a categorical test needs them all", column)
		}
		counts := map[string]float64{}
		for _, it := range c.Frequencies() {
			if f.Type == table.Float64 {
				if v, err := strconv.ParseFloat(it.Value, 64); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
					continue
				}
			}
			counts[it.Value] += float64(it.Count)
		}
		return stattest.Column{Kind: stattest.Categorical, Counts: counts}, nil
	}
	if f.Type == table.String {
		return stattest.Column{}, errdefs.Invalid("column %q is string: a numerical test needs numbers", column)
	}
	scale := 1.0 // profile units per test unit: timestamps are compared in seconds
	if f.Type == table.Timestamp {
		if per := f.Unit.PerSecond(); per > 0 {
			scale = float64(per)
		}
	}
	finite := float64(c.Count - c.Inf)
	out := stattest.Column{Kind: stattest.Numerical, Rows: finite}
	if c.Std != nil && finite > 1 {
		out.Std = *c.Std * math.Sqrt((finite-1)/finite) / scale
	}
	var vals, weights []float64
	if c.DistinctExact || f.Type == table.Bool {
		for _, it := range c.Frequencies() {
			v, ok := itemValue(f, it.Value)
			if !ok {
				continue
			}
			vals = append(vals, v)
			weights = append(weights, float64(it.Count))
		}
	} else if finite > 0 {
		m := int(min(ProfileQuantiles, finite))
		qs := make([]float64, m)
		for i := range qs {
			qs[i] = (float64(i) + 0.5) / float64(m)
		}
		vals = c.QuantileValues(qs)
		for i := range vals {
			vals[i] /= scale
		}
		weights = make([]float64, len(vals))
		for i := range weights {
			weights[i] = finite / float64(m)
		}
	}
	s, err := stattest.NewWeightedSample(vals, weights)
	if err != nil {
		return stattest.Column{}, err
	}
	out.Sample = s
	return out, nil
}

// itemValue reads a frequent item of a numeric or bool column back as the
// number the tests compare: timestamps in seconds, dates in days, bools as
// 0 and 1. Infinite floats are left out.
func itemValue(f *table.Field, s string) (float64, bool) {
	switch f.Type {
	case table.Float64:
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil && !math.IsInf(v, 0) && !math.IsNaN(v)
	case table.Int64:
		v, err := strconv.ParseInt(s, 10, 64)
		return float64(v), err == nil
	case table.Bool:
		switch s {
		case "true":
			return 1, true
		case "false":
			return 0, true
		}
	case table.Timestamp:
		t, err := time.Parse(time.RFC3339Nano, s)
		per := f.Unit.PerSecond()
		if err != nil || per == 0 {
			return 0, false
		}
		// In the column's unit first, as the table side converts them.
		v := t.Unix()*per + int64(t.Nanosecond())/(1e9/per)
		return float64(v) / float64(per), true
	case table.Date:
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return 0, false
		}
		return float64(t.Unix() / 86400), true
	}
	return 0, false
}
