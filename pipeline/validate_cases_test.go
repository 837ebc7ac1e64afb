package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// TestValidateFields runs one refusal per rule of the validator: each
// document breaks one rule, and the error names the field's path and
// says what is wrong.
func TestValidateFields(t *testing.T) {
	const one = "spec:\n  steps:\n    - {name: a, command: [x]}\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"api version", "apiVersion: v9\n" + one, `apiVersion: must be "kiln.dev/v1"`},
		{"kind", "kind: Job\n" + one, `kind: must be "Pipeline"`},
		{"executor", "spec:\n  executor: slurm\n  steps: [{name: a, command: [x]}]", `spec.executor: must be local or kubernetes, not "slurm"`},
		{"parallelism", "spec:\n  parallelism: -1\n  steps: [{name: a, command: [x]}]", "spec.parallelism: must not be negative"},
		{"no steps", "spec: {steps: []}", "a pipeline needs at least one step"},
		{"bad step name", "spec:\n  steps: [{name: 'a b', command: [x]}]", "spec.steps[0].name"},
		{"step twice", "spec:\n  steps: [{name: a, command: [x]}, {name: a, command: [y]}]", `step "a" is defined twice`},
		{"no command", "spec:\n  steps: [{name: a}]", "spec.steps[0].command: is required"},
		{"env name", "spec:\n  steps: [{name: a, command: [x], env: {'1A': v}}]", "spec.steps[0].env.1A: is not an environment variable name"},
		{"parameter name", "spec:\n  parameters: [{name: '9x'}]\n  steps: [{name: a, command: [x]}]", `spec.parameters[0].name: "9x" is not a parameter name`},
		{"parameter twice", "spec:\n  parameters: [{name: x}, {name: x}]\n  steps: [{name: a, command: [x]}]", `parameter "x" is defined twice`},
		{"parameter env clash", "spec:\n  parameters: [{name: a-b}, {name: a_b}]\n  steps: [{name: a, command: [x]}]", "are both $KILN_PARAM_A_B"},
		{"parameter type", "spec:\n  parameters: [{name: x, type: list}]\n  steps: [{name: a, command: [x]}]", `spec.parameters[0].type: must be string, int, float or bool, not "list"`},
		{"parameter default", "spec:\n  parameters: [{name: x, type: int, default: 'ten'}]\n  steps: [{name: a, command: [x]}]", "spec.parameters[0].default"},
		{"input kinds", "spec:\n  steps: [{name: a, command: [x], inputs: [{name: i, dataset: d@1, value: v}]}]", "spec.steps[0].inputs[0]: set exactly one of dataset, artifact, from or value"},
		{"input twice", "spec:\n  steps: [{name: a, command: [x], inputs: [{name: i, value: v}, {name: i, value: w}]}]", `input "i" is defined twice`},
		{"input artifact", "spec:\n  steps: [{name: a, command: [x], inputs: [{name: i, artifact: 'http://x'}]}]", "is not an artifact URI"},
		{"input from syntax", "spec:\n  steps: [{name: a, command: [x], inputs: [{name: i, from: b}]}]", "spec.steps[0].inputs[0].from"},
		{"output type", "spec:\n  steps: [{name: a, command: [x], outputs: [{name: o, type: table}]}]", `must be artifact, metric, parameter or model, not "table"`},
		{"output path", "spec:\n  steps: [{name: a, command: [x], outputs: [{name: o, path: ../o}]}]", "must be a relative path inside the working directory"},
		{"output twice", "spec:\n  steps: [{name: a, command: [x], outputs: [{name: o}, {name: o}]}]", `output "o" is defined twice`},
		{"depends on self", "spec:\n  steps: [{name: a, command: [x], depends_on: [a]}]", `step "a" refers to itself`},
		{"depends twice", "spec:\n  steps: [{name: a, command: [x]}, {name: b, command: [x], depends_on: [a, a]}]", `step "a" is listed twice`},
		{"three-step cycle", "spec:\n  steps: [{name: a, command: [x], depends_on: [c]}, {name: b, command: [x], depends_on: [a]}, {name: c, command: [x], depends_on: [b]}]", "cycle: a -> c -> b -> a"},
		{"upstream template", "spec:\n  steps: [{name: a, command: ['{{steps.zz.outputs.o}}']}]", `unknown step "zz"`},
		{"input template", "spec:\n  steps: [{name: a, command: ['{{inputs.q}}']}]", `the step has no input "q"`},
		{"status outside on_exit", "spec:\n  steps: [{name: a, command: ['{{pipeline.status}}']}]", "only the exit handler (on_exit) knows the pipeline's status"},
		{"on_exit depends", "spec:\n  steps: [{name: a, command: [x]}]\n  on_exit: {name: e, command: [x], depends_on: [a]}", "it has no depends_on"},
		{"depends on exit handler", "spec:\n  steps: [{name: a, command: [x], depends_on: [e]}]\n  on_exit: {name: e, command: [x]}", `"e" is the exit handler`},
		{"when syntax", "spec:\n  steps: [{name: a, command: [x], when: '(1 == 1'}]", "spec.steps[0].when"},
		{"retry backoff", "spec:\n  steps: [{name: a, command: [x], retry: {limit: 1, backoff: 48h}}]", "spec.steps[0].retry.backoff: must be between 0 and 24h"},
		{"retry factor", "spec:\n  steps: [{name: a, command: [x], retry: {limit: 1, factor: 0.5}}]", "spec.steps[0].retry.factor"},
		{"timeout", "spec:\n  steps: [{name: a, command: [x], timeout: -1s}]", "spec.steps[0].timeout: must not be negative"},
		{"resource quantity", "spec:\n  steps: [{name: a, command: [x], resources: {cpu: lots}}]", `"lots" is not a quantity`},
		{"schedule timezone", one + "  schedules: [{name: s, cron: '0 * * * *', timezone: Mars/Olympus}]", "spec.schedules[0].timezone"},
		{"schedule concurrency", one + "  schedules: [{name: s, cron: '0 * * * *', concurrency: queue}]", `must be forbid, allow or replace, not "queue"`},
		{"schedule and trigger names", one + "  schedules: [{name: s, cron: '0 * * * *'}]\n  triggers: [{name: s, webhook: {}}]", "schedules and triggers share names"},
		{"trigger kinds", one + "  triggers: [{name: t, dataset: d, model: m}]", "set exactly one of dataset, model, alert or webhook"},
		{"trigger no kind", one + "  triggers: [{name: t}]", "set exactly one of dataset, model, alert or webhook"},
		{"webhook secret env", one + "  triggers: [{name: t, webhook: {secret_env: 'x y'}}]", "spec.triggers[0].webhook.secret_env"},
		{"trigger unknown parameter", one + "  triggers: [{name: t, webhook: {}, parameters: {nope: v}}]", `the pipeline has no parameter "nope"`},
		{"trigger field", "spec:\n  parameters: [{name: p}]\n  steps: [{name: a, command: [x]}]\n  triggers: [{name: t, dataset: d, parameters: {p: '{{trigger.rule}}'}}]", "{{trigger.rule}}: this trigger's events have"},
		{"alert label prefix alone", "spec:\n  parameters: [{name: p}]\n  steps: [{name: a, command: [x]}]\n  triggers: [{name: t, alert: {monitor: m}, parameters: {p: '{{trigger.label_}}'}}]", "{{trigger.label_}}"},
		{"trigger missing parameter", "spec:\n  parameters: [{name: p}]\n  steps: [{name: a, command: [x]}]\n  triggers: [{name: t, webhook: {}}]", `does not set parameter "p", which has no default`},
		{"unknown field", "spec:\n  steps: [{name: a, command: [x]}]\n  stepz: []", "stepz"},
		{"not yaml", "spec: [", "not a valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			if !strings.Contains(doc, "metadata:") {
				doc = "metadata: {name: p}\n" + doc
			}
			_, err := ParsePipeline([]byte(doc), "")
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an invalid-argument error with %q", err, tc.want)
			}
		})
	}
}

