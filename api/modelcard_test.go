package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/mlflowapi"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

// cardServer serves the MLflow API and Kiln's API over one database, as
// kiln server does, with model cards on.
func cardServer(t *testing.T, db *store.DB) (*httptest.Server, *client.Client) {
	t.Helper()
	ctx := context.Background()
	b, err := blob.Open(ctx, "file://"+t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	trk := tracking.New(db, tracking.Options{})
	reg := registry.New(db, trk)
	ds := dataset.NewStore(db)
	mux := http.NewServeMux()
	mlflowapi.New(mlflowapi.Deps{Tracking: trk, Registry: reg, Artifacts: b, Logger: log}).Register(mux)
	api.New(api.Deps{Datasets: ds, Tracking: trk, Logger: log,
		ModelCards: &lineage.Cards{Registry: reg, Tracking: trk, Datasets: ds, Artifacts: b}}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

// mlflowCall posts an MLflow REST request and decodes the answer.
func mlflowCall(t *testing.T, base, method, path string, body any) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+"/api/2.0/mlflow/"+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return out
}

func TestModelCardAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv, c := cardServer(t, db)
		// A run with params and metrics, registered as churn version 1,
		// all through the MLflow REST API.
		exp := mlflowCall(t, srv.URL, "POST", "experiments/create", map[string]any{"name": "cards"})["experiment_id"].(string)
		run := mlflowCall(t, srv.URL, "POST", "runs/create", map[string]any{"experiment_id": exp, "user_id": "alice"})
		runID := run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		mlflowCall(t, srv.URL, "POST", "runs/log-batch", map[string]any{"run_id": runID,
			"metrics": []map[string]any{{"key": "accuracy", "value": 0.93, "timestamp": 1, "step": 0}, {"key": "accuracy/slice/region:eu", "value": 0.9, "timestamp": 1, "step": 0}},
			"params":  []map[string]any{{"key": "C", "value": "0.5"}}})
		mlflowCall(t, srv.URL, "POST", "registered-models/create", map[string]any{"name": "churn"})
		mlflowCall(t, srv.URL, "POST", "model-versions/create", map[string]any{"name": "churn", "source": "runs:/" + runID + "/model", "run_id": runID,
			"description": "Logistic regression on <accounts>."})

		base := srv.URL + "/api/v1/models/churn/versions/1/card"
		// JSON (the default).
		code, eb, body := gateRequest(t, "GET", base, "", "")
		var card lineage.ModelCard
		if err := json.Unmarshal(body, &card); err != nil || code != 200 {
			t.Fatalf("card: %d %+v %s", code, eb, body)
		}
		if card.ModelDetails.Name != "churn" || card.ModelDetails.RunID != runID || len(card.ModelParameters.Params) != 1 ||
			card.ModelParameters.Params[0].Value != "0.5" || len(card.QuantitativeAnalysis.PerformanceMetrics) != 2 {
			t.Errorf("card: %s", body)
		}

		// Edit the text; the answer is the card after the edit.
		edit := `{"overview": "Flags <script>alert(1)</script> accounts.", "considerations": {"limitations": ["Trained on 2025 data"], "users": ["CS team"]}}`
		code, eb, body = gateRequest(t, "PUT", base, "application/json", edit, api.ActorHeader, "carol")
		if code != 200 || !strings.Contains(string(body), `"text_updated_by":"carol"`) || !strings.Contains(string(body), `"Trained on 2025 data"`) {
			t.Fatalf("edit: %d %+v %s", code, eb, body)
		}
		// The client reads it back; the edited text is kept as version tags.
		got, err := c.ModelCard(ctx, "churn", 1)
		if err != nil || got.Considerations.Users[0] != "CS team" || got.ModelDetails.Overview == "" {
			t.Fatalf("client: %+v %v", got, err)
		}
		mv := mlflowCall(t, srv.URL, "GET", "model-versions/get?name=churn&version=1", nil)
		if !strings.Contains(mustJSON(mv), `"kiln.card.limitations"`) {
			t.Errorf("no card tag on the version: %v", mv)
		}
		// The client edits too (a field at a time).
		uses := []string{"retention offers"}
		if got, err = c.EditModelCard(ctx, "churn", 1, lineage.CardEdit{Considerations: &lineage.ConsiderationsEdit{UseCases: &uses}}); err != nil ||
			got.Considerations.UseCases[0] != "retention offers" || got.Considerations.Users[0] != "CS team" {
			t.Fatalf("client edit: %+v %v", got, err)
		}

		// Markdown, by ?format= and by Accept.
		for _, how := range []struct{ url, accept string }{{base + "?format=markdown", ""}, {base, "text/markdown"}, {base + "?format=md", "text/html"}} {
			req, _ := http.NewRequest("GET", how.url, nil)
			if how.accept != "" {
				req.Header.Set("Accept", how.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			md, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/markdown") ||
				!strings.Contains(string(md), "# Model card: churn version 1") || !strings.Contains(string(md), "| accuracy | 0.93 | all |") ||
				!strings.Contains(string(md), "| accuracy | 0.9 | region=eu |") || !strings.Contains(string(md), "- Trained on 2025 data") {
				t.Errorf("markdown %+v: %d %s\n%s", how, resp.StatusCode, resp.Header.Get("Content-Type"), md)
			}
		}
		// HTML: escaped, self-contained, with a strict CSP.
		req, _ := http.NewRequest("GET", base, nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			strings.Contains(string(page), "<script") || !strings.Contains(string(page), "&lt;script&gt;") ||
			!strings.Contains(string(page), "Logistic regression on &lt;accounts&gt;.") {
			t.Errorf("html: %d %v\n%s", resp.StatusCode, resp.Header, page)
		}
		// The client fetches the rendered forms.
		if md, err := c.ModelCardText(ctx, "churn", 1, "markdown"); err != nil || !bytes.Contains(md, []byte("## Considerations")) {
			t.Errorf("client markdown: %v %s", err, md)
		}

		// Errors.
		for _, bad := range []struct {
			method, url, body string
			code              int
		}{
			{"GET", srv.URL + "/api/v1/models/churn/versions/2/card", "", 404},
			{"GET", srv.URL + "/api/v1/models/nope/versions/1/card", "", 404},
			{"GET", srv.URL + "/api/v1/models/churn/versions/zero/card", "", 400},
			{"GET", base + "?format=pdf", "", 400},
			{"PUT", base, `{}`, 400},
			{"PUT", base, `{"overview": 3}`, 400},
			{"PUT", base, `{"owner": "x"}`, 400},
			{"PUT", base, `{"overview": "` + strings.Repeat("x", lineage.MaxCardText+1) + `"}`, 400},
			{"PUT", srv.URL + "/api/v1/models/churn/versions/7/card", `{"overview": "x"}`, 404},
		} {
			code, eb, _ := gateRequest(t, bad.method, bad.url, "application/json", bad.body)
			if code != bad.code || eb.Error.Code == "" {
				t.Errorf("%s %s %s: %d %+v, want %d", bad.method, bad.url, clipBody(bad.body), code, eb, bad.code)
			}
		}
	})
}

// Without ModelCards the routes answer NOT_IMPLEMENTED.
func TestModelCardNotServed(t *testing.T) {
	mux := http.NewServeMux()
	api.New(api.Deps{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, eb, _ := gateRequest(t, "GET", srv.URL+"/api/v1/models/m/versions/1/card", "", "")
	if code != http.StatusNotImplemented || eb.Error.Code != api.CodeNotImplemented {
		t.Errorf("%d %+v", code, eb)
	}
}

func mustJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func clipBody(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
