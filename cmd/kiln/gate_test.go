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

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/server"
)

// The fixtures come from deploy/gate/testdata/gen.py.
const gateFixtures = "../../deploy/gate/testdata"

// runGate runs kiln with args and returns stdout, stderr and the exit code.
func runGate(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(args)
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		var msg error
		code, msg = exitCode(err)
		if msg != nil {
			errOut.WriteString("kiln: " + msg.Error())
		}
	}
	return out.String(), errOut.String(), code
}

const localPolicy = `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: churn-quality}
spec:
  model: churn
  data: eval.csv
  label: y
  features: [x1, x2, x3, x4]
  metrics:
    - name: roc_auc
      threshold: {min: 0.75}
      change: {max_worsening: 0.01}
    - name: accuracy
  slices:
    - {column: region, metrics: [accuracy], max_disparity: 0.6}
`

func TestGateCheckLocal(t *testing.T) {
	t.Setenv("KILN_URL", "")
	t.Setenv("MLFLOW_TRACKING_URI", "")
	dir := t.TempDir()
	policy := filepath.Join(dir, "gate.yaml")
	os.WriteFile(policy, []byte(localPolicy), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(localPolicy, "min: 0.75", "min: high", 1)), 0o644)
	good, worse, data := filepath.Join(gateFixtures, "good"), filepath.Join(gateFixtures, "bad"), filepath.Join(gateFixtures, "eval.csv")
	tests := []struct {
		name string
		args []string
		code int
		out  []string
		err  string
	}{
		{"better than the champion", []string{"-f", policy, "--model-uri", good, "--champion-uri", worse, "--data", data}, 0,
			[]string{"✓", "roc_auc min", "roc_auc max_worsening", "region: accuracy max_disparity", "PASSED  3 checks"}, ""},
		{"worse than the champion", []string{"-f", policy, "--model-uri", worse, "--champion-uri", good, "--data", data}, 1,
			[]string{"✗", "FAILED", "roc_auc 0.415793 < min 0.75"}, ""},
		{"rubber stamp", []string{"-f", policy, "--model-uri", good, "--data", data}, 0,
			[]string{"none (rubber stamp)", "-  roc_auc max_worsening", "rubber stamp"}, ""},
		{"no model", []string{"-f", policy, "--data", data}, 2, nil, "--model-uri is required"},
		{"bad policy", []string{"-f", bad, "--model-uri", good, "--data", data}, 2, nil, "spec.metrics[0].threshold.min: must be a number (line 11)"},
		{"missing data", []string{"-f", policy, "--model-uri", good}, 2, nil, "does not exist"},
		{"nothing to check", []string{}, 2, nil, "give --policy NAME --version N"},
		{"mixed modes", []string{"-f", policy, "--policy", "x"}, 2, nil, "-f evaluates locally"},
		{"server without version", []string{"--policy", "x"}, 2, nil, "--version is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runGate(t, append([]string{"gate", "check"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.out {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.err != "" && !strings.Contains(errOut, tt.err) {
				t.Errorf("stderr %q lacks %q", errOut, tt.err)
			}
		})
	}
	// JSON output is the result.
	out, _, code := runGate(t, "gate", "check", "-f", policy, "--model-uri", worse, "--data", data, "-o", "json")
	var r gate.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 || r.Passed || r.Data.Rows != 240 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
}

// gateServer is an in-process kiln server with the fixture models
// registered as churn versions 1 (good) and 2 (bad), and the data
// uploaded as an artifact.
func gateServer(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = "" // no shared gRPC port between test servers
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	upload := func(local, key string) {
		f, err := os.Open(local)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		req, _ := http.NewRequest("PUT", hs.URL+"/api/2.0/mlflow-artifacts/artifacts/"+key, f)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("upload %s: %v %v", key, err, resp)
		}
		resp.Body.Close()
	}
	post := func(method, path string, body any, want int) []byte {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, hs.URL+path, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
		}
		return out
	}
	for _, m := range []string{"good", "bad"} {
		entries, _ := os.ReadDir(filepath.Join(gateFixtures, m))
		for _, e := range entries {
			upload(filepath.Join(gateFixtures, m, e.Name()), "models/"+m+"/"+e.Name())
		}
	}
	upload(filepath.Join(gateFixtures, "eval.csv"), "data/eval.csv")
	post("POST", "/api/2.0/mlflow/registered-models/create", map[string]string{"name": "churn"}, 200)
	for _, m := range []string{"good", "bad"} {
		post("POST", "/api/2.0/mlflow/model-versions/create", map[string]string{"name": "churn", "source": "mlflow-artifacts:/models/" + m}, 200)
	}
	var doc map[string]any
	yaml.Unmarshal([]byte(strings.Replace(localPolicy, "data: eval.csv", "data: mlflow-artifacts:/data/eval.csv", 1)+"  protect_aliases: [champion]\n"), &doc)
	post("PUT", "/api/v1/gate-policies/churn-quality", doc, 201)
	return hs.URL
}

func TestGateCheckServer(t *testing.T) {
	url := gateServer(t)
	out, errOut, code := runGate(t, "gate", "check", "--policy", "churn-quality", "--version", "1", "--server", url, "--actor", "ci")
	if code != 0 || !strings.Contains(out, "PASSED") || !strings.Contains(out, "result:") {
		t.Fatalf("v1: exit %d\n%s\n%s", code, out, errOut)
	}
	// Version 1 may now be champion; version 2 fails against it.
	body, _ := json.Marshal(map[string]string{"name": "churn", "alias": "champion", "version": "1"})
	resp, err := http.Post(url+"/api/2.0/mlflow/registered-models/alias", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set champion: %v %v", err, resp)
	}
	resp.Body.Close()
	out, errOut, code = runGate(t, "gate", "check", "--policy", "churn-quality", "--version", "2", "--server", url)
	if code != 1 || !strings.Contains(out, "✗") || !strings.Contains(out, "churn v1 (@champion)") {
		t.Fatalf("v2: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runGate(t, "gate", "check", "--policy", "nope", "--version", "2", "--server", url); code != 2 || !strings.Contains(errOut, "Gate policy 'nope' does not exist") {
		t.Fatalf("missing policy: exit %d %s", code, errOut)
	}

	// Results in each format.
	out, _, code = runGate(t, "gate", "results", "churn", "2", "--server", url, "-o", "json")
	var list api.GateResultList
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list.Results) != 1 || list.Results[0].Passed {
		t.Fatalf("results json: %d %v\n%s", code, err, out)
	}
	out, _, code = runGate(t, "gate", "results", "churn", "1", "--server", url, "-o", "yaml")
	var y struct {
		Results []struct {
			Passed bool   `yaml:"passed"`
			Actor  string `yaml:"actor"`
		} `yaml:"results"`
	}
	if err := yaml.Unmarshal([]byte(out), &y); err != nil || code != 0 || len(y.Results) != 1 || !y.Results[0].Passed || y.Results[0].Actor != "ci" {
		t.Fatalf("results yaml: %d %v\n%s", code, err, out)
	}
	out, _, code = runGate(t, "gate", "results", "churn", "2", "--server", url)
	if code != 0 || !strings.Contains(out, "✗ failed") || !strings.Contains(out, "churn-quality") || !strings.Contains(out, "v1") {
		t.Fatalf("results table: %d\n%s", code, out)
	}
	if _, errOut, code := runGate(t, "gate", "results", "churn", "x", "--server", url); code == 0 || !strings.Contains(errOut, "invalid version") {
		t.Fatalf("bad version: %d %s", code, errOut)
	}
}
