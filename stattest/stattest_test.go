package stattest

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// reference.json is written by testdata/gen.py from scipy (and Evidently's
// formulas on numpy); see that script.
type numericCase struct {
	Name            string   `json:"name"`
	Ref             []int64  `json:"ref"`
	Cur             []int64  `json:"cur"`
	KSStatistic     float64  `json:"ks_statistic"`
	KSPValue        float64  `json:"ks_pvalue"`
	Wasserstein     float64  `json:"wasserstein"`
	WassersteinNorm float64  `json:"wasserstein_norm"`
	PSI             float64  `json:"psi"`
	KL              float64  `json:"kl"`
	JensenShannon   float64  `json:"jensenshannon"`
	Hellinger       float64  `json:"hellinger"`
	ChiSquare       *[]Float `json:"chisquare"`
	Z               *[]Float `json:"z"`
}

type reference struct {
	Scale    float64       `json:"scale"`
	Numeric  []numericCase `json:"numeric"`
	Weighted []struct {
		Ref         []int64   `json:"ref"`
		Cur         []int64   `json:"cur"`
		RefWeights  []float64 `json:"ref_weights"`
		CurWeights  []float64 `json:"cur_weights"`
		Wasserstein float64   `json:"wasserstein"`
	} `json:"weighted"`
	Categorical []struct {
		Name          string   `json:"name"`
		Ref           []string `json:"ref"`
		Cur           []string `json:"cur"`
		ChiSquare     []Float  `json:"chisquare"`
		Z             []Float  `json:"z"`
		PSI           float64  `json:"psi"`
		KL            float64  `json:"kl"`
		JensenShannon float64  `json:"jensenshannon"`
		Hellinger     float64  `json:"hellinger"`
	} `json:"categorical"`
	KStwo []struct {
		N  int     `json:"n"`
		X  float64 `json:"x"`
		SF float64 `json:"sf"`
	} `json:"kstwo"`
	Chi2 []struct {
		DF float64 `json:"df"`
		X  float64 `json:"x"`
		SF float64 `json:"sf"`
	} `json:"chi2"`
	Contingency []struct {
		Table      [][]float64 `json:"table"`
		Correction bool        `json:"correction"`
		Statistic  float64     `json:"statistic"`
		PValue     float64     `json:"pvalue"`
		DOF        int         `json:"dof"`
	} `json:"contingency"`
}

func loadReference(t *testing.T) *reference {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Scale == 0 || len(ref.Numeric) == 0 || len(ref.KStwo) == 0 {
		t.Fatal("testdata/reference.json is incomplete; rerun testdata/gen.py")
	}
	return &ref
}

// close reports whether got matches want to a relative tolerance rel, or an
// absolute one abs for values near zero.
func close(got, want, rel, abs float64) bool {
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return got == want || (math.IsNaN(got) && math.IsNaN(want))
	}
	return math.Abs(got-want) <= math.Max(rel*math.Abs(want), abs)
}

const (
	relTol = 1e-9
	// p-values: the same relative tolerance, or 1e-15 absolute for p-values
	// near zero, where scipy's 1 − Φ and our erfc part ways in the last bits.
	pAbsTol = 1e-15
)

func (r *reference) sample(k []int64) *Sample {
	v := make([]float64, len(k))
	for i, x := range k {
		v[i] = float64(x) / r.Scale
	}
	return NewSample(v)
}

