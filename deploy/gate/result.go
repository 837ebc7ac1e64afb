package gate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/evaluate"
)

// Result is one evaluation of a candidate model version under a policy.
// Stored results never change.
type Result struct {
	ID           string `json:"id,omitempty"`
	Policy       string `json:"policy"`
	PolicyDigest string `json:"policy_digest"`
	// PolicyGeneration is the policy's generation when it was evaluated
	// (0 for a local evaluation).
	PolicyGeneration int64 `json:"policy_generation,omitempty"`
	Passed           bool  `json:"passed"`
	// RubberStamp is set when there was no baseline to compare with:
	// change thresholds were skipped.
	RubberStamp bool          `json:"rubber_stamp"`
	Task        evaluate.Task `json:"task"`
	Candidate   ModelRef      `json:"candidate"`
	// Baseline is the model compared with; nil for a rubber stamp.
	Baseline      *ModelRef `json:"baseline,omitempty"`
	BaselineAlias string    `json:"baseline_alias,omitempty"`
	Data          DataInfo  `json:"data"`
	PositiveClass string    `json:"positive_class,omitempty"`
	// Classes are the labels seen (true or predicted), for classification.
	Classes []string        `json:"classes,omitempty"`
	Metrics []MetricValue   `json:"metrics"`
	Slices  []SliceReport   `json:"slices,omitempty"`
	Checks  []Check         `json:"checks"`
	Failed  []string        `json:"failed,omitempty"` // the messages of the failed checks
	Actor   string          `json:"actor,omitempty"`
	Time    int64           `json:"time"` // ms since the epoch
	Took    int64           `json:"duration_ms"`
	Confuse *ConfusionTable `json:"confusion_matrix,omitempty"`
}

// ModelRef is a model that was evaluated.
type ModelRef struct {
	URI     string `json:"uri"`
	Name    string `json:"name,omitempty"`
	Version int64  `json:"version,omitempty"`
	// Source is where its files came from.
	Source string `json:"source,omitempty"`
}

// DataInfo is the data a result was computed on.
type DataInfo struct {
	Ref string `json:"ref"`
	// Digest is the BLAKE3 digest of the data: the dataset version's, or
	// the file's.
	Digest string `json:"digest"`
	Rows   int64  `json:"rows"`
}

// MetricValue is a metric of the candidate and the baseline.
type MetricValue struct {
	Name      string    `json:"name"`
	Direction Direction `json:"direction"`
	Candidate *float64  `json:"candidate"`
	Baseline  *float64  `json:"baseline,omitempty"`
	// Delta is candidate − baseline; RelativeDelta is Delta / |baseline|.
	Delta         *float64 `json:"delta,omitempty"`
	RelativeDelta *float64 `json:"relative_delta,omitempty"`
	// Error says why Candidate is missing; BaselineError why Baseline is.
	Error         string `json:"error,omitempty"`
	BaselineError string `json:"baseline_error,omitempty"`
}

// SliceReport is a slice check's metrics per slice, and their disparity.
type SliceReport struct {
	Column      string               `json:"column"`
	Slices      []SliceValues        `json:"slices"`
	Disparities []evaluate.Disparity `json:"disparities"`
}

// SliceValues are the candidate's metrics on one slice.
type SliceValues struct {
	Key    string              `json:"key"`
	Rows   int64               `json:"rows"`
	Values map[string]*float64 `json:"values"`
	Errors map[string]string   `json:"errors,omitempty"`
	// Excluded slices have fewer rows than min_rows: reported, not
	// compared.
	Excluded bool `json:"excluded,omitempty"`
}

// ConfusionTable is the candidate's confusion matrix: rows are true
// labels, columns predicted labels.
type ConfusionTable struct {
	Labels []string  `json:"labels"`
	Counts [][]int64 `json:"counts"`
}

// Check kinds.
const (
	CheckMin          = "min"
	CheckMax          = "max"
	CheckMaxDecrease  = "max_decrease"
	CheckMaxIncrease  = "max_increase"
	CheckMaxWorsening = "max_worsening"
	CheckMaxDisparity = "max_disparity"
	CheckMinRatio     = "min_ratio"
)

