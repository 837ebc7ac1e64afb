package validate

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// numbers returns n normal values with the given mean, from a fixed seed.
func numbers(seed uint64, n int, mean float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	v := make([]float64, n)
	for i := range v {
		v[i] = mean + rng.NormFloat64()
	}
	return v
}

func floatsTable(t testing.TB, v []float64) *memSource {
	rows := make([][]any, len(v))
	for i, x := range v {
		rows[i] = []any{x}
	}
	return build(t, floatCol, 500, rows...)
}

func stringsTable(t testing.TB, v []string, dict bool) *memSource {
	rows := make([][]any, len(v))
	for i, x := range v {
		rows[i] = []any{x}
	}
	return build(t, []col{{name: "x", typ: table.String, dict: dict}}, 300, rows...)
}

func profileOf(t testing.TB, src Source, size int) *TableProfile {
	t.Helper()
	p, err := ProfileTable(context.Background(), src, ProfileOptions{SampleSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func refs(profiles map[string]Profile) ReferenceFunc {
	return func(_ context.Context, name string) (Profile, error) {
		p, ok := profiles[name]
		if !ok {
			return nil, errdefs.NotFound("no dataset version %q", name)
		}
		return p, nil
	}
}

func TestDistributionRule(t *testing.T) {
	refVals := numbers(1, 800, 0)
	ref := profileOf(t, floatsTable(t, refVals), 0)
	bigRef := profileOf(t, floatsTable(t, numbers(2, 3000, 0)), 0)
	opts := Options{References: refs(map[string]Profile{"v1": ref, "big": bigRef})}
	same := numbers(3, 600, 0)
	shifted := numbers(4, 600, 0.6)

	tests := []struct {
		name     string
		cur      []float64
		rule     string
		status   Status
		method   stattest.Method
		contains string
	}{
		{"same distribution, default test", same, "  - {check: distribution, column: x, reference: v1}", StatusPassed, stattest.MethodKS, "ks p-value"},
		{"shifted, default test", shifted, "  - {check: distribution, column: x, reference: v1}", StatusFailed, stattest.MethodKS, ""},
		{"large reference picks wasserstein", shifted, "  - {check: distribution, column: x, reference: big}", StatusFailed, stattest.MethodWasserstein, "wasserstein score"},
		{"psi with threshold", shifted, "  - {check: distribution, column: x, reference: v1, test: psi, threshold: 5}", StatusPassed, stattest.MethodPSI, ""},
		{"jensenshannon", shifted, "  - {check: distribution, column: x, reference: v1, test: jensenshannon}", StatusFailed, stattest.MethodJensenShannon, ""},
		{"suite reference", same, "  - {check: distribution, column: x, test: wasserstein}", StatusPassed, stattest.MethodWasserstein, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, "kind: ValidationSuite\nreference: v1\nrules:\n"+tt.rule)
			rep, err := Run(context.Background(), s, floatsTable(t, tt.cur), opts)
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			if r.Status != tt.status || r.Drift == nil || r.Drift.Test.Method != tt.method {
				t.Fatalf("%s; drift %+v", describeResult(r), r.Drift)
			}
			if !strings.Contains(r.Observed, tt.contains) {
				t.Errorf("observed %q lacks %q", r.Observed, tt.contains)
			}
			// The whole columns fit the samples: the score is exactly
			// stattest's on the raw values (which is checked against scipy).
			refCol, _ := ref.Distribution("x", 0)
			if strings.Contains(tt.rule, "big") {
				refCol, _ = bigRef.Distribution("x", 0)
			}
			want, err := stattest.Test(refCol, stattest.Column{Kind: stattest.Numerical, Sample: stattest.NewSample(tt.cur)}, r.Drift.Test.Method, r.Drift.Test.Threshold)
			if err != nil {
				t.Fatal(err)
			}
			if r.Drift.Test != want {
				t.Errorf("rule result %+v; stattest on the raw values %+v", r.Drift.Test, want)
			}
			if r.Drift.ReferenceSampled || r.Drift.CurrentSampled || r.Drift.CurrentValues != float64(len(tt.cur)) {
				t.Errorf("drift %+v: want every value, unsampled", r.Drift)
			}
			if rep.Drift == nil || rep.Drift.Columns != 1 {
				t.Errorf("report drift summary %+v", rep.Drift)
			}
		})
	}
}

func TestDistributionRuleErrors(t *testing.T) {
	ref := profileOf(t, floatsTable(t, numbers(1, 100, 0)), 0)
	strRef := profileOf(t, stringsTable(t, []string{"a", "b"}, false), 0)
	opts := Options{References: refs(map[string]Profile{"v1": ref, "s": strRef})}
	tests := []struct {
		name, rule string
		opts       Options
		contains   string
	}{
		{"no reference named", "  - {check: distribution, column: x}", opts, "no reference"},
		{"no resolver", "  - {check: distribution, column: x, reference: v1}", Options{}, "no reference resolver"},
		{"unknown version", "  - {check: distribution, column: x, reference: v9}", opts, `no dataset version "v9"`},
		{"column missing in the reference", "  - {check: distribution, column: x, reference: s, kind: categorical}", Options{References: refs(map[string]Profile{"s": &TableProfile{cols: map[string]*collector{}}})}, `no column "x" in the profile`},
		{"kinds differ", "  - {check: distribution, column: x, reference: s}", opts, "numerical test needs numbers"},
		{"unknown column", "  - {check: distribution, column: y, reference: v1}", opts, `no column "y"`},
		{"empty current column", "  - {check: distribution, column: x, reference: v1}", opts, "empty column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, "kind: ValidationSuite\nrules:\n"+tt.rule)
			cur := floatsTable(t, numbers(2, 50, 0))
			if tt.name == "empty current column" {
				cur = build(t, floatCol, 10, one(nil, math.NaN())...)
			}
			rep, err := Run(context.Background(), s, cur, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			if r.Status != StatusError || !strings.Contains(r.Error, tt.contains) || rep.Passed {
				t.Errorf("%s; want an error containing %q", describeResult(r), tt.contains)
			}
		})
	}
}

func TestDistributionSampling(t *testing.T) {
	ref := profileOf(t, floatsTable(t, numbers(1, 5000, 0)), 1000)
	opts := Options{References: refs(map[string]Profile{"v1": ref}), Seed: 7}
	s := mustParse(t, "kind: ValidationSuite\nrules:\n  - {check: distribution, column: x, reference: v1, test: wasserstein, sample: 2000}\n")
	run := func(cur []float64) *Result {
		rep, err := Run(context.Background(), s, floatsTable(t, cur), opts)
		if err != nil {
			t.Fatal(err)
		}
		return &rep.Results[0]
	}
	r := run(numbers(2, 8000, 0))
	d := r.Drift
	if d == nil || !d.ReferenceSampled || !d.CurrentSampled || d.ReferenceValues != 1000 || d.ReferenceRows != 5000 || d.CurrentValues != 2000 || d.CurrentRows != 8000 {
		t.Fatalf("drift %+v", d)
	}
	if r.Status != StatusPassed || !strings.Contains(r.Observed, "(sampled)") {
		t.Errorf("same distribution, sampled: %s", describeResult(*r))
	}
	// The estimate is close to the score on every value.
	all, _ := stattest.Test(stattest.Column{Kind: stattest.Numerical, Sample: stattest.NewSample(numbers(1, 5000, 0))},
		stattest.Column{Kind: stattest.Numerical, Sample: stattest.NewSample(numbers(2, 8000, 0))}, stattest.MethodWasserstein, 0)
	if math.Abs(d.Test.Score-all.Score) > 0.05 {
		t.Errorf("sampled score %g, full %g", d.Test.Score, all.Score)
	}
	// Reproducible with the seed.
	if again := run(numbers(2, 8000, 0)); again.Drift.Test != d.Test {
		t.Errorf("second run %+v; first %+v", again.Drift.Test, d.Test)
	}
	if r := run(numbers(3, 8000, 1)); r.Status != StatusFailed {
		t.Errorf("shift of one std, sampled: %s", describeResult(*r))
	}
}

func TestReservoirIsUniform(t *testing.T) {
	// Each of 100 values should land in a sample of 10 about 10% of the
	// time over many seeds.
	hits := make([]int, 100)
	const trials = 4000
	for s := 0; s < trials; s++ {
		r := newReservoir(10, uint64(s), "x")
		for i := 0; i < 100; i++ {
			r.add(float64(i))
		}
		if len(r.vals) != 10 || r.seen != 100 {
			t.Fatalf("reservoir holds %d of %d", len(r.vals), r.seen)
		}
		for _, v := range r.vals {
			hits[int(v)]++
		}
	}
	for i, h := range hits {
		// Binomial(4000, 0.1): mean 400, sd 19; 6 sd is a safe margin.
		if h < 400-114 || h > 400+114 {
			t.Errorf("value %d sampled %d times of %d; want about 400", i, h, trials)
		}
	}
}

func TestCategoricalDistribution(t *testing.T) {
	mk := func(n int, p []float64, seed uint64) []string {
		rng := rand.New(rand.NewPCG(seed, 5))
		out := make([]string, n)
		for i := range out {
			u, acc := rng.Float64(), 0.0
			for k, pk := range p {
				acc += pk
				if u < acc || k == len(p)-1 {
					out[i] = string(rune('a' + k))
					break
				}
			}
		}
		return out
	}
	refVals := mk(900, []float64{0.5, 0.3, 0.2}, 1)
	ref := profileOf(t, stringsTable(t, refVals, true), 0)
	opts := Options{References: refs(map[string]Profile{"v1": ref})}
	s := mustParse(t, "kind: ValidationSuite\nrules:\n  - {check: distribution, column: x, reference: v1}\n")
	for _, tt := range []struct {
		name   string
		cur    []string
		dict   bool
		status Status
	}{
		{"same", mk(700, []float64{0.5, 0.3, 0.2}, 2), false, StatusPassed},
		{"same, dictionary", mk(700, []float64{0.5, 0.3, 0.2}, 2), true, StatusPassed},
		{"shifted", mk(700, []float64{0.2, 0.3, 0.5}, 3), true, StatusFailed},
		{"new category", append(mk(700, []float64{0.5, 0.3, 0.2}, 2), "zzz"), false, StatusFailed},
	} {
		rep, err := Run(context.Background(), s, stringsTable(t, tt.cur, tt.dict), opts)
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if r.Status != tt.status || r.Drift.Test.Method != stattest.MethodChiSquare || r.Drift.Kind != "categorical" {
			t.Errorf("%s: %s %+v", tt.name, describeResult(r), r.Drift)
		}
		counts := map[string]float64{}
		for _, v := range tt.cur {
			counts[v]++
		}
		refCol, _ := ref.Distribution("x", 0)
		want, _ := stattest.Test(refCol, stattest.Column{Kind: stattest.Categorical, Counts: counts}, stattest.MethodChiSquare, 0)
		if r.Drift.Test != want {
			t.Errorf("%s: %+v; stattest on the counts %+v", tt.name, r.Drift.Test, want)
		}
	}
}

func TestSkew(t *testing.T) {
	cols := []col{{name: "age", typ: table.Int64}, {name: "city", typ: table.String}, {name: "score", typ: table.Float64}, {name: "flag", typ: table.Bool}}
	mk := func(seed uint64, n int, ageShift int, cityP float64) *memSource {
		rng := rand.New(rand.NewPCG(seed, 1))
		rows := make([][]any, n)
		for i := range rows {
			city := "paris"
			if rng.Float64() < cityP {
				city = "lyon"
			}
			rows[i] = []any{30 + ageShift + int(rng.NormFloat64()*8), city, rng.NormFloat64(), rng.Float64() < 0.3}
		}
		return build(t, cols, 256, rows...)
	}
	train := profileOf(t, mk(1, 2000, 0, 0.3), 0)
	servingSame := profileOf(t, mk(2, 1500, 0, 0.3), 0)
	servingDrift := profileOf(t, mk(3, 1500, 8, 0.6), 0)

	rep, err := Skew(context.Background(), train, servingSame, SkewOptions{Name: "skew"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.Total != 4 || rep.Drift == nil || rep.Drift.Drifted != 0 || rep.Rows != 2000 {
		t.Errorf("same traffic: %+v %+v", rep, rep.Drift)
	}
	for _, r := range rep.Results {
		if r.Check != CheckSkew || r.Drift == nil {
			t.Errorf("result %+v", r)
		}
	}
	if m := rep.Results[0].Drift.Test.Method; m != stattest.MethodWasserstein {
		t.Errorf("age with 2000 training rows: %s; want Evidently's wasserstein", m)
	}
	if m := rep.Results[1].Drift.Test.Method; m != stattest.MethodJensenShannon {
		t.Errorf("city with 2000 training rows: %s; want jensenshannon", m)
	}

	rep, err = Skew(context.Background(), train, servingDrift, SkewOptions{
		PerFeature: map[string]FeatureTest{"score": {Test: stattest.MethodKS}},
	})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]Status{}
	for _, r := range rep.Results {
		status[r.Columns[0]] = r.Status
	}
	if status["age"] != StatusFailed || status["city"] != StatusFailed || status["score"] != StatusPassed || status["flag"] != StatusPassed {
		t.Errorf("drifted traffic: %v", status)
	}
	if rep.Passed || rep.Drift.Drifted != 2 || rep.Drift.Share != 0.5 || !rep.Drift.DatasetDrift {
		t.Errorf("drift summary %+v", rep.Drift)
	}
	if rep.Results[2].Drift.Test.Method != stattest.MethodKS {
		t.Errorf("per-feature test ignored: %+v", rep.Results[2].Drift)
	}

	// A feature the serving profile lacks.
	rep, err = Skew(context.Background(), train, servingSame, SkewOptions{Features: []string{"age", "zip"}, Severity: SeverityWarning})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[1].Status != StatusError || !strings.Contains(rep.Results[1].Error, `training: no column "zip"`) || !rep.Passed || rep.Warnings != 1 {
		t.Errorf("missing feature: %+v", rep)
	}
	if _, err := Skew(context.Background(), train, &TableProfile{cols: map[string]*collector{}}, SkewOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no common column: %v", err)
	}
}

func TestReportJSONAndText(t *testing.T) {
	ref := profileOf(t, floatsTable(t, numbers(1, 300, 0)), 0)
	cols := []col{{name: "x", typ: table.Float64}, {name: "id", typ: table.Int64}, {name: "s", typ: table.String}}
	rows := [][]any{{0.5, 1, "a\tb"}, {nil, 2, "c"}, {2.5, 2, "d"}}
	for _, v := range numbers(5, 100, 3) {
		rows = append(rows, []any{v, 10, "e"})
	}
	src := build(t, cols, 64, rows...)
	s := mustParse(t, `kind: ValidationSuite
name: demo
rules:
  - {check: not_null, column: x}
  - {check: range, column: x, min: 0, max: 1}
  - {check: unique, column: id, severity: warning}
  - {check: regex, column: s, pattern: '^[a-z]$'}
  - {check: distribution, column: x, reference: v1}
  - {check: not_null, column: missing}
  - {check: row_count, min: 1}
`)
	rep, err := Run(context.Background(), s, src, Options{References: refs(map[string]Profile{"v1": ref})})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if string(b) != string(b2) {
		t.Errorf("JSON round trip differs:\n%s\n%s", b, b2)
	}
	for _, want := range []string{`"suite":"demo"`, `"passed":false`, `"status":"error"`, `"check":"distribution"`, `"test":{"method":"ks"`, `"examples":[{"row":1,"value":"\u003cnull\u003e"}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		"demo: FAILED — 7 rules: 1 passed, 4 failed, 1 errors, 1 warnings; 103 rows",
		"drift: 1 of 1 columns",
		"STATUS", "OBSERVED", "EXPECTED",
		"FAIL    not_null(x)", "WARN    unique(id)", "ERROR   not_null(missing)", `no column "missing"`,
		`e.g. row 0: "a\tb"`, "PASS    row_count",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "\t") {
			t.Errorf("tab in rendered line %q", line)
		}
	}
}

func TestExitCode(t *testing.T) {
	if ExitCode(nil, errors.New("x")) != ExitError || ExitCode(nil, nil) != ExitError {
		t.Error("errors")
	}
	if ExitCode(&Report{Passed: true}, nil) != ExitPassed || ExitCode(&Report{}, nil) != ExitFailed {
		t.Error("pass/fail")
	}
}
