package gate

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
)

// The fixtures in testdata come from testdata/gen.py.

func loadScorer(t *testing.T, dir string) Scorer {
	t.Helper()
	m, err := model.Open(context.Background(), dir, model.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return Scorer{Ref: ModelRef{URI: dir}, Model: m, Signature: m.Bundle.Signature}
}

func csvTable(t *testing.T, path string) Table {
	t.Helper()
	tb, err := LocalTable(path)
	if err != nil {
		t.Fatal(err)
	}
	return *tb
}

func mustPolicy(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const policyHead = `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: quality}
spec:
  model: churn
  data: testdata/eval.csv
  label: y
  features: [x1, x2, x3, x4]
`

type expected map[string]map[string]json.RawMessage

func readExpected(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	data, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw expected
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for k, ms := range raw {
		out[k] = map[string]float64{}
		for m, v := range ms {
			var f float64
			if json.Unmarshal(v, &f) == nil {
				out[k][m] = f
			}
		}
	}
	return out
}

func metric(t *testing.T, r *Result, name string) MetricValue {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no metric %s in %+v", name, r.Metrics)
	return MetricValue{}
}

func checkKinds(r *Result) map[string]bool {
	out := map[string]bool{}
	for _, c := range r.Checks {
		key := c.Metric + "/" + c.Kind
		if c.Slice != "" {
			key = c.Slice + ":" + key
		}
		out[key] = c.Passed
	}
	return out
}

func TestRunMatchesSklearn(t *testing.T) {
	want := readExpected(t)
	good, bad := loadScorer(t, "testdata/good"), loadScorer(t, "testdata/bad")
	p := mustPolicy(t, policyHead+`  metrics:
    - {name: accuracy}
    - {name: f1}
    - {name: roc_auc}
    - {name: log_loss}
`)
	r, err := Run(context.Background(), Evaluation{Policy: p, Candidate: good, Baseline: &bad, Data: csvTable(t, "testdata/eval.csv")})
	if err != nil {
		t.Fatal(err)
	}
	// Probabilities are float32 in both runtimes: compare to 1e-6.
	for _, name := range []string{"accuracy", "f1", "roc_auc", "log_loss"} {
		mv := metric(t, r, name)
		if mv.Candidate == nil || mv.Baseline == nil {
			t.Fatalf("%s: %+v", name, mv)
		}
		if math.Abs(*mv.Candidate-want["good"][name]) > 1e-6 {
			t.Errorf("good %s = %v, sklearn %v", name, *mv.Candidate, want["good"][name])
		}
		if math.Abs(*mv.Baseline-want["bad"][name]) > 1e-6 {
			t.Errorf("bad %s = %v, sklearn %v", name, *mv.Baseline, want["bad"][name])
		}
		if d := *mv.Delta - (*mv.Candidate - *mv.Baseline); d != 0 {
			t.Errorf("%s delta off by %v", name, d)
		}
	}
	if r.Data.Rows != 240 || r.Task != "classification" || r.PositiveClass != "1" || !r.Passed || r.RubberStamp {
		t.Fatalf("result %+v", r)
	}
	if r.Confuse == nil || len(r.Confuse.Labels) != 2 {
		t.Fatalf("confusion %+v", r.Confuse)
	}
	if r.Data.Digest == "" || r.PolicyDigest != p.Digest() {
		t.Fatalf("digests %q %q", r.Data.Digest, r.PolicyDigest)
	}
}

func TestRunPassFail(t *testing.T) {
	good, bad := loadScorer(t, "testdata/good"), loadScorer(t, "testdata/bad")
	data := csvTable(t, "testdata/eval.csv")
	metrics := `  metrics:
    - name: roc_auc
      threshold: {min: 0.75}
      change: {max_worsening: 0.01}
    - name: log_loss
      change: {max_increase: 0.05, relative: true}
`
	tests := []struct {
		name        string
		doc         string
		cand        Scorer
		base        *Scorer
		passed      bool
		rubber      bool
		checks      map[string]bool
		failMessage string
	}{
		{"better candidate passes", policyHead + metrics, good, &bad, true, false,
			map[string]bool{"roc_auc/min": true, "roc_auc/max_worsening": true, "log_loss/max_increase": true}, ""},
		{"worse candidate fails", policyHead + metrics, bad, &good, false, false,
			map[string]bool{"roc_auc/min": false, "roc_auc/max_worsening": false, "log_loss/max_increase": false}, "roc_auc 0.415793 < min 0.75"},
		{"same model passes a zero change bound", policyHead + `  metrics:
    - name: accuracy
      change: {max_decrease: 0, max_increase: 0}
`, good, &good, true, false, map[string]bool{"accuracy/max_decrease": true, "accuracy/max_increase": true}, ""},
		{"rubber stamp skips change thresholds", policyHead + `  metrics:
    - name: roc_auc
      change: {max_worsening: 0}
`, bad, nil, true, true, map[string]bool{"roc_auc/max_worsening": true}, ""},
		{"rubber stamp keeps value thresholds", policyHead + metrics, bad, nil, false, true,
			map[string]bool{"roc_auc/min": false, "roc_auc/max_worsening": true, "log_loss/max_increase": true}, "roc_auc 0.415793 < min 0.75"},
		{"slice disparity fails", policyHead + `  metrics:
    - {name: accuracy, threshold: {min: 0.7}}
  slices:
    - column: region
      metrics: [accuracy]
      max_disparity: 0.2
      min_ratio: 0.9
`, good, nil, false, true, map[string]bool{"accuracy/min": true, "region:accuracy/max_disparity": false, "region:accuracy/min_ratio": false},
			"slices by region: accuracy disparity 0.474643 (b 0.939759 − c 0.465116) > max_disparity 0.2"},
		{"slice disparity passes a looser bound", policyHead + `  metrics:
    - {name: accuracy}
  slices:
    - column: region
      metrics: [accuracy, roc_auc]
      max_disparity: 0.5
      threshold: {min: 0.45}
      min_rows: 72
`, good, nil, true, true, map[string]bool{"region:accuracy/max_disparity": true, "region:roc_auc/max_disparity": true, "region:accuracy/min": true, "region:roc_auc/min": true}, ""},
		{"slices too small to compare fail", policyHead + `  metrics:
    - {name: accuracy}
  slices:
    - {column: region, metrics: [accuracy], max_disparity: 0.5, min_rows: 84}
`, good, nil, false, true, map[string]bool{"region:accuracy/max_disparity": false}, "1 slice(s) with a value; a disparity needs two"},
		{"undefined metric fails its check", policyHead + `  metrics:
    - {name: precision_macro, threshold: {min: 0.1}}
    - {name: roc_auc_ovr, threshold: {min: 0.1}}
  slices:
    - {column: region, metrics: [accuracy], threshold: {min: 0.0}}
`, good, nil, true, true, map[string]bool{"precision_macro/min": true, "roc_auc_ovr/min": true, "region:accuracy/min": true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Run(context.Background(), Evaluation{Policy: mustPolicy(t, tt.doc), Candidate: tt.cand, Baseline: tt.base, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if r.Passed != tt.passed || r.RubberStamp != tt.rubber {
				t.Fatalf("passed %v rubber %v: %s", r.Passed, r.RubberStamp, r.Summary())
			}
			got := checkKinds(r)
			for k, want := range tt.checks {
				if p, ok := got[k]; !ok || p != want {
					t.Errorf("check %s: passed %v (present %v), want %v; checks %v", k, p, ok, want, got)
				}
			}
			if len(got) != len(tt.checks) {
				t.Errorf("checks %v, want %v", got, tt.checks)
			}
			if tt.failMessage != "" && !strings.Contains(strings.Join(r.Failed, "\n"), tt.failMessage) {
				t.Errorf("failures %q lack %q", r.Failed, tt.failMessage)
			}
		})
	}
}

func TestRunSlicesMatchSklearn(t *testing.T) {
	want := readExpected(t)
	raw, _ := os.ReadFile("testdata/expected.json")
	var all map[string]map[string]map[string]float64
	json.Unmarshal(raw, &all)
	_ = want
	p := mustPolicy(t, policyHead+`  metrics: [{name: accuracy}]
  slices:
    - {column: region, metrics: [accuracy, f1, roc_auc, log_loss], max_disparity: 1}
`)
	r, err := Run(context.Background(), Evaluation{Policy: p, Candidate: loadScorer(t, "testdata/good"), Data: csvTable(t, "testdata/eval.csv")})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Slices) != 1 || len(r.Slices[0].Slices) != 3 {
		t.Fatalf("%+v", r.Slices)
	}
	for _, sv := range r.Slices[0].Slices {
		for m, v := range sv.Values {
			w := all["good_slices"][sv.Key][m]
			if v == nil || math.Abs(*v-w) > 1e-6 {
				t.Errorf("slice %s %s = %v, sklearn %v", sv.Key, m, v, w)
			}
		}
	}
}

func TestRunRegression(t *testing.T) {
	want := readExpected(t)["reg"]
	p := mustPolicy(t, `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: reg}
spec:
  model: demand
  data: testdata/eval.csv
  label: target
  metrics:
    - {name: rmse, threshold: {max: 0.3}}
    - {name: mae}
    - {name: r2, threshold: {min: 0.99}}
`)
	r, err := Run(context.Background(), Evaluation{Policy: p, Candidate: loadScorer(t, "testdata/reg"), Data: csvTable(t, "testdata/eval.csv")})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rmse", "mae", "r2"} {
		if v := metric(t, r, name).Candidate; v == nil || math.Abs(*v-want[name]) > 1e-5 {
			t.Errorf("%s = %v, sklearn %v", name, v, want[name])
		}
	}
	// r2 0.98987 < 0.99: fails; rmse passes.
	if r.Passed || !checkKinds(r)["rmse/max"] || checkKinds(r)["r2/min"] || r.Task != "regression" {
		t.Fatalf("%s %+v", r.Summary(), r.Checks)
	}
}

func TestRunErrors(t *testing.T) {
	good := loadScorer(t, "testdata/good")
	data := csvTable(t, "testdata/eval.csv")
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"no label column", strings.Replace(policyHead, "label: y", "label: churned", 1) + "  metrics: [{name: accuracy}]\n", `no column "churned"`},
		{"no slice column", policyHead + "  metrics: [{name: accuracy}]\n  slices: [{column: zone, metrics: [accuracy], max_disparity: 1}]\n", `no column "zone"`},
		{"too many rows", policyHead + "  max_rows: 100\n  metrics: [{name: accuracy}]\n", "more than 100 rows"},
		{"regression target of text", strings.Replace(policyHead, "label: y", "label: region", 1) + "  metrics: [{name: mae}]\n", "must be numeric"},
		{"unknown output", policyHead + "  prediction: scores\n  metrics: [{name: accuracy}]\n", `no output "scores"`},
		{"missing feature", strings.Replace(policyHead, "x4]", "x5]", 1) + "  metrics: [{name: accuracy}]\n", `no column "x5"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), Evaluation{Policy: mustPolicy(t, tt.doc), Candidate: good, Data: data})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not an invalid argument", err)
			}
		})
	}
}

func TestSideReaderKeepsRowsInStep(t *testing.T) {
	// Small reader batches and a larger table: the side columns follow
	// the batches Each hands out, whatever their sizes.
	p := mustPolicy(t, policyHead+"  metrics: [{name: accuracy}]\n  slices: [{column: region, metrics: [accuracy], max_disparity: 1}]\n")
	small := Table{Ref: "eval.csv", Digest: "x", Open: func(ctx context.Context) (table.Reader, error) {
		return table.Open(ctx, "testdata/eval.csv", table.Options{BatchRows: 7})
	}}
	a, err := Run(context.Background(), Evaluation{Policy: p, Candidate: loadScorer(t, "testdata/good"), Data: small})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), Evaluation{Policy: p, Candidate: loadScorer(t, "testdata/good"), Data: csvTable(t, "testdata/eval.csv")})
	if err != nil {
		t.Fatal(err)
	}
	if *a.Metrics[0].Candidate != *b.Metrics[0].Candidate || *a.Slices[0].Disparities[0].Ratio != *b.Slices[0].Disparities[0].Ratio {
		t.Fatalf("batch size changed the metrics: %v %v", a.Metrics, b.Metrics)
	}
}
