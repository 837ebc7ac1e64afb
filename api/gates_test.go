package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

// lateGates lets a test build the gate service after the env it uses.
type lateGates struct{ api.Gates }

const gatesFixtures = "../deploy/gate/testdata"

const apiPolicy = `apiVersion: kiln.dev/v1
kind: GatePolicy
spec:
  model: churn
  data: eval@1/eval.csv
  label: y
  features: [x1, x2, x3, x4]
  metrics:
    - name: roc_auc
      threshold: {min: 0.75}
      change: {max_worsening: 0.01}
  protect_aliases: [champion]
`

func gateRequest(t *testing.T, method, url, contentType, body string, header ...string) (int, api.ErrorBody, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	json.Unmarshal(data, &eb)
	return resp.StatusCode, eb, data
}

func TestGates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		late := &lateGates{}
		e := newEnv(t, db, func(d *api.Deps) { d.Gates = late })
		for _, m := range []string{"good", "bad"} {
			entries, _ := os.ReadDir(filepath.Join(gatesFixtures, m))
			for _, f := range entries {
				fh, err := os.Open(filepath.Join(gatesFixtures, m, f.Name()))
				if err != nil {
					t.Fatal(err)
				}
				_, err = e.bucket.Put(ctx, "models/"+m+"/"+f.Name(), fh, "")
				fh.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := e.registry.CreateRegisteredModel(ctx, "churn", "", nil); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"good", "bad"} {
			if _, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: "mlflow-artifacts:/models/" + m}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.datasets.CreateDataset(ctx, "eval", "", nil); err != nil {
			t.Fatal(err)
		}
		e.add(t, "eval", filepath.Join(gatesFixtures, "eval.csv"))
		svc := gate.NewService(gate.ServiceOptions{
			Store: gate.NewStore(db), Registry: e.registry, Resolver: model.NewStoreResolver(e.tracking, e.registry, e.bucket, t.TempDir()),
			Datasets: e.datasets, Content: e.c.Remote(), Artifacts: e.bucket, TempDir: t.TempDir(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		late.Gates = svc
		base := e.srv.URL + "/api/v1/gate-policies"

		// Create (from YAML, the name from the URL), then idempotent.
		code, eb, body := gateRequest(t, "PUT", base+"/churn-quality", "application/yaml", apiPolicy, api.ActorHeader, "alice")
		var applied api.ApplyGatePolicyResponse
		json.Unmarshal(body, &applied)
		if code != http.StatusCreated || !applied.Created || !applied.Changed || applied.Policy.Generation != 1 ||
			applied.Policy.UpdatedBy != "alice" || applied.Policy.Policy.Metadata.Name != "churn-quality" {
			t.Fatalf("create: %d %+v %s", code, eb, body)
		}
		code, _, body = gateRequest(t, "PUT", base+"/churn-quality", "application/yaml", apiPolicy)
		json.Unmarshal(body, &applied)
		if code != http.StatusOK || applied.Created || applied.Changed {
			t.Fatalf("put again: %d %s", code, body)
		}
		// The JSON form of the stored document is accepted too.
		js, _ := json.Marshal(applied.Policy.Policy)
		if code, _, body = gateRequest(t, "PUT", base+"/churn-quality", "application/json", string(js)); code != http.StatusOK || !strings.Contains(string(body), `"changed":false`) {
			t.Fatalf("put JSON: %d %s", code, body)
		}

		// Bad documents: 400 with the fields at fault.
		bad := []struct {
			name, url, doc, path string
		}{
			{"not a number", base + "/churn-quality", strings.Replace(apiPolicy, "min: 0.75", "min: high", 1), "spec.metrics[0].threshold.min"},
			{"other name", base + "/churn-quality", strings.Replace(apiPolicy, "spec:", "metadata: {name: other}\nspec:", 1), "metadata.name"},
			{"unknown metric", base + "/churn-quality", strings.Replace(apiPolicy, "roc_auc", "auroc", 1), "spec.metrics[0].name"},
		}
		for _, b := range bad {
			code, eb, _ := gateRequest(t, "PUT", b.url, "application/yaml", b.doc)
			if code != http.StatusBadRequest || eb.Error.Code != api.CodeInvalidArgument || len(eb.Error.Details) == 0 || eb.Error.Details[0].Path != b.path {
				t.Errorf("%s: %d %+v", b.name, code, eb)
			}
		}
		if code, eb, _ := gateRequest(t, "PUT", base+"/Bad%20Name", "application/yaml", apiPolicy); code != http.StatusBadRequest || eb.Error.Code != api.CodeInvalidArgument {
			t.Errorf("bad URL name: %d %+v", code, eb)
		}

		// Read and list.
		if code, _, body := gateRequest(t, "GET", base+"/churn-quality", "", ""); code != http.StatusOK || !strings.Contains(string(body), `"digest"`) {
			t.Fatalf("get: %d %s", code, body)
		}
		var list api.GatePolicyList
		_, _, body = gateRequest(t, "GET", base, "", "")
		if json.Unmarshal(body, &list); len(list.Policies) != 1 {
			t.Fatalf("list: %s", body)
		}
		_, _, body = gateRequest(t, "GET", base+"?model=fraud", "", "")
		if json.Unmarshal(body, &list); len(list.Policies) != 0 {
			t.Fatalf("list of another model: %s", body)
		}

		// Evaluate: v1 passes (rubber stamp), then is champion; v2 fails
		// against it.
		var r gate.Result
		code, eb, body = gateRequest(t, "POST", base+"/churn-quality/evaluate", "application/json", `{"version": 1, "actor": "ci"}`)
		if json.Unmarshal(body, &r); code != http.StatusOK || !r.Passed || !r.RubberStamp || r.Actor != "ci" {
			t.Fatalf("evaluate v1: %d %+v %s", code, eb, body)
		}
		if err := e.registry.SetAlias(ctx, "churn", "champion", 1); err != nil {
			t.Fatal(err)
		}
		r = gate.Result{}
		code, _, body = gateRequest(t, "POST", base+"/churn-quality/evaluate", "application/json", `{"version": 2}`, api.ActorHeader, "bob")
		if json.Unmarshal(body, &r); code != http.StatusOK || r.Passed || r.Baseline == nil || r.Baseline.Version != 1 || r.Actor != "bob" || len(r.Failed) == 0 {
			t.Fatalf("evaluate v2: %d %s", code, body)
		}
		errs := []struct {
			name, url, body, code string
			status                int
		}{
			{"no version", base + "/churn-quality/evaluate", `{}`, api.CodeInvalidArgument, 400},
			{"unknown field", base + "/churn-quality/evaluate", `{"version": 1, "model": "x"}`, api.CodeInvalidArgument, 400},
			{"missing version", base + "/churn-quality/evaluate", `{"version": 99}`, api.CodeNotFound, 404},
			{"missing policy", base + "/nope/evaluate", `{"version": 1}`, api.CodeNotFound, 404},
		}
		for _, x := range errs {
			code, eb, _ := gateRequest(t, "POST", x.url, "application/json", x.body)
			if code != x.status || eb.Error.Code != x.code {
				t.Errorf("%s: %d %+v", x.name, code, eb)
			}
		}

		// Results of a version.
		var rl api.GateResultList
		code, _, body = gateRequest(t, "GET", e.srv.URL+"/api/v1/models/churn/versions/2/gate-results", "", "")
		if json.Unmarshal(body, &rl); code != http.StatusOK || len(rl.Results) != 1 || rl.Results[0].ID != r.ID || rl.Results[0].Passed {
			t.Fatalf("results: %d %s", code, body)
		}
		_, _, body = gateRequest(t, "GET", e.srv.URL+"/api/v1/models/churn/versions/2/gate-results?policy=other", "", "")
		if json.Unmarshal(body, &rl); len(rl.Results) != 0 {
			t.Fatalf("results of another policy: %s", body)
		}
		for _, u := range []string{"/models/churn/versions/x/gate-results", "/models/churn/versions/2/gate-results?policy=Bad!"} {
			if code, eb, _ := gateRequest(t, "GET", e.srv.URL+"/api/v1"+u, "", ""); code != 400 || eb.Error.Code != api.CodeInvalidArgument {
				t.Errorf("%s: %d %+v", u, code, eb)
			}
		}
		if code, eb, _ := gateRequest(t, "GET", e.srv.URL+"/api/v1/models/churn/versions/7/gate-results", "", ""); code != 404 || eb.Error.Code != api.CodeNotFound {
			t.Errorf("results of a missing version: %d %+v", code, eb)
		}

		// Delete.
		if code, _, _ := gateRequest(t, "DELETE", base+"/churn-quality", "", ""); code != http.StatusOK {
			t.Fatalf("delete: %d", code)
		}
		if code, eb, _ := gateRequest(t, "GET", base+"/churn-quality", "", ""); code != 404 || eb.Error.Code != api.CodeNotFound {
			t.Fatalf("get deleted: %d %+v", code, eb)
		}
	})
}

func TestGatesNotServed(t *testing.T) {
	e := newEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	code, eb, _ := gateRequest(t, "GET", e.srv.URL+"/api/v1/gate-policies", "", "")
	if code != http.StatusNotImplemented || eb.Error.Code != api.CodeNotImplemented {
		t.Fatalf("%d %+v", code, eb)
	}
}
