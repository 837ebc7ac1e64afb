// Package stattest holds the two-sample tests and distances that compare a
// column's distribution with a reference: the drift tests of data
// validation (distribution rules, training/serving skew) and of model
// monitoring.
//
// Definitions, default thresholds and the default choice of test follow
// Evidently's data-drift engine (stattests/ and registry.py), so that a
// score computed here is the score Evidently reports for the same data:
//
//	test           score     drift when           default threshold
//	ks             p-value   p ≤ threshold        0.05
//	chi2           p-value   p < threshold        0.05
//	z              p-value   p < threshold        0.05
//	wasserstein    distance  d ≥ threshold        0.1  (normed by the reference std)
//	jensenshannon  distance  d ≥ threshold        0.1  (natural log, so at most √ln2)
//	psi            index     psi ≥ threshold      0.1
//	kl             nats      kl ≥ threshold       0.1
//	hellinger      distance  d ≥ threshold        0.1
//
// The p-values are computed in pure Go: the exact permutation distribution
// of the two-sample KS statistic for samples of up to 10,000 values and
// the one-sample Kolmogorov distribution beyond (scipy's ks_2samp rule),
// the chi-square survival function through the regularised incomplete
// gamma function, and the normal survival function through erfc.
//
// A numeric column is a Sample: all of its finite values, a uniform
// subsample of them, or the weighted items of a quantile sketch; a
// categorical column is a count per category. The same code serves the
// three; a subsample or a sketch makes the score an estimate (see Column).
package stattest

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Method names a drift test.
type Method string

// The drift tests.
const (
	MethodKS            Method = "ks"
	MethodChiSquare     Method = "chi2"
	MethodZ             Method = "z"
	MethodWasserstein   Method = "wasserstein"
	MethodJensenShannon Method = "jensenshannon"
	MethodPSI           Method = "psi"
	MethodKL            Method = "kl"
	MethodHellinger     Method = "hellinger"
)

// Methods lists the tests in documentation order.
var Methods = []Method{MethodKS, MethodChiSquare, MethodZ, MethodWasserstein, MethodJensenShannon, MethodPSI, MethodKL, MethodHellinger}

// ParseMethod returns the method named s; Evidently's names ("chisquare",
// "kl_div", "wasserstein_distance_norm"…) are accepted too.
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ks", "ks_2samp", "kolmogorov_smirnov":
		return MethodKS, nil
	case "chi2", "chisquare", "chi_square":
		return MethodChiSquare, nil
	case "z", "ztest", "z_test":
		return MethodZ, nil
	case "wasserstein", "wasserstein_distance_norm", "wasserstein_norm":
		return MethodWasserstein, nil
	case "jensenshannon", "jensen_shannon", "js":
		return MethodJensenShannon, nil
	case "psi":
		return MethodPSI, nil
	case "kl", "kl_div", "kullback_leibler":
		return MethodKL, nil
	case "hellinger":
		return MethodHellinger, nil
	}
	names := make([]string, len(Methods))
	for i, m := range Methods {
		names[i] = string(m)
	}
	return "", errdefs.Invalid("unknown drift test %q (one of %s)", s, strings.Join(names, ", "))
}

// PValue reports whether the method's score is a p-value (drift when it is
// small) rather than a distance (drift when it is large).
func (m Method) PValue() bool { return m == MethodKS || m == MethodChiSquare || m == MethodZ }

// DefaultThreshold returns the method's default threshold (Evidently's).
func (m Method) DefaultThreshold() float64 {
	if m.PValue() {
		return 0.05
	}
	return 0.1
}

// NumericOnly reports whether the method applies to numeric columns only.
func (m Method) NumericOnly() bool { return m == MethodKS || m == MethodWasserstein }

// Kind says how a column's values are compared.
type Kind uint8

// Column kinds.
const (
	Numerical Kind = iota + 1
	Categorical
)

