package gate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

const goodPolicy = `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata:
  name: churn-quality
  description: the churn model must stay good
spec:
  model: churn
  data: churn-eval@3/test.parquet
  label: churned
  positive_class: 1
  metrics:
    - name: roc_auc
      threshold: {min: 0.8}
      change: {max_worsening: 0.01}
    - name: log_loss
      change: {max_increase: 0.05, relative: true}
    - name: accuracy
  slices:
    - column: region
      metrics: [accuracy]
      max_disparity: 0.1
      min_ratio: 0.8
      min_rows: 30
  protect_aliases: [champion]
  protect_endpoints: [churn-prod]
`

func TestParseGoodPolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(goodPolicy))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	if p.Metadata.Name != "churn-quality" || s.Model != "churn" || s.Label != "churned" || s.PositiveClass != "1" {
		t.Fatalf("%+v", p)
	}
	if len(s.Metrics) != 3 || *s.Metrics[0].Threshold.Min != 0.8 || *s.Metrics[0].Change.MaxWorsening != 0.01 || !s.Metrics[1].Change.Relative {
		t.Fatalf("metrics %+v", s.Metrics)
	}
	if s.Slices[0].Column != "region" || *s.Slices[0].MaxDisparity != 0.1 || s.Slices[0].MinRows != 30 {
		t.Fatalf("slices %+v", s.Slices)
	}
	n := p.Normalized()
	if n.Spec.Baseline != DefaultBaseline || n.Spec.Task != "classification" {
		t.Fatalf("normalized %+v", n.Spec)
	}
	ref, err := ParseDataRef(s.Data)
	if err != nil || ref.Dataset == nil || ref.Dataset.Dataset != "churn-eval" || ref.Dataset.Version != 3 || ref.Path != "test.parquet" {
		t.Fatalf("data ref %+v %v", ref, err)
	}
	// The JSON form parses to the same policy, with the same digest.
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParsePolicy(js)
	if err != nil {
		t.Fatalf("JSON form: %v\n%s", err, js)
	}
	if q.Digest() != p.Digest() {
		t.Fatalf("digests differ after a JSON round trip")
	}
	q.Spec.Metrics[0].Threshold.Min = ptr(0.81)
	if q.Digest() == p.Digest() {
		t.Fatalf("a changed threshold keeps the digest")
	}
}

func ptr(f float64) *float64 { return &f }

func errorsAs(err error) (FieldErrors, bool) {
	var fe FieldErrors
	ok := errors.As(err, &fe)
	return fe, ok
}

// replace swaps one line of goodPolicy (by its exact text) for another.
func replace(old, new string) string {
	if !strings.Contains(goodPolicy, old) {
		panic("no " + old)
	}
	return strings.Replace(goodPolicy, old, new, 1)
}

