package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cardRun runs kiln against server and fails the test on a non-zero exit.
func cardRun(t *testing.T, server string, args ...string) string {
	t.Helper()
	out, errOut, code := runGate(t, append(args, "--server", server)...)
	if code != 0 {
		t.Fatalf("kiln %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func cardPost(t *testing.T, base, path string, body any) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(base+"/api/2.0/mlflow/"+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
	}
	out := map[string]any{}
	json.Unmarshal(raw, &out)
	return out
}

// kiln model card and card edit against a whole server: the card is
// built from a run registered through the MLflow API, the edit lands in
// the audit log.
func TestModelCardCLI(t *testing.T) {
	k := newTestServer(t)
	exp := cardPost(t, k.server, "experiments/create", map[string]any{"name": "cards"})["experiment_id"].(string)
	run := cardPost(t, k.server, "runs/create", map[string]any{"experiment_id": exp})
	runID := run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	cardPost(t, k.server, "runs/log-batch", map[string]any{"run_id": runID,
		"metrics": []map[string]any{{"key": "rmse", "value": 1.25, "timestamp": 1, "step": 0}},
		"params":  []map[string]any{{"key": "alpha", "value": "0.1"}}})
	cardPost(t, k.server, "registered-models/create", map[string]any{"name": "prices"})
	cardPost(t, k.server, "model-versions/create", map[string]any{"name": "prices", "source": "runs:/" + runID + "/model", "run_id": runID})

	dir := t.TempDir()
	cons := filepath.Join(dir, "considerations.yaml")
	os.WriteFile(cons, []byte("limitations:\n  - Only <b>urban</b> listings.\nusers: [pricing team]\n"), 0o644)
	out := cardRun(t, k.server, "model", "card", "edit", "prices/1", "--considerations-file", cons, "--overview", "Suggests list prices.", "--license", "MIT")
	if !strings.Contains(out, "model card of prices/1 updated") {
		t.Errorf("edit: %q", out)
	}
	md := cardRun(t, k.server, "model", "card", "models:/prices/1")
	for _, want := range []string{"# Model card: prices version 1", "| rmse | 1.25 | all | run:" + runID, "| alpha | 0.1 |",
		"Suggests list prices.", "- Only &lt;b&gt;urban&lt;/b&gt; listings.", "- pricing team", "| License | MIT |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown has no %q:\n%s", want, md)
		}
	}
	page := filepath.Join(dir, "card.html")
	if out := cardRun(t, k.server, "model", "card", "prices/1", "--format", "html", "-o", page); out != "" {
		t.Errorf("stdout with -o: %q", out)
	}
	html, _ := os.ReadFile(page)
	if !strings.Contains(string(html), "<li>Only &lt;b&gt;urban&lt;/b&gt; listings.</li>") || strings.Contains(string(html), "<b>urban") {
		t.Errorf("html:\n%s", html)
	}
	var card struct {
		ModelDetails struct {
			Overview string `json:"overview"`
		} `json:"model_details"`
	}
	if err := json.Unmarshal([]byte(cardRun(t, k.server, "model", "card", "prices/1", "--format", "json")), &card); err != nil || card.ModelDetails.Overview != "Suggests list prices." {
		t.Errorf("json: %+v %v", card, err)
	}

	// The edit is audited.
	resp, err := http.Get(k.server + "/api/v1/audit?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"action":"PUT /api/v1/models/{model}/versions/{model_version}/card"`) {
		t.Errorf("no audit event of the edit: %d %s", resp.StatusCode, raw)
	}

	// Usage errors.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("limitation: [typo]\n"), 0o644)
	for _, args := range [][]string{
		{"model", "card", "prices"},
		{"model", "card", "prices/1", "--format", "pdf"},
		{"model", "card", "edit", "prices/1"},
		{"model", "card", "edit", "prices/1", "--considerations-file", bad},
		{"model", "card", "prices/9"},
	} {
		if _, _, code := runGate(t, append(args, "--server", k.server)...); code == 0 {
			t.Errorf("kiln %s: exit 0", strings.Join(args, " "))
		}
	}
}
