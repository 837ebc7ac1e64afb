package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/server"
)

// declRun runs kiln with args and stdin against $KILN_URL and returns
// stdout, stderr and the exit code.
func declRun(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		var msg error
		code, msg = exitCode(err)
		if msg != nil {
			errOut.WriteString("kiln: " + msg.Error() + "\n")
		}
	}
	return out.String(), errOut.String(), code
}

func declMust(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := declRun(t, stdin, args...)
	if code != 0 {
		t.Fatalf("kiln %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// declServer starts kiln server (its HTTP handler) on SQLite and a
// file:// artifact store in temporary folders, the model cache included,
// and returns its URL.
func declServer(t *testing.T) string {
	t.Helper()
	return declServerWith(t, nil)
}

// declServerWith is declServer with edit applied to the configuration.
func declServerWith(t *testing.T, edit func(*config.Config)) string {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = "" // no shared gRPC port between test servers
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL
}

// registerONNXVersion registers an ONNX fixture of runtime/onnx as the
// next version of a registered model, through the MLflow REST API of the
// server at base.
func registerONNXVersion(t *testing.T, base, name, fixture string) {
	t.Helper()
	call := func(method, path string, body []byte) map[string]any {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		out := map[string]any{}
		json.Unmarshal(raw, &out)
		if res.StatusCode != 200 && out["error_code"] != "RESOURCE_ALREADY_EXISTS" {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return out
	}
	mlflow := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		return call("POST", "/api/2.0/mlflow/"+path, b)
	}
	info := mlflow("runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)["info"].(map[string]any)
	runID := info["run_id"].(string)
	key := strings.TrimPrefix(info["artifact_uri"].(string), "mlflow-artifacts:/")
	onnx, err := os.ReadFile(filepath.Join("../../runtime/onnx/testdata/models", fixture, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	call("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+key+"/model/MLmodel", []byte("flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\nmlflow_version: 3.6.0\n"))
	call("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+key+"/model/model.onnx", onnx)
	mlflow("registered-models/create", map[string]any{"name": name})
	mlflow("model-versions/create", map[string]any{"name": name, "source": "runs:/" + runID + "/model", "run_id": runID})
}

const irisYAML = `# The iris classifier, canaried.
apiVersion: kiln.dev/v1
kind: Endpoint
metadata:
  name: iris
  labels: {team: ml}
spec:
  model: clf
  routes:
    - name: main
      version: 1
      weight: 100
  rollout:
    strategy: canary
    steps:
      - {weight: 10, interval: 1h}
      - {weight: 50, interval: 1h}
    analysis: {max_error_rate: 0.05, min_requests: 1000}
`

const irisPolicy = `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: clf-quality}
spec:
  model: clf
  data: iris-eval@1/test.csv
  label: y
  metrics:
    - name: accuracy
      threshold: {min: 0.9}
`

// TestDeclarativeWorkflow drives kiln apply, get, describe, rollout,
// endpoints events and delete against kiln server (a real deploy Manager
// and gate service on SQLite).
func TestDeclarativeWorkflow(t *testing.T) {
	k := declServer(t)
	t.Setenv("KILN_URL", k)
	t.Setenv("KILN_ACTOR", "tester")
	registerONNXVersion(t, k, "clf", "skl_svc_rbf_multi")
	registerONNXVersion(t, k, "clf", "skl_svc_rbf_multi")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-iris.yaml"), []byte(irisYAML), 0o644)
	os.WriteFile(filepath.Join(dir, "20-policy.yaml"), []byte(irisPolicy), 0o644)

	// First apply: both created, with their diffs.
	out := declMust(t, "", "apply", "-f", dir, "--reason", "first release")
	if !strings.Contains(out, "--- /dev/null\n+++ endpoint/iris\n") || !strings.Contains(out, "+      version: \"1\"\n") ||
		!strings.Contains(out, "endpoint/iris created\n") || !strings.Contains(out, "+++ gatepolicy/clf-quality\n") || !strings.HasSuffix(out, "gatepolicy/clf-quality created\n") {
		t.Fatalf("first apply:\n%s", out)
	}
	// Again: unchanged, nothing recorded.
	if out := declMust(t, "", "apply", "-f", dir); out != "endpoint/iris unchanged\ngatepolicy/clf-quality unchanged\n" {
		t.Fatalf("second apply:\n%s", out)
	}
	var evs []deploy.Event
	if err := json.Unmarshal([]byte(declMust(t, "", "endpoints", "events", "iris", "-o", "json")), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Action != deploy.ActionCreate || evs[0].Actor != "tester" || evs[0].Reason != "first release" {
		t.Fatalf("events after two applies: %+v", evs)
	}

	// GitOps round trip: what get prints, apply takes back unchanged.
	doc := declMust(t, "", "get", "endpoint", "iris", "-o", "yaml")
	if !strings.HasPrefix(doc, "apiVersion: kiln.dev/v1\nkind: Endpoint\nmetadata:\n  name: iris\n") || strings.Contains(doc, "status") {
		t.Fatalf("get -o yaml:\n%s", doc)
	}
	if out := declMust(t, doc, "apply", "-f", "-"); out != "endpoint/iris unchanged\n" {
		t.Fatalf("round trip:\n%s", out)
	}
	if out := declMust(t, declMust(t, "", "get", "endpoints", "-o", "yaml"), "apply", "-f", "-"); out != "endpoint/iris unchanged\n" {
		t.Fatalf("round trip of the listing:\n%s", out)
	}
	policy := declMust(t, "", "get", "gatepolicy", "clf-quality", "-o", "yaml")
	if out := declMust(t, policy, "apply", "-f", "-"); out != "gatepolicy/clf-quality unchanged\n" {
		t.Fatalf("policy round trip:\n%s\n%s", policy, out)
	}
	if out := declMust(t, "", "get", "endpoints"); !strings.Contains(out, "NAME") || !strings.Contains(out, "iris  main=clf/1:100%") {
		t.Fatalf("get endpoints:\n%s", out)
	}
	if out := declMust(t, "", "get", "gatepolicies"); !strings.Contains(out, "clf-quality  clf    iris-eval@1/test.csv  champion  accuracy") {
		t.Fatalf("get gatepolicies:\n%s", out)
	}
	var docs []deploy.Endpoint
	if err := json.Unmarshal([]byte(declMust(t, "", "get", "endpoints", "-o", "json")), &docs); err != nil || len(docs) != 1 || docs[0].Spec.Routes[0].Version != "1" {
		t.Fatalf("get -o json: %v %+v", err, docs)
	}

	// A wrong document: every problem with its line, nothing applied.
	bad := filepath.Join(dir, "30-bad.yaml")
	os.WriteFile(bad, []byte("kind: Endpoint\nmetadata: {name: other}\nspec:\n  model: clf\n  routes:\n    - {version: 1, wieght: 5}\n    - {version: 1, weight: -1}\n"), 0o644)
	_, errOut, code := declRun(t, "", "apply", "-f", dir)
	want := bad + ":6:20: unknown field \"wieght\" in spec.routes[0] (did you mean \"weight\"?)\nkiln: 1 error in the manifests; nothing was applied\n"
	if code != 1 || errOut != want {
		t.Fatalf("bad manifest: exit %d\n%s\nwant\n%s", code, errOut, want)
	}
	os.Remove(bad)

	// The change to version 2, as a dry run: the diff, nothing moves.
	v2 := strings.Replace(irisYAML, "version: 1", "version: 2", 1)
	os.WriteFile(filepath.Join(dir, "10-iris.yaml"), []byte(v2), 0o644)
	out = declMust(t, "", "apply", "-f", dir, "--dry-run")
	wantDiff := "--- endpoint/iris (live)\n+++ endpoint/iris (applied)\n@@ "
	if !strings.HasPrefix(out, wantDiff) || !strings.Contains(out, "\n-      version: \"1\"\n+      version: \"2\"\n") ||
		!strings.HasSuffix(out, "endpoint/iris configured (dry run)\ngatepolicy/clf-quality unchanged (dry run)\n") {
		t.Fatalf("dry run:\n%s", out)
	}
	if out := declMust(t, "", "rollout", "status", "iris"); !strings.Contains(out, "Rollout:  none") {
		t.Fatalf("status after a dry run:\n%s", out)
	}
	out = declMust(t, "", "apply", "-f", filepath.Join(dir, "10-iris.yaml"), "--reason", "v2", "--no-diff")
	if out != "endpoint/iris configured\n" {
		t.Fatalf("apply v2:\n%s", out)
	}
	if out := declMust(t, "", "rollout", "status", "iris"); !strings.Contains(out, "canary progressing, step 1 of 2 (10%") ||
		!strings.Contains(out, "clf/1 (stable) → clf/2 (candidate)") || !strings.Contains(out, "main=clf/1:90%,canary=clf/2:10%") {
		t.Fatalf("status of the canary:\n%s", out)
	}

	// Steering by hand.
	if out := declMust(t, "", "rollout", "pause", "iris", "--reason", "looking at latency"); !strings.HasPrefix(out, "endpoint/iris paused\n") || !strings.Contains(out, "canary paused, step 1 of 2") {
		t.Fatalf("pause:\n%s", out)
	}
	if _, errOut, code := declRun(t, "", "rollout", "pause", "iris"); code != 1 || !strings.Contains(errOut, "already paused") {
		t.Fatalf("pause twice: %d %s", code, errOut)
	}
	declMust(t, "", "rollout", "resume", "iris")
	// A watcher sees the canary progress, then end when it is promoted.
	lines := make(chan string, 100)
	watched := make(chan int, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(chanWriter(lines))
		cmd.SetErr(io.Discard)
		cmd.SetArgs([]string{"rollout", "status", "iris", "--watch", "--interval", "20ms"})
		code := 0
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			code, _ = exitCode(err)
		}
		close(lines)
		watched <- code
	}()
	if first := <-lines; !strings.Contains(first, "canary progressing, step 1 of 2 (10%") {
		t.Fatalf("first watched line %q", first)
	}
	if out := declMust(t, "", "rollout", "promote", "iris", "--reason", "looks good"); !strings.Contains(out, "canary succeeded") || !strings.Contains(out, "main=clf/2:100%") {
		t.Fatalf("promote:\n%s", out)
	}
	var last string
	for l := range lines {
		last = l
	}
	if code := <-watched; code != 0 || !strings.Contains(last, "canary succeeded; traffic main=clf/2:100%") {
		t.Fatalf("watcher: exit %d, last line %q", code, last)
	}
	if out, _, code := declRun(t, "", "rollout", "status", "iris", "--watch"); code != 0 || !strings.Contains(out, "canary succeeded; traffic main=clf/2:100%") {
		t.Fatalf("watch a finished rollout: %d\n%s", code, out)
	}
	declMust(t, "", "rollout", "rollback", "iris", "--reason", "bad predictions")
	if out, errOut, code := declRun(t, "", "rollout", "status", "iris", "--watch"); code != 1 || !strings.Contains(out, "canary rolled_back") || !strings.Contains(errOut, "the rollout of endpoint/iris rolled_back") {
		t.Fatalf("watch a rolled back rollout: %d\n%s%s", code, out, errOut)
	}
	var ro deploy.RolloutStatus
	if err := json.Unmarshal([]byte(declMust(t, "", "rollout", "status", "iris", "-o", "json")), &ro); err != nil || ro.Phase != deploy.PhaseRolledBack {
		t.Fatalf("status -o json: %v %+v", err, ro)
	}

	// describe and events tell the story.
	out = declMust(t, "", "describe", "endpoint", "iris")
	for _, want := range []string{"Name:      iris\n", "Labels:    team=ml\n", "Rollout:   canary, steps 10% for 1h0m0s → 50% for 1h0m0s\n",
		"Analysis:  error rate ≤ 5%, after 1000 requests\n", "Spec routes:\n  NAME  MODEL  WEIGHT\n  main  clf/2  100\n",
		"  main      clf    1        100     100%   ready  -\n", "Phase:     rolled_back\n", "Versions:  clf/1 (stable) → clf/2 (candidate)\n",
		"Statistics:\n", "  iris      endpoint  -        0.0", "Events:\n", "tester  rollback  bad predictions\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	out = declMust(t, "", "endpoints", "events", "iris")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "tester  rollback") ||
		!strings.Contains(out, "looking at latency") || !strings.Contains(out, "first release") {
		t.Fatalf("events:\n%s", out)
	}
	var desc describeResult
	if err := json.Unmarshal([]byte(declMust(t, "", "describe", "endpoint", "iris", "-o", "json")), &desc); err != nil ||
		desc.State.Endpoint.Metadata.Name != "iris" || len(desc.Stats) == 0 || len(desc.Events) == 0 {
		t.Fatalf("describe -o json: %v %+v", err, desc)
	}

	// Completion asks the server for endpoint names.
	if out := declMust(t, "", "__complete", "rollout", "status", "ir"); !strings.HasPrefix(out, "iris\n") {
		t.Fatalf("completion:\n%s", out)
	}
	if out := declMust(t, "", "__complete", "get", "endpoint", ""); !strings.HasPrefix(out, "iris\n") {
		t.Fatalf("completion of get:\n%s", out)
	}

	// A failure on the server stops the run; what came before stays.
	two := filepath.Join(t.TempDir(), "two.yaml")
	os.WriteFile(two, []byte("kind: Endpoint\nmetadata: {name: first}\nspec: {model: clf, routes: [{version: 1, weight: 1}]}\n---\n"+
		"kind: Endpoint\nmetadata: {name: second}\nspec: {model: clf, routes: [{version: 9, weight: 1}]}\n---\n"+
		"kind: Endpoint\nmetadata: {name: third}\nspec: {model: clf, routes: [{version: 1, weight: 1}]}\n"), 0o644)
	out, errOut, code = declRun(t, "", "apply", "-f", two)
	if code != 1 || !strings.HasSuffix(out, "\n+      version: \"1\"\n+      weight: 1\nendpoint/first created\n") ||
		!strings.Contains(errOut, "endpoint/second ("+two+", document 2): spec.routes[0].version: Model Version (name=clf, version=9) not found; applied before it: endpoint/first") {
		t.Fatalf("partial apply: %d\n%s%s", code, out, errOut)
	}
	if _, _, code := declRun(t, "", "get", "endpoint", "third"); code != 1 {
		t.Fatalf("the document after the failure was applied")
	}

	// Delete by the documents, then by name.
	if out := declMust(t, "", "delete", "-f", dir, "--reason", "retired"); out != "endpoint/iris deleted\ngatepolicy/clf-quality deleted\n" {
		t.Fatalf("delete -f:\n%s", out)
	}
	if _, errOut, code := declRun(t, "", "get", "endpoint", "iris"); code != 1 || !strings.Contains(errOut, "iris") {
		t.Fatalf("get after delete: %d %s", code, errOut)
	}
	if out := declMust(t, "", "delete", "endpoint", "first"); out != "endpoint/first deleted\n" {
		t.Fatalf("delete:\n%s", out)
	}
	if out := declMust(t, "", "delete", "endpoint", "first", "--ignore-not-found"); out != "endpoint/first not found\n" {
		t.Fatalf("delete --ignore-not-found:\n%s", out)
	}
	if _, _, code := declRun(t, "", "delete", "endpoint", "first"); code != 1 {
		t.Fatalf("delete of a missing endpoint: exit %d", code)
	}
}

func TestDeclarativeArgs(t *testing.T) {
	t.Setenv("KILN_URL", "http://127.0.0.1:1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply"}, `required flag(s) "filename" not set`},
		{[]string{"apply", "-f", "x.yaml", "-o", "xml"}, `unknown --output "xml"`},
		{[]string{"get", "pods"}, `unknown resource type "pods": want endpoints, gatepolicies, monitors, alertreceivers or pipelines`},
		{[]string{"describe", "gatepolicy", "q"}, "describe shows endpoints"},
		{[]string{"delete", "endpoint"}, "accepts 2 arg(s)"},
		{[]string{"rollout", "status", "iris", "--interval", "0s"}, "--interval must be positive"},
	} {
		_, errOut, code := declRun(t, "", tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("kiln %v: exit %d, %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}

// chanWriter sends each write (a line of kiln rollout status --watch) to
// a channel.
type chanWriter chan string

func (c chanWriter) Write(p []byte) (int, error) {
	c <- string(p)
	return len(p), nil
}