func TestParseBadPolicies(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the message, each
	}{
		{"not yaml", "apiVersion: [", []string{"not a YAML or JSON document"}},
		{"empty", "", []string{"not a YAML or JSON document"}},
		{"two documents", goodPolicy + "---\nkind: x\n", []string{"more than one document"}},
		{"wrong kind", replace("kind: GatePolicy", "kind: Endpoint"), []string{`kind: must be "GatePolicy", not "Endpoint" (line 2)`}},
		{"wrong api version", replace("apiVersion: kiln.dev/v1", "apiVersion: v2"), []string{`apiVersion: must be "kiln.dev/v1"`}},
		{"bad name", replace("name: churn-quality", "name: Churn Quality"), []string{"metadata.name:", "not a valid name", "(line 4)"}},
		{"no name", replace("  name: churn-quality\n", ""), []string{"metadata.name: is required"}},
		{"threshold not a number", replace("threshold: {min: 0.8}", "threshold: {min: high}"), []string{"spec.metrics[0].threshold.min: must be a number (line 13)"}},
		{"second metric threshold", replace("    - name: accuracy\n", "    - name: accuracy\n      threshold: {min: [1]}\n"), []string{"spec.metrics[2].threshold.min: must be a number"}},
		{"unknown field", replace("  label: churned", "  labels: churned"), []string{"spec.labels: unknown field (known: model, data, label,", "(line 9)"}},
		{"unknown metric", replace("name: roc_auc", "name: auroc"), []string{`spec.metrics[0].name: unknown metric "auroc"`}},
		{"mixed tasks", replace("name: accuracy", "name: rmse"), []string{"spec.metrics[2].name: rmse is a regression metric; the policy's task is classification"}},
		{"task mismatch", replace("  label: churned", "  label: churned\n  task: regression"), []string{"spec.metrics[0].name: roc_auc is a classification metric; the policy's task is regression", "spec.positive_class: applies to classification only"}},
		{"bad task", replace("  label: churned", "  label: churned\n  task: ranking"), []string{"spec.task: must be classification or regression"}},
		{"duplicate metric", replace("name: accuracy", "name: roc_auc"), []string{`spec.metrics[2].name: metric "roc_auc" is listed twice`}},
		{"min above max", replace("threshold: {min: 0.8}", "threshold: {min: 0.8, max: 0.5}"), []string{"spec.metrics[0].threshold: min 0.8 is greater than max 0.5"}},
		{"empty threshold", replace("threshold: {min: 0.8}", "threshold: {}"), []string{"spec.metrics[0].threshold: needs min or max"}},
		{"empty change", replace("change: {max_worsening: 0.01}", "change: {relative: true}"), []string{"spec.metrics[0].change: needs max_decrease, max_increase or max_worsening"}},
		{"negative change", replace("change: {max_worsening: 0.01}", "change: {max_worsening: -0.01}"), []string{"spec.metrics[0].change.max_worsening: must not be negative"}},
		{"relative not bool", replace("relative: true", "relative: yes"), []string{"spec.metrics[1].change.relative: must be true or false"}},
		{"nan threshold", replace("threshold: {min: 0.8}", "threshold: {min: .nan}"), []string{"spec.metrics[0].threshold.min: must be a finite number"}},
		{"bad direction", replace("    - name: accuracy\n", "    - name: accuracy\n      direction: up\n"), []string{"spec.metrics[2].direction: must be higher or lower"}},
		{"no data", replace("  data: churn-eval@3/test.parquet\n", ""), []string{"spec.data: is required"}},
		{"bad dataset version", replace("data: churn-eval@3/test.parquet", "data: churn-eval@x/test.parquet"), []string{"spec.data: Invalid dataset version 'x'"}},
		{"dotdot path", replace("data: churn-eval@3/test.parquet", "data: churn-eval@3/../x.csv"), []string{"spec.data:"}},
		{"no model", replace("  model: churn\n", ""), []string{"spec.model: is required"}},
		{"slice on label", replace("column: region", "column: churned"), []string{"spec.slices[0].column: is the label column"}},
		{"slice without bound", replace("      max_disparity: 0.1\n      min_ratio: 0.8\n", ""), []string{"spec.slices[0]: needs max_disparity, min_ratio or threshold"}},
		{"slice ratio range", replace("min_ratio: 0.8", "min_ratio: 1.5"), []string{"spec.slices[0].min_ratio: must be between 0 and 1"}},
		{"slice metric unknown", replace("metrics: [accuracy]", "metrics: [acc]"), []string{`spec.slices[0].metrics[0]: unknown metric "acc"`}},
		{"slice metrics not a list", replace("metrics: [accuracy]", "metrics: accuracy"), []string{"spec.slices[0].metrics: must be a list"}},
		{"min rows not int", replace("min_rows: 30", "min_rows: 3.5"), []string{"spec.slices[0].min_rows: must be an integer"}},
		{"bad alias", replace("protect_aliases: [champion]", "protect_aliases: [champion, v3]"), []string{"spec.protect_aliases[1]: Version alias name 'v3' is reserved."}},
		{"duplicate alias", replace("protect_aliases: [champion]", "protect_aliases: [champion, champion]"), []string{`spec.protect_aliases[1]: "champion" is listed twice`}},
		{"bad endpoint", replace("protect_endpoints: [churn-prod]", "protect_endpoints: [Churn/Prod]"), []string{"spec.protect_endpoints[0]:", "not a valid name"}},
		{"bad baseline", replace("  label: churned", "  label: churned\n  baseline: latest"), []string{"spec.baseline: 'latest' alias name"}},
		{"spec not an object", "apiVersion: kiln.dev/v1\nkind: GatePolicy\nmetadata: {name: x}\nspec: [1]\n", []string{"spec: must be an object (line 4)"}},
		{"no metrics", "apiVersion: kiln.dev/v1\nkind: GatePolicy\nmetadata: {name: x}\nspec: {model: m, data: d@1, label: y}\n", []string{"spec.metrics: needs at least one metric"}},
		{"json bad type", `{"apiVersion": "kiln.dev/v1", "kind": "GatePolicy", "metadata": {"name": "x"}, "spec": {"model": "m", "data": "d@1", "label": "y", "metrics": [{"name": "accuracy", "threshold": {"min": "0.5"}}]}}`,
			[]string{"spec.metrics[0].threshold.min: must be a number (line 1)"}},
		{"negative max rows", replace("  label: churned", "  label: churned\n  max_rows: -1"), []string{"spec.max_rows: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.doc))
			if err == nil {
				t.Fatal("parsed")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not an invalid argument", err)
			}
			if _, ok := errorsAs(err); !ok {
				t.Fatalf("error %v carries no FieldErrors", err)
			}
			msg := errdefs.Message(err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestValidateStruct(t *testing.T) {
	p, err := ParsePolicy([]byte(goodPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Metrics[1].Threshold = &ValueThreshold{}
	p.Spec.Slices[0].Metrics = nil
	err = p.Validate()
	fe, ok := errorsAs(err)
	if !ok || len(fe) != 2 || fe[0].Path != "spec.metrics[1].threshold" || fe[1].Path != "spec.slices[0].metrics" {
		t.Fatalf("%v: %+v", err, fe)
	}
}

func TestParseDataRef(t *testing.T) {
	tests := []struct {
		in      string
		dataset string
		version int64
		path    string
		uri     string
		local   bool
	}{
		{in: "eval@3", dataset: "eval", version: 3},
		{in: "eval@latest/a/b.csv", dataset: "eval", path: "a/b.csv"},
		{in: "eval@v2/test.parquet", dataset: "eval", version: 2, path: "test.parquet"},
		{in: "mlflow-artifacts:/1/abc/artifacts/test.csv", uri: "mlflow-artifacts:/1/abc/artifacts/test.csv"},
		{in: "s3://bucket/eval.parquet", uri: "s3://bucket/eval.parquet"},
		{in: "./data/eval.csv", uri: "./data/eval.csv", local: true},
		{in: "/abs/x@2.csv", uri: "/abs/x@2.csv", local: true},
		{in: "file:///x.csv", uri: "file:///x.csv", local: true},
		{in: "eval.csv", uri: "eval.csv", local: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseDataRef(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.dataset != "" {
				if r.Dataset == nil || r.Dataset.Dataset != tt.dataset || r.Dataset.Version != tt.version || r.Path != tt.path {
					t.Fatalf("%+v", r)
				}
			} else if r.Dataset != nil || r.URI != tt.uri {
				t.Fatalf("%+v", r)
			}
			if r.IsLocal() != tt.local {
				t.Fatalf("IsLocal = %v", r.IsLocal())
			}
			if r.String() != tt.in && tt.dataset == "" {
				t.Fatalf("String %q", r.String())
			}
		})
	}
	for _, bad := range []string{"", "eval@0", "eval@3/../x", "bad name@3", "x\x00@1"} {
		if _, err := ParseDataRef(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(goodPolicy))
	f.Add([]byte(`{"apiVersion": "kiln.dev/v1", "kind": "GatePolicy", "metadata": {"name": "x"}, "spec": {"model": "m", "data": "d@1", "label": "y", "metrics": [{"name": "rmse", "threshold": {"max": 2}}]}}`))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("spec:\n  metrics:\n    - name: !!binary aGk=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrTooLarge) {
				t.Fatalf("error of no domain kind: %v", err)
			}
			return
		}
		// A parsed policy is valid, and survives a JSON round trip.
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParsePolicy(js)
		if err != nil {
			t.Fatalf("JSON form does not parse: %v\n%s", err, js)
		}
		if q.Digest() != p.Digest() {
			t.Fatalf("digest changed in a round trip")
		}
	})
}