func TestNumericAgainstScipy(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Numeric {
		t.Run(c.Name, func(t *testing.T) {
			a, b := ref.sample(c.Ref), ref.sample(c.Cur)
			d, p, err := KS(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if !close(d, c.KSStatistic, relTol, 0) {
				t.Errorf("KS statistic = %.17g; scipy %.17g", d, c.KSStatistic)
			}
			if !close(p, c.KSPValue, relTol, pAbsTol) {
				t.Errorf("KS p-value = %.17g; scipy %.17g", p, c.KSPValue)
			}
			w, err := Wasserstein(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if !close(w, c.Wasserstein, relTol, 1e-15) {
				t.Errorf("Wasserstein = %.17g; scipy %.17g", w, c.Wasserstein)
			}
			ra, rb := Column{Kind: Numerical, Sample: a}, Column{Kind: Numerical, Sample: b}
			for _, m := range []struct {
				method Method
				want   float64
			}{
				{MethodWasserstein, c.WassersteinNorm},
				{MethodPSI, c.PSI},
				{MethodKL, c.KL},
				{MethodJensenShannon, c.JensenShannon},
				// Evidently's numeric Hellinger is sqrt(1 − Σ√(pq)), which
				// loses digits to cancellation when the distributions are
				// close (1e-8 for identical samples); ours sums (√p − √q)².
				{MethodHellinger, c.Hellinger},
			} {
				r, err := Test(ra, rb, m.method, 0)
				if err != nil {
					t.Fatalf("%s: %v", m.method, err)
				}
				abs := 1e-12
				if m.method == MethodHellinger {
					abs = 1e-7
				}
				if !close(r.Score, m.want, relTol, abs) {
					t.Errorf("%s = %.17g; reference %.17g", m.method, r.Score, m.want)
				}
			}
			if c.ChiSquare != nil {
				r, err := Test(ra, rb, MethodChiSquare, 0)
				if err != nil {
					t.Fatal(err)
				}
				want := floats(*c.ChiSquare)
				if !close(r.Statistic, want[0], relTol, 1e-12) || !close(r.Score, want[1], relTol, pAbsTol) {
					t.Errorf("chi2 = (%.17g, %.17g); scipy (%.17g, %.17g)", r.Statistic, r.Score, want[0], want[1])
				}
			}
			if c.Z != nil {
				r, err := Test(ra, rb, MethodZ, 0)
				if err != nil {
					t.Fatal(err)
				}
				want := floats(*c.Z)
				if !close(r.Statistic, want[0], relTol, 1e-12) || !close(r.Score, want[1], relTol, 1e-14) {
					t.Errorf("z = (%.17g, %.17g); reference (%.17g, %.17g)", r.Statistic, r.Score, want[0], want[1])
				}
			}
		})
	}
}

func TestWeightedWassersteinAgainstScipy(t *testing.T) {
	ref := loadReference(t)
	for i, c := range ref.Weighted {
		conv := func(k []int64) []float64 {
			v := make([]float64, len(k))
			for j, x := range k {
				v[j] = float64(x) / ref.Scale
			}
			return v
		}
		a, err := NewWeightedSample(conv(c.Ref), c.RefWeights)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewWeightedSample(conv(c.Cur), c.CurWeights)
		if err != nil {
			t.Fatal(err)
		}
		w, err := Wasserstein(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if !close(w, c.Wasserstein, relTol, 1e-15) {
			t.Errorf("case %d: Wasserstein = %.17g; scipy %.17g", i, w, c.Wasserstein)
		}
	}
}

func TestCategoricalAgainstScipy(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Categorical {
		t.Run(c.Name, func(t *testing.T) {
			count := func(v []string) Column {
				m := map[string]float64{}
				for _, s := range v {
					m[s]++
				}
				return Column{Kind: Categorical, Counts: m}
			}
			ra, rb := count(c.Ref), count(c.Cur)
			for _, m := range []struct {
				method    Method
				want      float64
				statistic float64
				abs       float64
			}{
				{MethodChiSquare, float64(c.ChiSquare[1]), float64(c.ChiSquare[0]), pAbsTol},
				{MethodZ, float64(c.Z[1]), float64(c.Z[0]), 1e-14},
				{MethodPSI, c.PSI, c.PSI, 1e-12},
				{MethodKL, c.KL, c.KL, 1e-12},
				{MethodJensenShannon, c.JensenShannon, c.JensenShannon, 1e-12},
				{MethodHellinger, c.Hellinger, c.Hellinger, 1e-12},
			} {
				r, err := Test(ra, rb, m.method, 0)
				if err != nil {
					t.Fatalf("%s: %v", m.method, err)
				}
				if m.method == MethodChiSquare && math.IsNaN(m.want) {
					// One category: scipy has 0 degrees of freedom and
					// answers NaN; ChiSquare answers 1 (no evidence of drift).
					m.want = 1
				}
				if !close(r.Score, m.want, relTol, m.abs) {
					t.Errorf("%s score = %.17g; reference %.17g", m.method, r.Score, m.want)
				}
				if !close(r.Statistic, m.statistic, relTol, 1e-12) {
					t.Errorf("%s statistic = %.17g; reference %.17g", m.method, r.Statistic, m.statistic)
				}
			}
		})
	}
}

func TestKolmogorovAgainstScipy(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.KStwo {
		got := kolmogorovSF(c.N, c.X)
		if !close(got, c.SF, relTol, pAbsTol) {
			t.Errorf("kolmogorovSF(%d, %.17g) = %.17g; scipy kstwo.sf %.17g (rel %.2g)", c.N, c.X, got, c.SF, math.Abs(got-c.SF)/c.SF)
		}
	}
}

func TestChi2AgainstScipy(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Chi2 {
		got := chi2SF(c.X, c.DF)
		if !close(got, c.SF, relTol, 1e-300) {
			t.Errorf("chi2SF(%g, df=%g) = %.17g; scipy %.17g", c.X, c.DF, got, c.SF)
		}
	}
	for _, c := range ref.Contingency {
		stat, p, dof, err := ChiSquareContingency(c.Table, c.Correction)
		if err != nil {
			t.Fatal(err)
		}
		if dof != c.DOF || !close(stat, c.Statistic, relTol, 1e-12) || !close(p, c.PValue, relTol, pAbsTol) {
			t.Errorf("ChiSquareContingency(%v, %v) = (%.17g, %.17g, %d); scipy (%.17g, %.17g, %d)",
				c.Table, c.Correction, stat, p, dof, c.Statistic, c.PValue, c.DOF)
		}
	}
}

func floats(v []Float) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
