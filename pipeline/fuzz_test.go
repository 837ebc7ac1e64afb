package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// FuzzParsePipeline feeds arbitrary documents to the parser behind PUT
// /pipelines/{name} and kiln apply: it must never panic, every refusal is
// an invalid-argument error, and an accepted document is a DAG whose
// order names every step once, that re-encodes to JSON and parses again
// to the same order.
func FuzzParsePipeline(f *testing.F) {
	f.Add([]byte(examplePipeline))
	f.Add([]byte("metadata: {name: p}\nspec:\n  steps:\n    - {name: a, command: [x], depends_on: [b]}\n    - {name: b, command: [x]}"))
	f.Add([]byte(`{"metadata":{"name":"p"},"spec":{"steps":[{"name":"a","command":["{{params.x}}"]}],"parameters":[{"name":"x","default":"1"}]}}`))
	f.Add([]byte("metadata: {name: p}\nspec:\n  steps:\n    - {name: a, command: [x], when: \"{{params.x}} >\"}"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePipeline(data, "p")
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error is not invalid-argument: %v", err)
			}
			return
		}
		order := p.Spec.Order()
		if len(order) != len(p.Spec.Steps) {
			t.Fatalf("order %v of %d steps", order, len(p.Spec.Steps))
		}
		pos := map[string]int{}
		for i, n := range order {
			if _, dup := pos[n]; dup {
				t.Fatalf("step %q twice in order %v", n, order)
			}
			pos[n] = i
		}
		for n, ups := range p.Spec.Upstream() {
			for _, u := range ups {
				if pos[u] >= pos[n] {
					t.Fatalf("%q runs before its upstream %q: %v", n, u, order)
				}
			}
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParsePipeline(js, "p")
		if err != nil {
			t.Fatalf("re-encoded document refused: %v\n%s", err, js)
		}
		if a, b := strings.Join(order, ","), strings.Join(q.Spec.Order(), ","); a != b {
			t.Fatalf("order changed on re-parse: %s vs %s", a, b)
		}
	})
}

// fuzzScope is a scope where every reference kind has a value.
var fuzzScope = &Scope{
	Params:  map[string]string{"x": "10", "s": "a b", "e": ""},
	Steps:   map[string]StepScope{"t": {State: "succeeded", Outputs: map[string]string{"auc": "0.9", "m": "runs:/r/model"}}},
	Inputs:  map[string]string{"data": "/tmp/in/data"},
	Trigger: map[string]string{"monitor": "churn", "value": "0.4"},
	Run:     RunScope{ID: "r1", Pipeline: "p"},
}

// FuzzExpand: template expansion never panics, fails only with
// invalid-argument errors, leaves text without "{{" unchanged, and agrees
// with References (text whose references all resolve expands).
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"{{params.x}}", "{{ steps.t.outputs.auc }}-{{\"{{\"}}", "{{inputs.data}}", "{{trigger.monitor}}",
		"{{run.id}}/{{run.pipeline}}", "{{params.nope}}", "{{", "}}{{}}", "{{steps.t.state}}", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Expand(s, fuzzScope)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%q: error is not invalid-argument: %v", s, err)
			}
			return
		}
		if !strings.Contains(s, "{{") && got != s {
			t.Fatalf("%q without templates became %q", s, got)
		}
		if _, err := References(s); err != nil {
			t.Fatalf("%q expands to %q but References refuses it: %v", s, got, err)
		}
	})
}

// FuzzEvalWhen: a when expression never panics, fails only with
// invalid-argument errors, and whatever CheckWhen refuses EvalWhen refuses
// too; negating an expression that evaluates negates its value.
func FuzzEvalWhen(f *testing.F) {
	for _, s := range []string{"{{steps.t.outputs.auc}} >= 0.8", "{{params.x}} > 9", "'{{params.s}}' == 'a b'",
		"{{steps.t.state}} in [failed, succeeded]", "!({{params.x}} == 10) || false", "true && {{params.x}} != 10",
		"((((", "a = b", "{{params.e}}", "'unterminated", "x in [", "1 < 2 < 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := EvalWhen(s, fuzzScope)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%q: error is not invalid-argument: %v", s, err)
			}
			return
		}
		if err := CheckWhen(s); err != nil {
			t.Fatalf("%q evaluates (%v) but CheckWhen refuses it: %v", s, v, err)
		}
		if s == "" {
			return
		}
		if nv, err := EvalWhen("!("+s+")", fuzzScope); err == nil && nv == v {
			t.Fatalf("!(%s) = %v, the same as %s", s, nv, s)
		}
	})
}
