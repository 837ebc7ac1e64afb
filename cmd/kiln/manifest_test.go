package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/deploy"
)

const goodEndpoint = `apiVersion: kiln.dev/v1
kind: Endpoint
metadata:
  name: churn
  labels: {env: prod}
spec:
  model: churn
  routes:
    - name: main
      alias: champion
      weight: 100
  shadow: {version: 7, percent: 10}
  rollout:
    strategy: canary
    steps:
      - {weight: 10, interval: 5m}
      - {weight: 50, interval: 10m}
    analysis: {max_error_rate: 0.01, max_p99_latency: 50ms, min_requests: 100}
`

const goodPolicy = `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: churn-quality}
spec:
  model: churn
  data: churn-eval@3/test.parquet
  label: churned
  metrics:
    - name: roc_auc
      threshold: {min: 0.8}
`

func TestParseManifestsGood(t *testing.T) {
	docs, err := parseManifests("all.yaml", []byte("---\n# leading separator and comments\n---\n"+goodEndpoint+"---\n"+goodPolicy+"---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2", len(docs))
	}
	e := docs[0]
	if e.Ref() != "endpoint/churn" || e.Index != 2 || e.Line != 4 || e.Endpoint == nil {
		t.Fatalf("endpoint doc %+v", e)
	}
	sp := e.Endpoint.Spec
	if sp.Routes[0].Alias != "champion" || sp.Shadow.Version != "7" || sp.Rollout.Steps[1].Interval.D().Minutes() != 10 ||
		*sp.Rollout.Analysis.MaxErrorRate != 0.01 || e.Endpoint.Metadata.Labels["env"] != "prod" {
		t.Fatalf("decoded %+v", sp)
	}
	p := docs[1]
	if p.Ref() != "gatepolicy/churn-quality" || p.Policy == nil || p.Policy.Spec.Label != "churned" {
		t.Fatalf("policy doc %+v", p)
	}
	if !strings.Contains(string(p.JSON), `"min":0.8`) {
		t.Fatalf("policy JSON %s", p.JSON)
	}
	// Normalized: apiVersion, kind and route names are filled in.
	docs, err = parseManifests("e.json", []byte(`{"kind": "Endpoint", "metadata": {"name": "a"}, "spec": {"model": "m", "routes": [{"version": "1", "weight": 1}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := docs[0].Endpoint; got.APIVersion != deploy.APIVersion || got.Spec.Routes[0].Name != "r0" {
		t.Fatalf("normalized %+v", got)
	}
}

// TestParseManifestsErrors pins the exact messages and positions of bad
// documents.
func TestParseManifestsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"typo in a route", `kind: Endpoint
metadata: {name: churn}
spec:
  model: churn
  routes:
    - name: main
      alias: champion
      wieght: 90
`, []string{`e.yaml:8:7: unknown field "wieght" in spec.routes[0] (did you mean "weight"?)`}},
		{"negative weight in a flow mapping", `kind: Endpoint
metadata: {name: churn}
spec:
  model: churn
  routes:
    - {name: a, version: 1, weight: 1}
    - {name: b, version: 2, weight: -5}
`, []string{`e.yaml:6:5: spec.routes: the weights sum to 0: no route would get traffic`, `e.yaml:7:37: spec.routes[1].weight: must not be negative`}},
		{"validation errors sorted by line", `kind: Endpoint
metadata:
  name: Churn
spec:
  routes:
    - {model: m, alias: x, version: 2, weight: 1}
  shadow: {percent: 200}
`, []string{
			`e.yaml:3:9: metadata.name: must be a DNS label: lower-case letters, digits and '-', 1-63 characters, got "Churn"`,
			`e.yaml:6:7: spec.routes[0]: give version or alias, not both`,
			`e.yaml:7:11: spec.shadow.model: required (or set spec.model)`,
			`e.yaml:7:11: spec.shadow: give a version or an alias`,
			`e.yaml:7:21: spec.shadow.percent: must be in (0, 100], got 200`,
		}},
		{"wrong types", `kind: Endpoint
metadata: {name: a}
spec:
  model: m
  routes:
    - {version: 1, weight: fifty}
  rollout:
    strategy: canary
    steps: {weight: 10}
  capacity: {max_workers: 2.5}
`, []string{
			`e.yaml:6:28: spec.routes[0].weight: must be a number, got "fifty"`,
			`e.yaml:9:12: spec.rollout.steps: must be a list, got a mapping`,
			`e.yaml:10:27: spec.capacity.max_workers: must be an integer, got 2.5`,
		}},
		{"bad duration", `kind: Endpoint
metadata: {name: a}
spec:
  model: m
  routes: [{version: 1, weight: 1}]
  rollout:
    strategy: canary
    steps: [{weight: 10, interval: 5 minutes}]
`, []string{`e.yaml:8:36: spec.rollout.steps[0].interval: invalid duration "5 minutes" (use e.g. 30s, 5m, 250ms, 30d)`}},
		{"duplicate field", `kind: Endpoint
metadata: {name: a}
spec:
  model: m
  model: n
  routes: [{version: 1, weight: 1}]
`, []string{`e.yaml:5:3: duplicate field "model" in spec (first at line 4)`}},
		{"unknown top-level field", `kind: Endpoint
metadata: {name: a}
specs: {}
`, []string{`e.yaml:3:1: unknown field "specs" (did you mean "spec"?)`}},
		{"unknown kind", "apiVersion: kiln.dev/v1\nkind: Deployment\n", []string{`e.yaml:2:7: unknown kind "Deployment" (known kinds: Endpoint, GatePolicy, Monitor, AlertReceiver, Pipeline, Entity, FeatureView)`}},
		{"no kind", "metadata: {name: a}\n", []string{`e.yaml:1:1: document 1 has no kind (known kinds: Endpoint, GatePolicy, Monitor, AlertReceiver, Pipeline, Entity, FeatureView)`}},
		{"not a mapping", "- a\n- b\n", []string{`e.yaml:1:1: a document must be a mapping (apiVersion, kind, metadata, spec), got a list`}},
		{"syntax error", "kind: Endpoint\nmetadata: {name: a\n", []string{`e.yaml:2: did not find expected ',' or '}'`}},
		{"bad indentation", "kind: Endpoint\nmetadata:\n  name: a\n spec: {}\n", []string{`e.yaml:4: did not find expected key`}},
		{"second document at fault", goodEndpoint + "---\nkind: Endpoint\nmetadata: {name: b}\nspec: {routes: [{version: 1, weight: 1}]}\n",
			[]string{`e.yaml:22:17: spec.routes[0].model: required (or set spec.model)`}},
		{"gate policy at fault", `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: q}
spec:
  model: churn
  data: churn-eval@3
  label: y
  metrics:
    - {name: roc_auc, treshold: {min: 0.8}}
`, []string{`e.yaml:9:23: unknown field "treshold" in spec.metrics[0] (did you mean "threshold"?)`}},
		{"non-finite number", "kind: Endpoint\nmetadata: {name: a}\nspec: {model: m, routes: [{version: 1, weight: .nan}]}\n",
			[]string{`e.yaml:3:48: spec.routes[0].weight: must be a finite number, got .nan`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := parseManifests("e.yaml", []byte(tc.in))
			var es manifestErrors
			if !errors.As(err, &es) {
				t.Fatalf("got %d documents, error %v; want manifest errors", len(docs), err)
			}
			got := strings.Split(es.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(goodPolicy), 0o644)
	os.WriteFile(filepath.Join(dir, "a.yml"), []byte(goodEndpoint), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a manifest"), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kind: Nope\n"), 0o644)

	docs, err := readManifests([]string{dir, "-"}, strings.NewReader(strings.Replace(goodEndpoint, "name: churn", "name: other", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, d := range docs {
		refs = append(refs, d.Source+" "+d.Ref())
	}
	want := filepath.Join(dir, "a.yml") + " endpoint/churn," + filepath.Join(dir, "b.yaml") + " gatepolicy/churn-quality,stdin endpoint/other"
	if strings.Join(refs, ",") != want {
		t.Fatalf("documents %v, want %s", refs, want)
	}
	// Every file is read before anything is reported; problems of all of
	// them come together.
	_, err = readManifests([]string{bad, dir, bad}, nil)
	if err == nil || err.Error() != bad+`:1:7: unknown kind "Nope" (known kinds: Endpoint, GatePolicy, Monitor, AlertReceiver, Pipeline, Entity, FeatureView)`+"\n"+bad+`:1:7: unknown kind "Nope" (known kinds: Endpoint, GatePolicy, Monitor, AlertReceiver, Pipeline, Entity, FeatureView)` {
		t.Fatalf("error %v", err)
	}
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{nil, "no manifest given"},
		{[]string{filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{t.TempDir()}, "holds no .yaml"},
		{[]string{"-", "-"}, "given twice"},
	} {
		if _, err := readManifests(tc.paths, strings.NewReader("")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("readManifests(%v) = %v, want an error with %q", tc.paths, err, tc.want)
		}
	}
	if _, err := readManifests([]string{"-"}, strings.NewReader("# only a comment\n")); err == nil || !strings.Contains(err.Error(), "no documents") {
		t.Errorf("empty stdin: %v", err)
	}
}

func TestManifestAliasBudget(t *testing.T) {
	// 30000 aliases of one route: a small file, more nodes than one
	// document may have.
	in := "kind: Endpoint\nmetadata: {name: a}\nx: &r {model: m, version: 1, weight: 1}\n"
	in = "kind: Endpoint\nmetadata: {name: a}\nspec:\n  model: m\n  routes: [&r {version: 1, weight: 1, name: a}" + strings.Repeat(", *r", 30000) + "]\n"
	_, err := parseManifests("bomb.yaml", []byte(in))
	if err == nil || !strings.HasPrefix(err.Error(), "bomb.yaml:5:") || !strings.Contains(err.Error(), "too large or too deeply aliased (more than 100000 nodes)") {
		t.Fatalf("error %.300v", err)
	}
}

// FuzzManifest feeds arbitrary bytes to the manifest parser: documents or
// positioned errors, never a panic.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(goodEndpoint))
	f.Add([]byte(goodPolicy))
	f.Add([]byte(goodEndpoint + "---\n" + goodPolicy))
	f.Add([]byte("kind: Endpoint\nmetadata: {name: a}\nspec: {routes: [{version: 1, weight: -1}], shadow: {percent: 200}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("kind: Endpoint\n<<: {x: 1}\n"))
	f.Add([]byte("{\"kind\": \"GatePolicy\", \"metadata\": {\"name\": \"x\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := parseManifests("f.yaml", data)
		if err != nil {
			var es manifestErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v is not a list of manifest errors", err)
			}
			for _, e := range es {
				if !strings.HasPrefix(e.Error(), "f.yaml:") {
					t.Fatalf("error %q does not name the file", e.Error())
				}
			}
			return
		}
		for _, d := range docs {
			if d.Name == "" || len(d.JSON) == 0 || (d.Endpoint == nil) == (d.Policy == nil) {
				t.Fatalf("document %+v", d)
			}
		}
	})
}

func TestUnifiedDiffColors(t *testing.T) {
	var b strings.Builder
	writeUnifiedDiff(&b, "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n", true)
	want := ansiBold + "--- a" + ansiReset + "\n" + ansiBold + "+++ b" + ansiReset + "\n" + ansiCyan + "@@ -1 +1 @@" + ansiReset + "\n" +
		ansiRed + "-x" + ansiReset + "\n" + ansiGreen + "+y" + ansiReset + "\n"
	if b.String() != want {
		t.Fatalf("%q", b.String())
	}
}
