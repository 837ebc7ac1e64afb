package stattest

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

func numCol(vals ...float64) Column { return Column{Kind: Numerical, Sample: NewSample(vals)} }

func seq(n int, f func(i int) float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

func TestDefaultMethod(t *testing.T) {
	mod := func(k int) func(int) float64 { return func(i int) float64 { return float64(i % k) } }
	cat := func(n, k int) Column {
		m := map[string]float64{}
		for i := 0; i < n; i++ {
			m[string(rune('a'+i%k))]++
		}
		return Column{Kind: Categorical, Counts: m}
	}
	tests := []struct {
		name     string
		ref, cur Column
		want     Method
	}{
		{"small numeric many values", numCol(seq(1000, mod(6))...), numCol(seq(10, mod(6))...), MethodKS},
		{"small numeric 5 values", numCol(seq(100, mod(5))...), numCol(seq(10, mod(5))...), MethodChiSquare},
		{"small numeric 3 values", numCol(seq(100, mod(3))...), numCol(seq(10, mod(3))...), MethodChiSquare},
		{"small numeric 2 values", numCol(seq(100, mod(2))...), numCol(seq(10, mod(2))...), MethodZ},
		{"union of values counts", numCol(seq(100, mod(2))...), numCol(seq(10, func(i int) float64 { return 2 })...), MethodChiSquare},
		{"small categorical 3", cat(50, 3), cat(50, 3), MethodChiSquare},
		{"small categorical 2", cat(50, 2), cat(50, 2), MethodZ},
		{"large numeric", numCol(seq(1001, mod(6))...), numCol(seq(10, mod(6))...), MethodWasserstein},
		{"large numeric few values", numCol(seq(1001, mod(5))...), numCol(seq(10, mod(5))...), MethodJensenShannon},
		{"large categorical", cat(5000, 2), cat(10, 2), MethodJensenShannon},
		{"rows decide, not the subsample", Column{Kind: Numerical, Sample: NewSample(seq(100, mod(50))), Rows: 1e6}, numCol(seq(10, mod(6))...), MethodWasserstein},
	}
	for _, tt := range tests {
		if got := DefaultMethod(tt.ref, tt.cur); got != tt.want {
			t.Errorf("%s: DefaultMethod = %s; want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseMethod(t *testing.T) {
	for in, want := range map[string]Method{
		"ks": MethodKS, "chi2": MethodChiSquare, "chisquare": MethodChiSquare, "z": MethodZ,
		"wasserstein": MethodWasserstein, "jensenshannon": MethodJensenShannon, "PSI": MethodPSI,
		"kl_div": MethodKL, "hellinger": MethodHellinger,
	} {
		got, err := ParseMethod(in)
		if err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseMethod("anderson")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "jensenshannon") {
		t.Errorf("ParseMethod(anderson) = %v; want an invalid-argument error listing the tests", err)
	}
}

func TestTestErrors(t *testing.T) {
	cat := Column{Kind: Categorical, Counts: map[string]float64{"a": 3}}
	tests := []struct {
		name      string
		ref, cur  Column
		method    Method
		threshold float64
	}{
		{"kinds differ", numCol(1, 2), cat, "", 0},
		{"empty reference", numCol(math.NaN(), math.Inf(1)), numCol(1), MethodKS, 0},
		{"empty current", cat, Column{Kind: Categorical}, MethodChiSquare, 0},
		{"ks on categories", cat, cat, MethodKS, 0},
		{"wasserstein on categories", cat, cat, MethodWasserstein, 0},
		{"negative threshold", numCol(1, 2), numCol(1, 2), MethodPSI, -1},
		{"NaN threshold", numCol(1, 2), numCol(1, 2), MethodPSI, math.NaN()},
		{"no kind", Column{}, Column{}, "", 0},
		{"unknown method", numCol(1, 2), numCol(1, 2), "anderson", 0},
	}
	for _, tt := range tests {
		if _, err := Test(tt.ref, tt.cur, tt.method, tt.threshold); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Test error = %v; want invalid argument", tt.name, err)
		}
	}
}

func TestDriftDecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	same := func(n int, shift float64) []float64 {
		return seq(n, func(int) float64 { return rng.NormFloat64() + shift })
	}
	a, b, c := numCol(same(3000, 0)...), numCol(same(3000, 0)...), numCol(same(800, 1.5)...)
	for _, m := range []Method{MethodKS, MethodWasserstein, MethodPSI, MethodKL, MethodJensenShannon, MethodHellinger} {
		r, err := Test(a, b, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Drift {
			t.Errorf("%s: two samples of one normal: drift (score %g, threshold %g)", m, r.Score, r.Threshold)
		}
		if r.Threshold != m.DefaultThreshold() || r.PValue != m.PValue() {
			t.Errorf("%s: threshold %g, p-value %v", m, r.Threshold, r.PValue)
		}
		r, err = Test(a, c, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Drift {
			t.Errorf("%s: shift of 1.5 std: no drift (score %g)", m, r.Score)
		}
	}
	// KS flags drift at p == threshold, chi-square only below it.
	r, err := Test(a, c, MethodKS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r2, _ := Test(a, c, MethodKS, r.Score); !r2.Drift {
		t.Errorf("KS with threshold = p (%g): no drift; Evidently flags p <= threshold", r.Score)
	}
	catA := Column{Kind: Categorical, Counts: map[string]float64{"x": 50, "y": 50, "z": 50}}
	catB := Column{Kind: Categorical, Counts: map[string]float64{"x": 80, "y": 40, "z": 30}}
	r, err = Test(catA, catB, MethodChiSquare, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r2, _ := Test(catA, catB, MethodChiSquare, r.Score); r2.Drift {
		t.Errorf("chi2 with threshold = p (%g): drift; Evidently flags p < threshold", r.Score)
	}
}

func TestResultJSON(t *testing.T) {
	ref := Column{Kind: Categorical, Counts: map[string]float64{"a": 10}}
	cur := Column{Kind: Categorical, Counts: map[string]float64{"a": 5, "b": 5}}
	r, err := Test(ref, cur, MethodChiSquare, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(r.Statistic, 1) || r.Score != 0 || !r.Drift {
		t.Fatalf("new category: %+v; want statistic +Inf, p 0, drift", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"statistic":"Infinity"`) {
		t.Errorf("JSON %s: want the statistic as \"Infinity\"", b)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != r {
		t.Errorf("round trip: %+v; want %+v", back, r)
	}
}

func TestWeightedSample(t *testing.T) {
	if _, err := NewWeightedSample([]float64{1, 2}, []float64{1}); err == nil {
		t.Error("mismatched lengths: no error")
	}
	if _, err := NewWeightedSample([]float64{1}, []float64{-1}); err == nil {
		t.Error("negative weight: no error")
	}
	s, err := NewWeightedSample([]float64{3, 1, math.NaN(), 2}, []float64{2, 1, 5, 0})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.Count() != 3 || s.Min() != 1 || s.Max() != 3 {
		t.Errorf("sample %v (count %g); want values [1 3], count 3", s.Values(), s.Count())
	}
	// A weighted sample tests like the expanded one.
	expanded := NewSample([]float64{1, 3, 3})
	other := NewSample([]float64{0.5, 2, 2.5, 4})
	d1, p1, _ := KS(s, other)
	d2, p2, _ := KS(expanded, other)
	if d1 != d2 || p1 != p2 {
		t.Errorf("KS weighted (%g, %g) != expanded (%g, %g)", d1, p1, d2, p2)
	}
	if s.Std() != expanded.Std() {
		t.Errorf("Std weighted %g != expanded %g", s.Std(), expanded.Std())
	}
}

// TestKSLatticeBruteForce checks the exact two-sample distribution against
// an enumeration of all interleavings of small samples.
func TestKSLatticeBruteForce(t *testing.T) {
	for _, mn := range [][2]int{{3, 4}, {5, 5}, {2, 7}, {6, 4}} {
		m, n := mn[0], mn[1]
		g := gcd(m, n)
		lcm := int64(m/g) * int64(n)
		// Count paths by their statistic (in units of 1/lcm).
		counts := map[int64]int{}
		total := 0
		var walk func(x, y int, maxDev int64)
		walk = func(x, y int, maxDev int64) {
			dev := int64(x)*int64(n/g) - int64(y)*int64(m/g)
			if dev < 0 {
				dev = -dev
			}
			maxDev = max(maxDev, dev)
			if x == m && y == n {
				counts[maxDev]++
				total++
				return
			}
			if x < m {
				walk(x+1, y, maxDev)
			}
			if y < n {
				walk(x, y+1, maxDev)
			}
		}
		walk(0, 0, 0)
		for h := int64(1); h <= lcm; h++ {
			atLeast := 0
			for d, c := range counts {
				if d >= h {
					atLeast += c
				}
			}
			want := float64(atLeast) / float64(total)
			if got := ksLatticeOutside(m, n, g, h); math.Abs(got-want) > 1e-14 {
				t.Errorf("m=%d n=%d h=%d: P = %.17g; enumeration %.17g", m, n, h, got, want)
			}
		}
	}
}

func BenchmarkKSExact10000(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := NewSample(seq(10000, func(int) float64 { return rng.NormFloat64() }))
	y := NewSample(seq(9000, func(int) float64 { return rng.NormFloat64() + 0.5 }))
	for b.Loop() {
		if _, _, err := KS(x, y); err != nil {
			b.Fatal(err)
		}
	}
}