// Check is one threshold and its outcome.
type Check struct {
	Metric string `json:"metric"`
	// Slice is the slicing column of a slice check.
	Slice string `json:"slice,omitempty"`
	Kind  string `json:"kind"`
	// Threshold is the bound: a value for min/max, a change for
	// max_decrease/max_increase/max_worsening, a difference for
	// max_disparity, a ratio for min_ratio.
	Threshold float64 `json:"threshold"`
	Relative  bool    `json:"relative,omitempty"`
	// Value is what was compared with the threshold.
	Value     *float64 `json:"value,omitempty"`
	Candidate *float64 `json:"candidate,omitempty"`
	Baseline  *float64 `json:"baseline,omitempty"`
	Passed    bool     `json:"passed"`
	// Skipped checks passed because they did not apply (a change
	// threshold without a baseline).
	Skipped bool   `json:"skipped,omitempty"`
	Message string `json:"message"`
}

func fptr(v float64) *float64 { return &v }

func num(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// direction returns a metric check's direction.
func direction(m MetricCheck) Direction {
	if m.Direction != "" {
		return m.Direction
	}
	if info, ok := evaluate.Lookup(m.Name); ok && !info.HigherIsBetter {
		return LowerIsBetter
	}
	return HigherIsBetter
}

// valueChecks checks a value against a threshold.
func valueChecks(metric, slice string, t *ValueThreshold, value *float64, why string) []Check {
	if t == nil {
		return nil
	}
	var out []Check
	add := func(kind string, bound float64, ok func(v float64) bool, op string) {
		c := Check{Metric: metric, Slice: slice, Kind: kind, Threshold: bound, Value: value, Candidate: value}
		switch {
		case value == nil:
			c.Message = fmt.Sprintf("%s has no value: %s", metric, why)
		case ok(*value):
			c.Passed = true
			c.Message = fmt.Sprintf("%s %s %s %s", metric, num(*value), op, num(bound))
		default:
			neg := map[string]string{"≥": "<", "≤": ">"}[op]
			c.Message = fmt.Sprintf("%s %s %s %s %s", metric, num(*value), neg, kind, num(bound))
		}
		if slice != "" {
			c.Message = "slices by " + slice + ": " + c.Message
		}
		out = append(out, c)
	}
	if t.Min != nil {
		add(CheckMin, *t.Min, func(v float64) bool { return v >= *t.Min }, "≥")
	}
	if t.Max != nil {
		add(CheckMax, *t.Max, func(v float64) bool { return v <= *t.Max }, "≤")
	}
	return out
}

// changeChecks checks a metric's change from the baseline.
func changeChecks(m MetricCheck, mv MetricValue, hasBaseline bool) []Check {
	c := m.Change
	if c == nil {
		return nil
	}
	dir := direction(m)
	type bound struct {
		kind string
		t    float64
		up   bool // bounds an increase
	}
	var bounds []bound
	if c.MaxDecrease != nil {
		bounds = append(bounds, bound{CheckMaxDecrease, *c.MaxDecrease, false})
	}
	if c.MaxIncrease != nil {
		bounds = append(bounds, bound{CheckMaxIncrease, *c.MaxIncrease, true})
	}
	if c.MaxWorsening != nil {
		bounds = append(bounds, bound{CheckMaxWorsening, *c.MaxWorsening, dir == LowerIsBetter})
	}
	delta := mv.Delta
	unit := ""
	if c.Relative {
		delta, unit = mv.RelativeDelta, " (relative)"
	}
	var out []Check
	for _, b := range bounds {
		ch := Check{Metric: m.Name, Kind: b.kind, Threshold: b.t, Relative: c.Relative, Value: delta, Candidate: mv.Candidate, Baseline: mv.Baseline}
		way := "decrease"
		if b.up {
			way = "increase"
		}
		switch {
		case !hasBaseline:
			ch.Passed, ch.Skipped = true, true
			ch.Message = fmt.Sprintf("%s: no baseline to compare with (rubber stamp)", m.Name)
		case mv.Candidate == nil:
			ch.Message = fmt.Sprintf("%s has no value: %s", m.Name, mv.Error)
		case mv.Baseline == nil:
			ch.Message = fmt.Sprintf("%s of the baseline has no value: %s", m.Name, mv.BaselineError)
		case delta == nil:
			ch.Message = fmt.Sprintf("%s: the relative change from a baseline of 0 is undefined", m.Name)
		default:
			change := *delta
			if !b.up {
				change = -change
			}
			ch.Passed = change <= b.t
			verb := "within"
			if !ch.Passed {
				verb = "exceeds"
			}
			ch.Message = fmt.Sprintf("%s %s vs baseline %s: %s of %s%s %s max %s", m.Name, num(*mv.Candidate), num(*mv.Baseline),
				way, num(max(change, 0)), unit, verb, num(b.t))
		}
		out = append(out, ch)
	}
	return out
}

// sliceChecks checks a slice report's disparities and values.
func sliceChecks(sc SliceCheck, rep SliceReport) []Check {
	var out []Check
	for _, d := range rep.Disparities {
		where := "slices by " + sc.Column + ": "
		if d.Slices < 2 {
			if sc.MaxDisparity != nil || sc.MinRatio != nil {
				kind, t := CheckMaxDisparity, 0.0
				if sc.MaxDisparity != nil {
					t = *sc.MaxDisparity
				} else {
					kind, t = CheckMinRatio, *sc.MinRatio
				}
				out = append(out, Check{Metric: d.Metric, Slice: sc.Column, Kind: kind, Threshold: t,
					Message: fmt.Sprintf("%s%s: %d slice(s) with a value; a disparity needs two", where, d.Metric, d.Slices)})
			}
		} else {
			if sc.MaxDisparity != nil {
				c := Check{Metric: d.Metric, Slice: sc.Column, Kind: CheckMaxDisparity, Threshold: *sc.MaxDisparity, Value: fptr(d.Difference)}
				c.Passed = d.Difference <= *sc.MaxDisparity
				verb := "≤"
				if !c.Passed {
					verb = "> max_disparity"
				}
				c.Message = fmt.Sprintf("%s%s disparity %s (%s %s − %s %s) %s %s", where, d.Metric, num(d.Difference),
					d.MaxSlice, num(d.Max), d.MinSlice, num(d.Min), verb, num(*sc.MaxDisparity))
				out = append(out, c)
			}
			if sc.MinRatio != nil {
				c := Check{Metric: d.Metric, Slice: sc.Column, Kind: CheckMinRatio, Threshold: *sc.MinRatio, Value: d.Ratio}
				if d.Ratio == nil {
					c.Message = fmt.Sprintf("%s%s ratio is undefined (min %s, max %s)", where, d.Metric, num(d.Min), num(d.Max))
				} else {
					c.Passed = *d.Ratio >= *sc.MinRatio
					verb := "≥"
					if !c.Passed {
						verb = "< min_ratio"
					}
					c.Message = fmt.Sprintf("%s%s ratio %s (%s %s / %s %s) %s %s", where, d.Metric, num(*d.Ratio),
						d.MinSlice, num(d.Min), d.MaxSlice, num(d.Max), verb, num(*sc.MinRatio))
				}
				out = append(out, c)
			}
		}
		if sc.Threshold != nil {
			// Every compared slice within the bounds: check the extremes.
			var lo, hi *float64
			if d.Slices > 0 {
				lo, hi = fptr(d.Min), fptr(d.Max)
			}
			if sc.Threshold.Min != nil {
				out = append(out, sliceBound(sc, d, CheckMin, *sc.Threshold.Min, lo, d.MinSlice)...)
			}
			if sc.Threshold.Max != nil {
				out = append(out, sliceBound(sc, d, CheckMax, *sc.Threshold.Max, hi, d.MaxSlice)...)
			}
		}
	}
	return out
}

func sliceBound(sc SliceCheck, d evaluate.Disparity, kind string, bound float64, v *float64, key string) []Check {
	t := &ValueThreshold{}
	if kind == CheckMin {
		t.Min = &bound
	} else {
		t.Max = &bound
	}
	cs := valueChecks(d.Metric, sc.Column, t, v, "no slice has a value")
	for i := range cs {
		if v != nil {
			cs[i].Message += " (slice " + key + ")"
		}
	}
	return cs
}

// finish sets Passed and Failed from the checks.
func (r *Result) finish() {
	r.Passed = true
	r.Failed = nil
	for _, c := range r.Checks {
		if !c.Passed {
			r.Passed = false
			r.Failed = append(r.Failed, c.Message)
		}
	}
}

// Summary is one line about the result: "passed" or the failed checks.
func (r *Result) Summary() string {
	if r.Passed {
		s := fmt.Sprintf("passed %d check(s)", len(r.Checks))
		if r.RubberStamp {
			s += " (rubber stamp: no baseline)"
		}
		return s
	}
	return "failed: " + strings.Join(r.Failed, "; ")
}

func finiteOrNil(v float64, err error) (*float64, string) {
	if err != nil {
		return nil, err.Error()
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, "not a finite number"
	}
	return &v, ""
}
