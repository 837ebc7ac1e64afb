package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// writeCSV writes a table of rows rows; each column is a generator of the
// row's cell.
func writeCSV(t *testing.T, name string, rows int, cols map[string]func(i int) string) string {
	t.Helper()
	names := make([]string, 0, len(cols))
	for n := range cols {
		names = append(names, n)
	}
	// Deterministic column order.
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if names[j] < names[i] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	var b strings.Builder
	b.WriteString(strings.Join(names, ",") + "\n")
	for i := range rows {
		for j, n := range names {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(cols[n](i))
		}
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func normal(seed uint64, mean, std float64) func(int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	return func(int) string { return fmt.Sprintf("%.6f", mean+std*r.NormFloat64()) }
}

func choice(seed uint64, values []string, weights []float64) func(int) string {
	r := rand.New(rand.NewPCG(seed, 2))
	total := 0.0
	for _, w := range weights {
		total += w
	}
	return func(int) string {
		u := r.Float64() * total
		for i, w := range weights {
			if u < w {
				return values[i]
			}
			u -= w
		}
		return values[len(values)-1]
	}
}

func ints(seed uint64, n int) func(int) string {
	r := rand.New(rand.NewPCG(seed, 3))
	return func(int) string { return fmt.Sprint(r.IntN(n)) }
}

// tables writes a reference and a current table of rows rows each: x and s
// drift, y, z, k and flag do not.
func tables(t *testing.T, rows int) (ref, cur string) {
	colors := []string{"red", "green", "blue"}
	ref = writeCSV(t, "ref.csv", rows, map[string]func(int) string{
		"x": normal(1, 0, 1), "y": normal(2, 5, 2), "z": normal(3, 0, 1),
		"s":    choice(4, colors, []float64{6, 3, 1}),
		"k":    ints(5, 4),
		"flag": choice(6, []string{"true", "false"}, []float64{1, 1}),
	})
	cur = writeCSV(t, "cur.csv", rows, map[string]func(int) string{
		"x": normal(11, 1.5, 1), "y": normal(12, 5, 2), "z": normal(13, 0, 1),
		"s":    choice(14, colors, []float64{1, 3, 6}),
		"k":    ints(15, 4),
		"flag": choice(16, []string{"true", "false"}, []float64{1, 1}),
	})
	return ref, cur
}

func profiles(t *testing.T, ref, cur string, exact bool) (*Table, *Table) {
	t.Helper()
	ctx := context.Background()
	r, err := ProfileFiles(ctx, []string{ref}, TableOptions{Exact: exact})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ProfileFiles(ctx, []string{cur}, TableOptions{Exact: exact})
	if err != nil {
		t.Fatal(err)
	}
	if r.Exact != exact || c.Exact != exact {
		t.Fatalf("Exact = %v, %v; want %v", r.Exact, c.Exact, exact)
	}
	return r, c
}

func TestCompareDefaults(t *testing.T) {
	small, smallCur := tables(t, 600)
	large, largeCur := tables(t, 3000)
	tests := []struct {
		name     string
		ref, cur string
		exact    bool
		methods  map[string]stattest.Method
		kinds    map[string]string
		drifted  []string
		datasetD bool
	}{
		{
			name: "small exact", ref: small, cur: smallCur, exact: true,
			methods: map[string]stattest.Method{"x": "ks", "y": "ks", "z": "ks", "s": "chi2", "k": "chi2", "flag": "z"},
			drifted: []string{"x", "s"},
		},
		{
			name: "small sketch", ref: small, cur: smallCur,
			methods: map[string]stattest.Method{"x": "ks", "y": "ks", "z": "ks", "s": "chi2", "k": "chi2", "flag": "z"},
			drifted: []string{"x", "s"},
		},
		{
			name: "large exact", ref: large, cur: largeCur, exact: true,
			methods: map[string]stattest.Method{"x": "wasserstein", "y": "wasserstein", "z": "wasserstein", "s": "jensenshannon", "k": "jensenshannon", "flag": "jensenshannon"},
			drifted: []string{"x", "s"},
		},
		{
			name: "large sketch", ref: large, cur: largeCur,
			methods: map[string]stattest.Method{"x": "wasserstein", "y": "wasserstein", "z": "wasserstein", "s": "jensenshannon", "k": "jensenshannon", "flag": "jensenshannon"},
			drifted: []string{"x", "s"},
		},
	}
	kinds := map[string]string{"x": "numerical", "y": "numerical", "z": "numerical", "s": "categorical", "k": "categorical", "flag": "categorical"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, cur := profiles(t, tc.ref, tc.cur, tc.exact)
			rep, err := Compare(context.Background(), ref, cur, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Total != 6 || rep.Errors != 0 {
				t.Fatalf("Total %d, Errors %d; want 6, 0: %+v", rep.Total, rep.Errors, rep.Features)
			}
			for _, f := range rep.Features {
				if f.Method != tc.methods[f.Name] || f.Kind != kinds[f.Name] {
					t.Errorf("%s: %s %s; want %s %s", f.Name, f.Kind, f.Method, kinds[f.Name], tc.methods[f.Name])
				}
				want := f.Name == "x" || f.Name == "s"
				if f.Drift != want {
					t.Errorf("%s: drift %v (score %v); want %v", f.Name, f.Drift, f.Score, want)
				}
				if f.RefCount != int64(ref.Rows) || f.CurCount != int64(cur.Rows) {
					t.Errorf("%s: counts %d, %d; want %d, %d", f.Name, f.RefCount, f.CurCount, ref.Rows, cur.Rows)
				}
				if f.Threshold != f.Method.DefaultThreshold() {
					t.Errorf("%s: threshold %v", f.Name, f.Threshold)
				}
			}
			if rep.Drifted != 2 || rep.Share != 2.0/6 || rep.DatasetDrift || rep.DriftShare != 0.5 {
				t.Errorf("dataset: %d drifted, share %v, drift %v (share %v)", rep.Drifted, rep.Share, rep.DatasetDrift, rep.DriftShare)
			}
		})
	}
}

// The exact path gives what stattest gives on the raw values.
func TestCompareExactMatchesStattest(t *testing.T) {
	refPath, curPath := tables(t, 3000)
	ref, cur := profiles(t, refPath, curPath, true)
	rep, err := Compare(context.Background(), ref, cur, Options{Features: []string{"x", "z"}, Method: stattest.MethodKS})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Features {
		rc, _ := ref.Distribution(f.Name, stattest.Numerical)
		cc, _ := cur.Distribution(f.Name, stattest.Numerical)
		if rc.Sample.Len() != 3000 || cc.Sample.Len() != 3000 {
			t.Fatalf("%s: samples of %d and %d values", f.Name, rc.Sample.Len(), cc.Sample.Len())
		}
		d, p, err := stattest.KS(rc.Sample, cc.Sample)
		if err != nil || d != f.Statistic || p != f.Score {
			t.Errorf("%s: KS %v %v (%v); report %v %v", f.Name, d, p, err, f.Statistic, f.Score)
		}
	}
}

// Sketches stay close to the exact statistics (the bounds docs/drift.md
// states); decisions agree where the score is far from the threshold. At
// 20,000 values per side a KS p-value or a small Jensen–Shannon distance
// is within the sketch's noise, so only the statistics are compared there.
func TestCompareSketchClose(t *testing.T) {
	refPath, curPath := tables(t, 20000)
	er, ec := profiles(t, refPath, curPath, true)
	sr, sc := profiles(t, refPath, curPath, false)
	tests := []struct {
		method stattest.Method
		bound  func(exact, sketch FeatureResult) bool
		sure   bool // decisions must agree
	}{
		{stattest.MethodWasserstein, func(e, s FeatureResult) bool { return math.Abs(e.Score-s.Score) <= 0.02 }, true},
		{stattest.MethodKS, func(e, s FeatureResult) bool { return math.Abs(e.Statistic-s.Statistic) <= 0.02 }, false},
		{stattest.MethodJensenShannon, func(e, s FeatureResult) bool { return math.Abs(e.Score-s.Score) <= 0.05 }, false},
		{stattest.MethodPSI, func(e, s FeatureResult) bool { return math.Abs(e.Score-s.Score) <= 0.05+0.1*e.Score }, false},
	}
	for _, tc := range tests {
		opts := Options{Features: []string{"x", "y", "z"}, Method: tc.method}
		exact, err := Compare(context.Background(), er, ec, opts)
		if err != nil {
			t.Fatal(err)
		}
		sketch, err := Compare(context.Background(), sr, sc, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range exact.Features {
			s := sketch.Features[i]
			if !tc.bound(e, s) {
				t.Errorf("%s %s: exact %v (statistic %v), sketch %v (%v)", tc.method, e.Name, e.Score, e.Statistic, s.Score, s.Statistic)
			}
			if (tc.sure || e.Name == "x") && e.Drift != s.Drift {
				t.Errorf("%s %s: drift exact %v sketch %v", tc.method, e.Name, e.Drift, s.Drift)
			}
		}
	}
}

// fake is a validate.Profile of fixed columns.
type fake map[string]stattest.Column

func (f fake) Columns() []string {
	var out []string
	for _, n := range []string{"a", "b", "c", "d", "e", "inputs.a", "outputs.p"} {
		if _, ok := f[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func (f fake) Distribution(name string, kind stattest.Kind) (stattest.Column, error) {
	c, ok := f[name]
	if !ok {
		return stattest.Column{}, errdefs.NotFound("no column %q", name)
	}
	if kind != 0 && kind != c.Kind {
		return stattest.Column{}, errdefs.Invalid("column %q is %v", name, c.Kind)
	}
	return c, nil
}

func num(vals ...float64) stattest.Column {
	return stattest.Column{Kind: stattest.Numerical, Sample: stattest.NewSample(vals)}
}

func seq(n int, f func(i int) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func cat(kv ...any) stattest.Column {
	m := map[string]float64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = float64(kv[i+1].(int))
	}
	return stattest.Column{Kind: stattest.Categorical, Counts: m}
}

func TestCompareOptionsAndShare(t *testing.T) {
	base := func(i int) float64 { return float64(i%100) / 10 }
	ref := fake{
		"a": num(seq(500, base)...),
		"b": num(seq(500, base)...),
		"c": cat("x", 100, "y", 100, "z", 100),
		"d": cat("x", 100, "y", 100),
	}
	cur := fake{
		"a": num(seq(500, func(i int) float64 { return base(i) + 3 })...), // drifted
		"b": num(seq(500, base)...),
		"c": cat("x", 100, "y", 100, "z", 100),
		"d": cat("x", 190, "y", 10), // drifted
		"e": cat("x", 1),
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		opts    Options
		drifted int
		total   int
		errors  int
		dataset bool
		check   func(t *testing.T, r *Report)
	}{
		{name: "defaults: half drifted is dataset drift", drifted: 2, total: 4, dataset: true},
		{name: "higher share", opts: Options{DriftShare: 0.6}, drifted: 2, total: 4, dataset: false},
		{
			name:    "method for all, per-feature override",
			opts:    Options{Method: stattest.MethodPSI, PerFeature: map[string]FeatureTest{"d": {Method: stattest.MethodZ}, "b": {Threshold: 0.5}}},
			drifted: 2, total: 4, dataset: true,
			check: func(t *testing.T, r *Report) {
				if f := r.Feature("a"); f.Method != stattest.MethodPSI || f.Threshold != 0.1 {
					t.Errorf("a: %s %v", f.Method, f.Threshold)
				}
				if f := r.Feature("b"); f.Method != stattest.MethodPSI || f.Threshold != 0.5 {
					t.Errorf("b: %s %v", f.Method, f.Threshold)
				}
				if f := r.Feature("d"); f.Method != stattest.MethodZ || f.Threshold != 0.05 || !f.PValue {
					t.Errorf("d: %s %v", f.Method, f.Threshold)
				}
			},
		},
		{
			name:    "unknown and untestable features are errors, not failures",
			opts:    Options{Features: []string{"a", "b", "nope", "e"}, PerFeature: map[string]FeatureTest{"c": {Method: stattest.MethodKS}}},
			drifted: 1, total: 2, errors: 2, dataset: true,
			check: func(t *testing.T, r *Report) {
				if f := r.Feature("nope"); !strings.Contains(f.Error, "reference") || !math.IsNaN(f.Score) || f.Drift {
					t.Errorf("nope: %+v", f)
				}
				if f := r.Feature("e"); !strings.Contains(f.Error, "reference") {
					t.Errorf("e: %+v", f)
				}
			},
		},
		{
			name:   "KS on a categorical column is an error",
			opts:   Options{Features: []string{"c"}, Method: stattest.MethodKS},
			errors: 1,
			check: func(t *testing.T, r *Report) {
				if f := r.Feature("c"); !strings.Contains(f.Error, "numerical") || r.Share != 0 || r.DatasetDrift {
					t.Errorf("c: %+v; share %v", f, r.Share)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compare(ctx, ref, cur, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Drifted != tc.drifted || r.Total != tc.total || r.Errors != tc.errors || r.DatasetDrift != tc.dataset {
				t.Fatalf("drifted %d/%d, errors %d, dataset %v; want %d/%d, %d, %v: %+v", r.Drifted, r.Total, r.Errors, r.DatasetDrift,
					tc.drifted, tc.total, tc.errors, tc.dataset, r.Features)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestCompareInvalid(t *testing.T) {
	ref := fake{"a": num(1, 2, 3)}
	ctx := context.Background()
	for _, opts := range []Options{
		{DriftShare: 1.5},
		{DriftShare: -1},
		{Method: "nope"},
		{Threshold: -1},
		{Threshold: math.Inf(1)},
		{PerFeature: map[string]FeatureTest{"a": {Method: "x"}}},
		{PerFeature: map[string]FeatureTest{"a": {Kind: 9}}},
	} {
		if _, err := Compare(ctx, ref, ref, opts); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: err %v", opts, err)
		}
	}
	if _, err := Compare(ctx, ref, fake{"b": num(1)}, Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no common column: %v", err)
	}
	if _, err := Compare(ctx, nil, ref, Options{}); err == nil {
		t.Error("nil profile: no error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Compare(cancelled, ref, ref, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestPrefixed(t *testing.T) {
	logged := fake{"inputs.a": num(1, 2, 3, 4, 5, 6, 7), "outputs.p": cat("0", 5, "1", 5), "b": num(1)}
	in := Prefixed(logged, "inputs.")
	if got := in.Columns(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("inputs: %v", got)
	}
	out := Prefixed(logged, "outputs.")
	if got := out.Columns(); len(got) != 1 || got[0] != "p" {
		t.Fatalf("outputs: %v", got)
	}
	r, err := Compare(context.Background(), fake{"a": num(1, 2, 3, 4, 5, 6, 7)}, in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Features[0]; f.Name != "a" || f.Method != stattest.MethodKS || f.Drift || f.Score != 1 {
		t.Errorf("%+v", f)
	}
	if _, err := out.Distribution("a", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("outputs.a: %v", err)
	}
}

func TestHistograms(t *testing.T) {
	var refCats, curCats []any
	for i := range 30 {
		refCats = append(refCats, fmt.Sprintf("c%02d", i), 30-i)
		curCats = append(curCats, fmt.Sprintf("c%02d", i), 1+i)
	}
	curCats = append(curCats, "new", 5)
	ref := fake{"a": num(seq(2000, func(i int) float64 { return float64(i) })...), "c": cat(refCats...), "d": num(4, 4, 4)}
	cur := fake{"a": num(seq(2000, func(i int) float64 { return float64(i) + 1000 })...), "c": cat(curCats...), "d": num(4, 4)}
	r, err := Compare(context.Background(), ref, cur, Options{Histograms: true})
	if err != nil {
		t.Fatal(err)
	}
	sum := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s
	}
	a := r.Feature("a").Histogram
	if len(a.Edges) != DisplayBins+1 || a.Edges[0] != 0 || a.Edges[DisplayBins] != 2999 || len(a.Ref) != DisplayBins || len(a.Categories) != 0 {
		t.Fatalf("a: %+v", a)
	}
	if math.Abs(sum(a.Ref)-1) > 1e-12 || math.Abs(sum(a.Cur)-1) > 1e-12 || a.Ref[DisplayBins-1] != 0 || a.Cur[0] != 0 {
		t.Errorf("a shares: %v %v", a.Ref, a.Cur)
	}
	c := r.Feature("c").Histogram
	if len(c.Categories) != DisplayCategories+1 || c.Categories[DisplayCategories] != OtherCategory || len(c.Edges) != 0 {
		t.Fatalf("c: %v", c.Categories)
	}
	if math.Abs(sum(c.Ref)-1) > 1e-9 || math.Abs(sum(c.Cur)-1) > 1e-9 {
		t.Errorf("c shares sum to %v and %v", sum(c.Ref), sum(c.Cur))
	}
	d := r.Feature("d").Histogram
	if len(d.Edges) != 2 || d.Edges[0] != 3.5 || d.Ref[0] != 1 || d.Cur[0] != 1 {
		t.Errorf("d: %+v", d)
	}
	if r2, _ := Compare(context.Background(), ref, cur, Options{}); r2.Features[0].Histogram != nil {
		t.Error("histogram without Options.Histograms")
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	ref := fake{"c": cat("x", 10, "y", 10, "z", 10), "a": num(1, 2, 3, 4, 5, 6, 7, 8)}
	cur := fake{"c": cat("x", 10, "y", 10, "w", 10), "a": num(1, 2, 3, 4, 5, 6, 7, 9)}
	r, err := Compare(context.Background(), ref, cur, Options{Features: []string{"c", "a", "missing"}, Histograms: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Feature("c"); !math.IsInf(c.Statistic, 1) || c.Score != 0 || !c.Drift {
		t.Fatalf("c: %+v (a category absent from the reference: chi² = +Inf)", c)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"statistic":"Infinity"`, `"score":"NaN"`, `"dataset_drift":`, `"histogram":{"categories":`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if string(b) != string(b2) {
		t.Errorf("round trip:\n%s\n%s", b, b2)
	}
	if m := back.Feature("missing"); !math.IsNaN(m.Score) || m.Error == "" {
		t.Errorf("missing: %+v", m)
	}
	if err := json.Unmarshal([]byte(`{"features":[{"name":"a","score":"big"}]}`), &back); err == nil {
		t.Error("a string score decoded")
	}
}

// Integer columns are categorical with at most 10 distinct current values
// (Evidently's inference), numerical beyond; a profile without types
// compares every number numerically.
func TestIntegerKind(t *testing.T) {
	few := writeCSV(t, "few.csv", 300, map[string]func(int) string{"k": ints(1, 10), "f": func(i int) string { return fmt.Sprintf("%d.5", i%4) }})
	many := writeCSV(t, "many.csv", 300, map[string]func(int) string{"k": ints(2, 11), "f": func(i int) string { return fmt.Sprintf("%d.5", i%4) }})
	ctx := context.Background()
	for _, exact := range []bool{true, false} {
		pf, _ := ProfileFiles(ctx, []string{few}, TableOptions{Exact: exact})
		pm, _ := ProfileFiles(ctx, []string{many}, TableOptions{Exact: exact})
		r, err := Compare(ctx, pm, pf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if k := r.Feature("k"); k.Kind != "categorical" || k.Method != stattest.MethodChiSquare {
			t.Errorf("exact %v: k against ≤10 current values: %s %s", exact, k.Kind, k.Method)
		}
		if f := r.Feature("f"); f.Kind != "numerical" || f.Method != stattest.MethodChiSquare {
			t.Errorf("exact %v: f (floats, 4 values): %s %s", exact, f.Kind, f.Method)
		}
		r, _ = Compare(ctx, pf, pm, Options{})
		if k := r.Feature("k"); k.Kind != "numerical" || k.Method != stattest.MethodKS {
			t.Errorf("exact %v: k against 11 current values: %s %s", exact, k.Kind, k.Method)
		}
		r, _ = Compare(ctx, pf, pm, Options{PerFeature: map[string]FeatureTest{"k": {Kind: stattest.Categorical}}})
		if k := r.Feature("k"); k.Kind != "categorical" {
			t.Errorf("exact %v: k forced categorical: %s", exact, k.Kind)
		}
	}
	// Without column types (validate.FromProfile): numerical.
	rd, _ := table.Open(ctx, few, table.Options{})
	p, err := profile.Compute(ctx, rd, profile.Options{})
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Compare(ctx, validate.FromProfile(p), validate.FromProfile(p), Options{Features: []string{"k"}})
	if k := r.Features[0]; k.Kind != "numerical" {
		t.Errorf("untyped k: %s", k.Kind)
	}
	r, _ = Compare(ctx, FromProfile(p), Prefixed(FromProfile(p), ""), Options{Features: []string{"k"}})
	if k := r.Features[0]; k.Kind != "categorical" {
		t.Errorf("typed k: %s", k.Kind)
	}
}

func TestProfileFiles(t *testing.T) {
	ctx := context.Background()
	a := writeCSV(t, "a.csv", 100, map[string]func(int) string{"x": normal(1, 0, 1), "s": choice(2, []string{"p", "q"}, []float64{1, 1})})
	b := writeCSV(t, "b.csv", 50, map[string]func(int) string{"x": normal(3, 0, 1), "s": choice(4, []string{"p", "q"}, []float64{1, 1})})
	other := writeCSV(t, "c.csv", 10, map[string]func(int) string{"y": normal(3, 0, 1)})
	for _, exact := range []bool{true, false} {
		p, err := ProfileFiles(ctx, []string{a, b}, TableOptions{Exact: exact})
		if err != nil {
			t.Fatal(err)
		}
		if p.Rows != 150 {
			t.Errorf("exact %v: %d rows", exact, p.Rows)
		}
		c, _ := p.Distribution("x", 0)
		if c.Sample.Count() != 150 {
			t.Errorf("exact %v: x has %v values", exact, c.Sample.Count())
		}
		s, _ := p.Distribution("s", 0)
		if s.Counts["p"]+s.Counts["q"] != 150 {
			t.Errorf("exact %v: s counts %v", exact, s.Counts)
		}
		if typ, ok := p.ColumnType("x"); !ok || typ != table.Float64 {
			t.Errorf("exact %v: type of x %v", exact, typ)
		}
		if _, err := ProfileFiles(ctx, []string{a, other}, TableOptions{Exact: exact}); err == nil {
			t.Errorf("exact %v: files of different columns merged", exact)
		}
		if _, err := ProfileFiles(ctx, []string{a}, TableOptions{Exact: exact, Columns: []string{"nope"}}); err == nil {
			t.Errorf("exact %v: unknown column accepted", exact)
		}
	}
	// Past the budget, sketches.
	p, err := ProfileFiles(ctx, []string{a}, TableOptions{Exact: true, MaxExactValues: 10})
	if err != nil || p.Exact || p.Rows != 100 {
		t.Errorf("over budget: exact %v, rows %d, %v", p.Exact, p.Rows, err)
	}
	if _, err := ProfileFiles(ctx, nil, TableOptions{}); err == nil {
		t.Error("no files: no error")
	}
	if _, err := ProfileFiles(ctx, []string{filepath.Join(t.TempDir(), "none.csv")}, TableOptions{}); err == nil {
		t.Error("missing file: no error")
	}
}

// defaultMethod is stattest.DefaultMethod.
func TestDefaultMethodShortcut(t *testing.T) {
	for _, tc := range []struct{ ref, cur []float64 }{
		{seq(1000, func(i int) float64 { return float64(i % 6) }), seq(10, func(i int) float64 { return 0 })},
		{seq(1001, func(i int) float64 { return float64(i % 6) }), seq(10, func(i int) float64 { return 0 })},
		{seq(1001, func(i int) float64 { return float64(i % 5) }), seq(10, func(i int) float64 { return 1 })},
		{seq(1001, func(i int) float64 { return float64(i % 5) }), seq(10, func(i int) float64 { return 7 })},
		{seq(5, func(i int) float64 { return float64(i % 2) }), seq(10, func(i int) float64 { return 2 })},
		{seq(5, func(i int) float64 { return float64(i) }), seq(3, func(i int) float64 { return float64(i + 3) })},
		{seq(2000, func(i int) float64 { return float64(i) }), seq(3000, func(i int) float64 { return float64(i) / 3 })},
	} {
		r, c := num(tc.ref...), num(tc.cur...)
		if got, want := defaultMethod(r, c), stattest.DefaultMethod(r, c); got != want {
			t.Errorf("%d/%d values: %s, stattest %s", len(tc.ref), len(tc.cur), got, want)
		}
	}
}

func TestBounds(t *testing.T) {
	path := writeCSV(t, "b.csv", 1001, map[string]func(int) string{
		"x": func(i int) string { return fmt.Sprint(i) },
		"f": func(i int) string { return fmt.Sprintf("%g", float64(i)/10) },
		"s": func(i int) string { return "a" },
		"e": func(i int) string { return "" },
	})
	ctx := context.Background()
	rd, err := table.Open(ctx, path, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Compute(ctx, rd, profile.Options{})
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := Bounds(p, 0)
	if len(b) != 2 || b["x"].Lo != 0 || b["x"].Hi != 1000 || b["f"].Lo != 0 || b["f"].Hi != 100 {
		t.Errorf("min/max: %+v", b)
	}
	b = Bounds(p, 0.01)
	if x := b["x"]; math.Abs(x.Lo-10) > 3 || math.Abs(x.Hi-990) > 3 {
		t.Errorf("1%%/99%%: %+v", x)
	}
	if x := Bounds(p, 0.7)["x"]; math.Abs(x.Lo-500) > 3 || x.Lo != x.Hi {
		t.Errorf("q capped at 0.5: %+v", x)
	}
	if len(Bounds(nil, 0)) != 0 {
		t.Error("nil profile")
	}
}