// TestValidateAccepts: documents at the edges of the rules are accepted.
func TestValidateAccepts(t *testing.T) {
	join := make([]string, 0, 500)
	var b strings.Builder
	b.WriteString("metadata: {name: p}\nspec:\n  steps:\n    - {name: root, command: [x]}\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, "    - {name: f%d, command: [x], depends_on: [root]}\n", i)
		join = append(join, fmt.Sprintf("f%d", i))
	}
	fmt.Fprintf(&b, "    - {name: join, command: [x], depends_on: [%s]}\n", strings.Join(join, ", "))
	for _, tc := range []struct{ name, doc string }{
		{"fan-in of 500", b.String()},
		{"alert trigger fields", `metadata: {name: p}
spec:
  parameters: [{name: why}, {name: sev}, {name: team}, {name: ev}]
  steps: [{name: a, command: [x]}]
  triggers:
    - name: drift
      alert: {monitor: churn, rule: data-drift}
      parameters: {why: "{{trigger.monitor}}/{{trigger.rule}} {{trigger.value}} {{trigger.endpoint}} {{trigger.fingerprint}}", sev: "{{trigger.severity}}", team: "{{trigger.label_team}}", ev: "{{trigger.event_id}}"}
`},
		{"dataset trigger, webhook any field", `metadata: {name: p}
spec:
  parameters: [{name: d}, {name: w}]
  steps: [{name: a, command: [x]}]
  triggers:
    - {name: data, dataset: churn, parameters: {d: "{{trigger.dataset}}@{{trigger.version}}", w: x}}
    - {name: hook, webhook: {}, parameters: {d: "{{trigger.anything}}", w: y}}
`},
		{"exit handler status", "metadata: {name: p}\nspec:\n  steps: [{name: a, command: [x]}]\n  on_exit: {name: e, command: [echo, '{{pipeline.status}}']}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePipeline([]byte(tc.doc), ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}
