package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

const examplePipeline = `
apiVersion: kiln.dev/v1
kind: Pipeline
metadata: {name: churn-retrain}
spec:
  parameters:
    - {name: data, default: "churn@latest"}
    - {name: min_auc, type: float, default: 0.8}
  steps:
    - name: validate
      command: [kiln, data, validate, "{{params.data}}"]
    - name: train
      depends_on: [validate]
      command: [python, train.py]
      inputs:
        - {name: data, dataset: "{{params.data}}"}
      outputs:
        - {name: model, type: model}
        - {name: auc, type: metric}
      retry: {limit: 2, backoff: 5s}
      timeout: 30m
    - name: register
      depends_on: [train]
      when: "{{steps.train.outputs.auc}} >= {{params.min_auc}}"
      command: [kiln, models, register, "{{steps.train.outputs.model}}"]
  on_exit:
    name: notify
    command: [sh, -c, "echo pipeline {{pipeline.status}}"]
  schedules:
    - {name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, concurrency: forbid}
  triggers:
    - {name: drift, alert: {monitor: churn, rule: data-drift}}
`

func TestParseExample(t *testing.T) {
	p, err := ParsePipeline([]byte(examplePipeline), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Spec.Order(), ","); got != "validate,train,register" {
		t.Errorf("order %s", got)
	}
	if up := p.Spec.Upstream()["register"]; len(up) != 1 || up[0] != "train" {
		t.Errorf("upstream %v", up)
	}
	if p.Spec.Step("notify") == nil || p.Spec.Step("nope") != nil {
		t.Error("Step")
	}
}

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"spec:\n  steps:\n    - {name: a, command: [x], depends_on: [b]}\n    - {name: b, command: [x], depends_on: [a]}", "cycle: a -> b -> a"},
		{"spec:\n  steps:\n    - {name: a, command: [x], depends_on: [zz]}", `spec.steps[0].depends_on[0]: unknown step "zz"`},
		{"spec:\n  steps:\n    - {name: a, command: [\"{{params.q}}\"]}", `spec.steps[0].command[0]: {{params.q}}: unknown parameter "q"`},
		{"spec:\n  steps:\n    - {name: a, command: [x], inputs: [{name: i, from: steps.b.outputs.o}]}\n    - {name: b, command: [x]}", `step "b" has no output "o"`},
		{"spec:\n  steps:\n    - {name: a, command: [x], retry: {limit: 101}}", "spec.steps[0].retry.limit"},
		{"spec:\n  steps:\n    - {name: a, command: [x]}\n  schedules: [{name: s, cron: \"61 * * * *\"}]", "spec.schedules[0].cron"},
		{"spec:\n  steps:\n    - {name: a, command: [x], when: \"a = b\"}", "use =="},
		{"spec:\n  steps:\n    - {name: a, command: [x], bogus: 1}", "bogus"},
	} {
		_, err := ParsePipeline([]byte("metadata: {name: p}\n"+tc.doc), "")
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestExpandAndWhen(t *testing.T) {
	sc := &Scope{Params: map[string]string{"x": "10", "s": "a b"}, Steps: map[string]StepScope{"t": {State: "succeeded", Outputs: map[string]string{"auc": "0.9"}}}}
	if got, err := Expand(`{{ params.x }}-{{"{{"}}`, sc); err != nil || got != "10-{{" {
		t.Errorf("expand %q %v", got, err)
	}
	if _, err := Expand("{{params.nope}}", sc); err == nil || !strings.Contains(err.Error(), "params.nope") {
		t.Errorf("missing: %v", err)
	}
	for expr, want := range map[string]bool{
		"{{steps.t.outputs.auc}} >= 0.8":           true,
		"{{params.x}} > 9":                         true, // numeric, not "10" < "9"
		"'{{params.s}}' == 'a b'":                  true,
		"{{steps.t.state}} in [failed, succeeded]": true,
		"!({{params.x}} == 10) || false":           false,
		"true && {{params.x}} != 10":               false,
	} {
		got, err := EvalWhen(expr, sc)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", expr, got, err)
		}
	}
}

func TestResolveAndKey(t *testing.T) {
	p, err := ParsePipeline([]byte(examplePipeline), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Spec.ResolveParameters(map[string]string{"min_auc": "0.7"})
	if err != nil || got["data"] != "churn@latest" || got["min_auc"] != "0.7" {
		t.Errorf("%v %v", got, err)
	}
	if _, err := p.Spec.ResolveParameters(map[string]string{"min_auc": "x"}); err == nil {
		t.Error("bad float accepted")
	}
	a := CacheKeyInput{Command: []string{"a"}, Env: map[string]string{"A": "1", "B": "2"}}
	b := CacheKeyInput{Command: []string{"a"}, Env: map[string]string{"B": "2", "A": "1"}}
	if a.Key() != b.Key() || len(a.Key()) != 64 {
		t.Error("key")
	}
	b.Version = "2"
	if a.Key() == b.Key() {
		t.Error("version ignored")
	}
	r := &RetryPolicy{Limit: 3, Backoff: Duration(1e9)}
	if r.Delay(1) != 1e9 || r.Delay(3) != 4e9 || r.Attempts() != 4 {
		t.Error("delay")
	}
}