func (k Kind) String() string {
	switch k {
	case Numerical:
		return "numerical"
	case Categorical:
		return "categorical"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Column is one side of a comparison: the non-null, finite values of a
// column.
type Column struct {
	Kind Kind
	// Sample holds a numerical column's values: all of them (the scores
	// are then exactly Evidently's), a uniform random subsample (p-values
	// remain valid tests, computed on the subsample's size; distances are
	// estimates whose error shrinks as 1/√size), or a sketch's weighted
	// items (distribution functions within the sketch's rank error).
	Sample *Sample
	// Counts holds a categorical column's count per category.
	Counts map[string]float64
	// Rows is the number of values the column had, when Sample holds fewer
	// (a subsample); 0 means Sample.Count() (or the sum of Counts). It
	// decides the default test, as Evidently decides on len(reference).
	Rows float64
	// Std is the population standard deviation of all the column's values
	// when known exactly (a profile's moments); 0 means it is computed from
	// Sample. It normalises the Wasserstein distance.
	Std float64
}

func (c Column) count() float64 {
	if c.Kind == Categorical {
		s := 0.0
		for _, v := range c.Counts {
			s += v
		}
		return s
	}
	if c.Sample == nil {
		return 0
	}
	return c.Sample.Count()
}

func (c Column) rows() float64 {
	if c.Rows > 0 {
		return c.Rows
	}
	return c.count()
}

// Result is the outcome of one drift test.
type Result struct {
	Method Method `json:"method"`
	// Score is the p-value (ks, chi2, z) or the distance.
	Score float64 `json:"score"`
	// Statistic is the test statistic behind a p-value (KS D, χ², z); it
	// equals Score for distances. It may be +Inf (a category absent from the
	// reference), written "Infinity" in JSON.
	Statistic float64 `json:"statistic"`
	Threshold float64 `json:"threshold"`
	// PValue says Score is a p-value (drift when Score is small).
	PValue bool `json:"p_value"`
	Drift  bool `json:"drift"`
}

// Float is a float64 whose JSON form writes non-finite values as
// "Infinity", "-Infinity" and "NaN" (the protobuf JSON convention), which
// encoding/json refuses as numbers, and reads them back; other packages'
// reports of drift scores use it too.
type Float float64

func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(v)
}

func (f *Float) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "NaN":
			*f = Float(math.NaN())
		case "Infinity":
			*f = Float(math.Inf(1))
		case "-Infinity":
			*f = Float(math.Inf(-1))
		default:
			return fmt.Errorf("stattest: %q is not a number", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

type resultJSON struct {
	Method    Method `json:"method"`
	Score     Float  `json:"score"`
	Statistic Float  `json:"statistic"`
	Threshold Float  `json:"threshold"`
	PValue    bool   `json:"p_value"`
	Drift     bool   `json:"drift"`
}

// MarshalJSON implements json.Marshaler.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{r.Method, Float(r.Score), Float(r.Statistic), Float(r.Threshold), r.PValue, r.Drift})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{j.Method, float64(j.Score), float64(j.Statistic), float64(j.Threshold), j.PValue, j.Drift}
	return nil
}

// DefaultMethod returns the test Evidently picks for a column
// (registry.py's _get_default_stattest): with at most 1,000 reference
// values, KS for a numerical column with more than 5 distinct values,
// else chi-square with more than 2 distinct values and the Z-test with 1
// or 2; with more reference values, the normed Wasserstein distance for a
// numerical column with more than 5 distinct values and Jensen–Shannon
// otherwise. Distinct values are counted over both columns together.
func DefaultMethod(ref, cur Column) Method {
	unique := uniqueUnion(ref, cur)
	if ref.rows() <= 1000 {
		switch {
		case ref.Kind == Numerical && unique > 5:
			return MethodKS
		case unique > 2:
			return MethodChiSquare
		default:
			return MethodZ
		}
	}
	if ref.Kind == Numerical && unique > 5 {
		return MethodWasserstein
	}
	return MethodJensenShannon
}

func uniqueUnion(ref, cur Column) int {
	if ref.Kind == Categorical {
		n := len(ref.Counts)
		for k := range cur.Counts {
			if _, ok := ref.Counts[k]; !ok {
				n++
			}
		}
		return n
	}
	a, _ := valueCounts(ref.Sample, cur.Sample)
	return len(a)
}

// Test runs method (DefaultMethod when empty) on the two columns and
// compares the score with threshold (the method's default when threshold
// is 0). Both columns must be of the same kind and non-empty.
func Test(ref, cur Column, method Method, threshold float64) (Result, error) {
	if ref.Kind != cur.Kind || (ref.Kind != Numerical && ref.Kind != Categorical) {
		return Result{}, errdefs.Invalid("stattest: cannot compare a %v column with a %v one", ref.Kind, cur.Kind)
	}
	if ref.Kind == Numerical && (ref.Sample == nil || cur.Sample == nil) {
		return Result{}, errdefs.Invalid("stattest: numerical column without a sample")
	}
	if ref.count() == 0 || cur.count() == 0 {
		return Result{}, errdefs.Invalid("stattest: empty column (no non-null values)")
	}
	if method == "" {
		method = DefaultMethod(ref, cur)
	}
	if ref.Kind == Categorical && method.NumericOnly() {
		return Result{}, errdefs.Invalid("stattest: %s needs a numerical column", method)
	}
	if threshold == 0 {
		threshold = method.DefaultThreshold()
	}
	if !(threshold > 0) || math.IsInf(threshold, 0) {
		return Result{}, errdefs.Invalid("stattest: threshold %v is not a positive number", threshold)
	}
	r := Result{Method: method, Threshold: threshold, PValue: method.PValue()}
	var err error
	switch method {
	case MethodKS:
		r.Statistic, r.Score, err = KS(ref.Sample, cur.Sample)
	case MethodWasserstein:
		r.Score, err = WassersteinNorm(ref.Sample, cur.Sample, ref.Std)
	case MethodChiSquare:
		p, q := counts(ref, cur)
		r.Statistic, r.Score, err = ChiSquare(p, q)
	case MethodZ:
		p, q := counts(ref, cur)
		r.Statistic, r.Score, err = ZTest(p, q)
	case MethodPSI:
		p, q := shares(ref, cur, true)
		r.Score = PSI(p, q)
	case MethodKL:
		p, q := shares(ref, cur, true)
		r.Score = KLDivergence(p, q)
	case MethodJensenShannon:
		p, q := shares(ref, cur, false)
		r.Score = JensenShannon(p, q)
	case MethodHellinger:
		var p, q []float64
		if ref.Kind == Numerical {
			// Evidently bins numeric columns by Sturges' rule whatever
			// their number of distinct values.
			edges := sturgesEdges(math.Min(ref.Sample.Min(), cur.Sample.Min()), math.Max(ref.Sample.Max(), cur.Sample.Max()),
				math.RoundToEven(ref.Sample.total+cur.Sample.total))
			p = percents(histogram(ref.Sample, edges), ref.Sample.total, false)
			q = percents(histogram(cur.Sample, edges), cur.Sample.total, false)
		} else {
			p, q = shares(ref, cur, false)
		}
		r.Score = Hellinger(p, q)
	default:
		return Result{}, errdefs.Invalid("stattest: unknown method %q", method)
	}
	if err != nil {
		return Result{}, err
	}
	if !method.PValue() {
		r.Statistic = r.Score
	}
	switch method {
	case MethodKS:
		r.Drift = r.Score <= threshold
	case MethodChiSquare, MethodZ:
		r.Drift = r.Score < threshold
	default:
		r.Drift = r.Score >= threshold
	}
	return r, nil
}

// counts aligns the two columns' counts per category (or per distinct
// value of a numerical column), categories in ascending order.
func counts(ref, cur Column) (p, q []float64) {
	if ref.Kind == Numerical {
		return valueCounts(ref.Sample, cur.Sample)
	}
	keys := make([]string, 0, len(ref.Counts)+len(cur.Counts))
	for k := range ref.Counts {
		keys = append(keys, k)
	}
	for k := range cur.Counts {
		if _, ok := ref.Counts[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	p = make([]float64, len(keys))
	q = make([]float64, len(keys))
	for i, k := range keys {
		p[i], q[i] = ref.Counts[k], cur.Counts[k]
	}
	return p, q
}

// shares returns the binned shares Evidently's distance tests compare.
func shares(ref, cur Column, fillZeros bool) (p, q []float64) {
	if ref.Kind == Numerical {
		return binnedPercents(ref.Sample, cur.Sample, fillZeros)
	}
	a, b := counts(ref, cur)
	return percents(a, sum(a), fillZeros), percents(b, sum(b), fillZeros)
}
