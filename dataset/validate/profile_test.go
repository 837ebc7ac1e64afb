package validate

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/stattest"
)

type closer struct{ *memSource }

func (closer) Close() error { return nil }

func computeProfile(t *testing.T, src *memSource) *profile.Profile {
	t.Helper()
	src.i = 0
	p, err := profile.Compute(context.Background(), closer{src}, profile.Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	src.i = 0
	return p
}

func mixedTable(t *testing.T, seed uint64, n int, shift float64, distinct int) *memSource {
	rng := rand.New(rand.NewPCG(seed, 3))
	cols := []col{{name: "n", typ: table.Float64}, {name: "k", typ: table.Int64}, {name: "c", typ: table.String, dict: true},
		{name: "b", typ: table.Bool}, {name: "t", typ: table.Timestamp, unit: table.Microsecond}}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	for i := range rows {
		v := math.Round((rng.NormFloat64()+shift)*float64(distinct)) / float64(distinct)
		rows[i] = []any{v, rng.IntN(7), []string{"a", "b", "c"}[rng.IntN(3)], rng.Float64() < 0.4,
			base.Add(time.Duration(rng.IntN(1000)) * time.Second)}
	}
	return build(t, cols, 512, rows...)
}

// TestFromProfileExact: with few distinct values the stored profile holds
// them all, and every test gives what it gives on the raw values.
func TestFromProfileExact(t *testing.T) {
	refSrc := mixedTable(t, 1, 3000, 0, 20)
	curSrc := mixedTable(t, 2, 2000, 0.3, 20)
	fromProfile := FromProfile(computeProfile(t, refSrc))
	sampled := profileOf(t, refSrc, 0)
	cur := profileOf(t, curSrc, 0)
	for _, c := range []string{"n", "k", "c", "b", "t"} {
		for _, m := range []stattest.Method{"", stattest.MethodPSI, stattest.MethodJensenShannon, stattest.MethodChiSquare} {
			a, err := fromProfile.Distribution(c, 0)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			b, _ := sampled.Distribution(c, 0)
			x, _ := cur.Distribution(c, 0)
			ra, err := stattest.Test(a, x, m, 0)
			if err != nil {
				t.Fatalf("%s %s: %v", c, m, err)
			}
			rb, _ := stattest.Test(b, x, m, 0)
			if math.Abs(ra.Score-rb.Score) > 1e-9*math.Max(1, math.Abs(rb.Score)) || ra.Method != rb.Method {
				t.Errorf("%s %s: from the profile %+v; from the rows %+v", c, m, ra, rb)
			}
		}
	}
	// Skew between a stored profile and live traffic.
	rep, err := Skew(context.Background(), fromProfile, FromProfile(computeProfile(t, curSrc)), SkewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 5 || rep.Rows != 3000 {
		t.Errorf("skew report %+v", rep)
	}
	if rep.Results[0].Status != StatusFailed {
		t.Errorf("n shifted by 0.3 std: %s", describeResult(rep.Results[0]))
	}
	for _, r := range rep.Results[1:] {
		if r.Status != StatusPassed {
			t.Errorf("%s: %s", r.Rule, describeResult(r))
		}
	}
}

// TestFromProfileQuantiles: with many distinct values the profile answers
// from its KLL sketch; the scores stay close to the exact ones.
func TestFromProfileQuantiles(t *testing.T) {
	refSrc := mixedTable(t, 3, 20000, 0, 100000)
	p := computeProfile(t, refSrc)
	if p.Column("n").DistinctExact {
		t.Fatal("the test needs a column with more distinct values than the profile tracks")
	}
	fromProfile := FromProfile(p)
	exact := profileOf(t, refSrc, 1<<20)
	for _, shift := range []float64{0, 0.2} {
		cur := profileOf(t, mixedTable(t, 4, 5000, shift, 100000), 0)
		x, _ := cur.Distribution("n", 0)
		a, err := fromProfile.Distribution("n", 0)
		if err != nil {
			t.Fatal(err)
		}
		if a.Sample.Len() != ProfileQuantiles || a.Rows != 20000 {
			t.Fatalf("sketch sample of %d items, rows %g", a.Sample.Len(), a.Rows)
		}
		b, _ := exact.Distribution("n", 0)
		for _, m := range []stattest.Method{stattest.MethodWasserstein, stattest.MethodKS, stattest.MethodPSI} {
			ra, err := stattest.Test(a, x, m, 0)
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := stattest.Test(b, x, m, 0)
			if ra.Drift != rb.Drift {
				t.Errorf("shift %g %s: drift %v from the sketch, %v exact (%g vs %g)", shift, m, ra.Drift, rb.Drift, ra.Score, rb.Score)
			}
			tol := 0.03
			if m == stattest.MethodKS {
				tol = 0.02 // on the statistic
				if math.Abs(ra.Statistic-rb.Statistic) > tol {
					t.Errorf("shift %g: KS D %g from the sketch, %g exact", shift, ra.Statistic, rb.Statistic)
				}
				continue
			}
			if math.Abs(ra.Score-rb.Score) > tol {
				t.Errorf("shift %g %s: %g from the sketch, %g exact", shift, m, ra.Score, rb.Score)
			}
		}
	}
}

func TestFromProfileErrors(t *testing.T) {
	src := build(t, []col{{name: "s", typ: table.String}, {name: "t", typ: table.Timestamp}}, 100, func() [][]any {
		var rows [][]any
		for i := 0; i < 3000; i++ {
			rows = append(rows, []any{strings.Repeat("x", i%2000+1), time.Unix(int64(i), 0)})
		}
		return rows
	}()...)
	p := FromProfile(computeProfile(t, src))
	if _, err := p.Distribution("nope", 0); err == nil || !strings.Contains(err.Error(), `no column "nope"`) {
		t.Errorf("unknown column: %v", err)
	}
	if _, err := p.Distribution("s", 0); err == nil || !strings.Contains(err.Error(), "most frequent values only") {
		t.Errorf("inexact categories: %v", err)
	}
	if _, err := p.Distribution("s", stattest.Numerical); err == nil {
		t.Error("numerical test on strings: no error")
	}
	if _, err := p.Distribution("t", stattest.Categorical); err == nil {
		t.Error("categorical test on timestamps: no error")
	}
}
