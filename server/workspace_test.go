package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"

	_ "github.com/kiln-ml/kiln/runtime/onnx"
)

// wsCall is call in a workspace (X-Kiln-Workspace; "" for none).
func wsCall(t *testing.T, h http.Handler, auth, ws, method, path, body string, out any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Authorization", auth)
	if ws != "" {
		r.Header.Set(access.WorkspaceHeader, ws)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if out != nil && rec.Code < 300 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s in %s: %d %s", method, path, ws, rec.Code, rec.Body)
		}
	}
	return rec
}

// wantCode fails the test unless rec has status want (and, for an MLflow
// error, the error code code).
func wantCode(t *testing.T, what string, rec *httptest.ResponseRecorder, want int, code string) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("%s: %d %s, want %d", what, rec.Code, strings.TrimSpace(rec.Body.String()), want)
	}
	if code != "" && !strings.Contains(rec.Body.String(), `"`+code+`"`) {
		t.Fatalf("%s: %s, want error code %s", what, strings.TrimSpace(rec.Body.String()), code)
	}
}

// TestWorkspaceIsolation: workspaces are namespaces. What is created in
// prod is not found from dev — by name, by id, in searches, through runs
// — by a dev editor and by a server administrator acting in dev alike; a
// name prod owns cannot be created in dev; a user who may write in both
// copies dev's version to prod, one who may not is refused.
func TestWorkspaceIsolation(t *testing.T) {
	srv, h, admin := authServer(t)
	for _, ws := range []string{"dev", "prod"} {
		mustCall(t, h, admin, "POST", "/api/v1/workspaces", `{"name":"`+ws+`"}`, http.StatusCreated, nil)
	}
	pat := token(t, h, admin, "pat", "dev", "editor", "all") // editor in dev and prod
	mustCall(t, h, admin, "PUT", "/api/v1/workspaces/prod/grants", `{"user":"pat","role":"editor"}`, http.StatusOK, nil)
	devon := token(t, h, admin, "devon", "dev", "editor", "all") // dev only
	const mlflow = "/api/2.0/mlflow"

	// In prod: an experiment and a registered model.
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	wantCode(t, "create experiment in prod", wsCall(t, h, pat, "prod", "POST", mlflow+"/experiments/create", `{"name":"prod-exp"}`, &exp), 200, "")
	wantCode(t, "create model in prod", wsCall(t, h, pat, "prod", "POST", mlflow+"/registered-models/create", `{"name":"fraud"}`, nil), 200, "")
	wantCode(t, "prod sees its model", wsCall(t, h, pat, "prod", "GET", mlflow+"/registered-models/get?name=fraud", "", nil), 200, "")
	wantCode(t, "prod sees its experiment", wsCall(t, h, pat, "prod", "GET", mlflow+"/experiments/get?experiment_id="+exp.ExperimentID, "", nil), 200, "")
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	wantCode(t, "create a run in prod", wsCall(t, h, pat, "prod", "POST", mlflow+"/runs/create", `{"experiment_id":"`+exp.ExperimentID+`"}`, &run), 200, "")

	// From dev, prod's resources do not exist: for a dev editor and for
	// the server administrator acting in dev.
	for _, who := range []struct{ name, auth string }{{"dev editor", devon}, {"admin in dev", admin}} {
		for _, c := range []struct{ what, method, path, body string }{
			{"get model", "GET", mlflow + "/registered-models/get?name=fraud", ""},
			{"get versions", "GET", mlflow + "/model-versions/get?name=fraud&version=1", ""},
			{"tag model", "POST", mlflow + "/registered-models/set-tag", `{"name":"fraud","key":"k","value":"v"}`},
			{"get experiment", "GET", mlflow + "/experiments/get?experiment_id=" + exp.ExperimentID, ""},
			{"get experiment by name", "GET", mlflow + "/experiments/get-by-name?experiment_name=prod-exp", ""},
			{"create a run there", "POST", mlflow + "/runs/create", `{"experiment_id":"` + exp.ExperimentID + `"}`},
			{"create a run without an experiment (Default is default's)", "POST", mlflow + "/runs/create", `{}`},
			{"get the run", "GET", mlflow + "/runs/get?run_id=" + run.Run.Info.RunID, ""},
			{"log to the run", "POST", mlflow + "/runs/log-batch", `{"run_id":"` + run.Run.Info.RunID + `","params":[{"key":"a","value":"b"}]}`},
			{"search its runs", "POST", mlflow + "/runs/search", `{"experiment_ids":["` + exp.ExperimentID + `"]}`},
			{"its metric histories", "GET", mlflow + "/metrics/get-history-bulk-interval?run_ids=" + run.Run.Info.RunID + "&metric_key=m", ""},
		} {
			wantCode(t, who.name+": "+c.what, wsCall(t, h, who.auth, "dev", c.method, c.path, c.body, nil), http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
		}
		var models struct {
			RegisteredModels []struct{ Name string } `json:"registered_models"`
		}
		wantCode(t, who.name+": search models", wsCall(t, h, who.auth, "dev", "GET", mlflow+"/registered-models/search", "", &models), 200, "")
		if len(models.RegisteredModels) != 0 {
			t.Errorf("%s: registered-models/search in dev lists %v", who.name, models.RegisteredModels)
		}
		var exps struct {
			Experiments []struct{ Name string } `json:"experiments"`
		}
		wantCode(t, who.name+": search experiments", wsCall(t, h, who.auth, "dev", "POST", mlflow+"/experiments/search", `{"max_results":100}`, &exps), 200, "")
		for _, e := range exps.Experiments {
			if e.Name == "prod-exp" {
				t.Errorf("%s: experiments/search in dev lists prod-exp", who.name)
			}
		}
	}
	// The administrator in prod (or through a token bound to prod, which
	// acts there without the header) sees them.
	wantCode(t, "admin in prod", wsCall(t, h, admin, "prod", "GET", mlflow+"/registered-models/get?name=fraud", "", nil), 200, "")
	var bound api.CreateTokenResponse
	mustCall(t, h, admin, "POST", "/api/v1/tokens", `{"user":"pat","scope":"all","workspace":"prod"}`, http.StatusCreated, &bound)
	wantCode(t, "token bound to prod", wsCall(t, h, "Bearer "+bound.Secret, "", "GET", mlflow+"/registered-models/get?name=fraud", "", nil), 200, "")
	var models struct {
		RegisteredModels []struct{ Name string } `json:"registered_models"`
	}
	wantCode(t, "search in prod", wsCall(t, h, pat, "prod", "GET", mlflow+"/registered-models/search", "", &models), 200, "")
	if len(models.RegisteredModels) != 1 || models.RegisteredModels[0].Name != "fraud" {
		t.Errorf("registered-models/search in prod = %v, want fraud", models.RegisteredModels)
	}
	// Names are per workspace: dev has a fraud of its own, and each
	// workspace sees its own.
	wantCode(t, "create prod's name in dev", wsCall(t, h, devon, "dev", "POST", mlflow+"/registered-models/create", `{"name":"fraud","description":"dev's"}`, nil), 200, "")
	wantCode(t, "dev's fraud exists once", wsCall(t, h, devon, "dev", "POST", mlflow+"/registered-models/create", `{"name":"fraud"}`, nil), http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS") // MLflow answers 400
	for _, c := range []struct{ ws, auth, desc string }{{"dev", devon, "dev's"}, {"prod", pat, ""}} {
		var got struct {
			RegisteredModel struct{ Name, Description string } `json:"registered_model"`
		}
		wantCode(t, c.ws+" gets its fraud", wsCall(t, h, c.auth, c.ws, "GET", mlflow+"/registered-models/get?name=fraud", "", &got), 200, "")
		if got.RegisteredModel.Name != "fraud" || got.RegisteredModel.Description != c.desc {
			t.Errorf("%s's fraud = %+v, want description %q", c.ws, got.RegisteredModel, c.desc)
		}
		for _, f := range []string{"name = 'fraud'", "name LIKE 'fr%'", "name ILIKE '%RAUD'"} {
			var found struct {
				RegisteredModels []struct{ Name, Description string } `json:"registered_models"`
			}
			wantCode(t, c.ws+" searches "+f, wsCall(t, h, c.auth, c.ws, "GET", mlflow+"/registered-models/search?filter="+url.QueryEscape(f), "", &found), 200, "")
			if len(found.RegisteredModels) != 1 || found.RegisteredModels[0].Name != "fraud" || found.RegisteredModels[0].Description != c.desc {
				t.Errorf("%s: search %s = %+v, want its own fraud", c.ws, f, found.RegisteredModels)
			}
		}
	}
	// So are experiment names: dev makes a prod-exp of its own.
	var devExp struct {
		ExperimentID string `json:"experiment_id"`
	}
	wantCode(t, "create prod's experiment name in dev", wsCall(t, h, devon, "dev", "POST", mlflow+"/experiments/create", `{"name":"prod-exp"}`, &devExp), 200, "")
	wantCode(t, "once", wsCall(t, h, devon, "dev", "POST", mlflow+"/experiments/create", `{"name":"prod-exp"}`, nil), http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS")
	for _, c := range []struct{ ws, auth, id string }{{"dev", devon, devExp.ExperimentID}, {"prod", pat, exp.ExperimentID}} {
		var got struct {
			Experiment struct {
				ExperimentID string `json:"experiment_id"`
				Name         string `json:"name"`
			} `json:"experiment"`
		}
		wantCode(t, c.ws+" gets its prod-exp", wsCall(t, h, c.auth, c.ws, "GET", mlflow+"/experiments/get-by-name?experiment_name=prod-exp", "", &got), 200, "")
		if got.Experiment.ExperimentID != c.id || got.Experiment.Name != "prod-exp" {
			t.Errorf("%s's prod-exp = %+v, want id %s", c.ws, got.Experiment, c.id)
		}
		var found struct {
			Experiments []struct {
				ExperimentID string `json:"experiment_id"`
				Name         string `json:"name"`
			} `json:"experiments"`
		}
		wantCode(t, c.ws+" searches prod-exp", wsCall(t, h, c.auth, c.ws, "POST", mlflow+"/experiments/search", `{"max_results":10,"filter":"name LIKE 'prod-%'"}`, &found), 200, "")
		if len(found.Experiments) != 1 || found.Experiments[0].ExperimentID != c.id || found.Experiments[0].Name != "prod-exp" {
			t.Errorf("%s: experiments/search name LIKE 'prod-%%' = %+v, want its own", c.ws, found.Experiments)
		}
	}
	if rec := wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/get?name=nothere", "", nil); rec.Code != 404 || strings.Contains(rec.Body.String(), `\u001f`) {
		t.Errorf("an unknown model's error: %d %s (it names the stored name)", rec.Code, rec.Body)
	}
	wantCode(t, "a name with the separator", wsCall(t, h, devon, "dev", "POST", mlflow+"/registered-models/create", `{"name":"prod\u001ffraud"}`, nil), http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	wantCode(t, "a name with the separator in default", wsCall(t, h, admin, "", "POST", mlflow+"/registered-models/create", `{"name":"prod\u001ffraud"}`, nil), http.StatusBadRequest, "INVALID_PARAMETER_VALUE")

	// In dev: a model with a version from a run, copied to prod.
	var dexp struct {
		ExperimentID string `json:"experiment_id"`
	}
	wantCode(t, "create experiment in dev", wsCall(t, h, pat, "dev", "POST", mlflow+"/experiments/create", `{"name":"dev-exp"}`, &dexp), 200, "")
	wantCode(t, "create a run in dev", wsCall(t, h, pat, "dev", "POST", mlflow+"/runs/create", `{"experiment_id":"`+dexp.ExperimentID+`"}`, &run), 200, "")
	devRun := run.Run.Info.RunID
	wantCode(t, "create model in dev", wsCall(t, h, pat, "dev", "POST", mlflow+"/registered-models/create", `{"name":"churn"}`, nil), 200, "")
	wantCode(t, "create version in dev", wsCall(t, h, pat, "dev", "POST", mlflow+"/model-versions/create",
		`{"name":"churn","source":"s3://models/churn/1","run_id":"`+devRun+`","tags":[{"key":"team","value":"risk"}]}`, nil), 200, "")

	copyPath := "/api/v1/models/churn/versions/1/copy"
	wantCode(t, "copy by a dev-only editor", wsCall(t, h, devon, "dev", "POST", copyPath, `{"workspace":"prod","name":"churn-prod"}`, nil), http.StatusForbidden, "PERMISSION_DENIED")
	wantCode(t, "copy from prod, where churn is not", wsCall(t, h, pat, "prod", "POST", copyPath, `{"workspace":"prod","name":"churn-prod"}`, nil), http.StatusNotFound, "")
	wantCode(t, "copy to a workspace that does not exist", wsCall(t, h, admin, "dev", "POST", copyPath, `{"workspace":"nowhere","name":"x"}`, nil), http.StatusNotFound, "")
	var devBound api.CreateTokenResponse
	mustCall(t, h, admin, "POST", "/api/v1/tokens", `{"user":"pat","scope":"all","workspace":"dev"}`, http.StatusCreated, &devBound)
	if rec := wsCall(t, h, "Bearer "+devBound.Secret, "", "POST", copyPath, `{"workspace":"prod","name":"churn-prod"}`, nil); rec.Code != http.StatusForbidden ||
		!strings.Contains(rec.Body.String(), "may act only in workspace 'dev'") {
		t.Errorf("copy with a token bound to dev: %d %s", rec.Code, rec.Body)
	}
	var copied api.ModelVersion
	wantCode(t, "copy to prod", wsCall(t, h, pat, "dev", "POST", copyPath, `{"workspace":"prod","name":"churn-prod"}`, &copied), http.StatusCreated, "")
	if copied.Name != "churn-prod" || copied.Version != 1 || copied.Workspace != "prod" || copied.CopiedFrom != "dev:churn/1" ||
		copied.Source != "s3://models/churn/1" || copied.RunID != devRun || copied.Tags["team"] != "risk" {
		t.Errorf("copied version = %+v", copied)
	}
	var mv struct {
		ModelVersion struct {
			Version string `json:"version"`
			RunID   string `json:"run_id"`
			Tags    []struct{ Key, Value string }
		} `json:"model_version"`
	}
	wantCode(t, "prod reads the copy", wsCall(t, h, pat, "prod", "GET", mlflow+"/model-versions/get?name=churn-prod&version=1", "", &mv), 200, "")
	if mv.ModelVersion.RunID != devRun {
		t.Errorf("the copy's run_id = %q, want %q", mv.ModelVersion.RunID, devRun)
	}
	found := false
	for _, tg := range mv.ModelVersion.Tags {
		found = found || (tg.Key == api.CopiedFromTag && tg.Value == "dev:churn/1")
	}
	if !found {
		t.Errorf("the copy's tags %v lack %s=dev:churn/1", mv.ModelVersion.Tags, api.CopiedFromTag)
	}
	wantCode(t, "dev does not see the copy", wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/get?name=churn-prod", "", nil), http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantCode(t, "copy again", wsCall(t, h, pat, "dev", "POST", copyPath, `{"workspace":"prod","name":"churn-prod","description":"second"}`, &copied), http.StatusCreated, "")
	if copied.Version != 2 || copied.Description != "second" {
		t.Errorf("second copy = %+v, want version 2 described second", copied)
	}
	var versions struct {
		ModelVersions []struct{ Name string } `json:"model_versions"`
	}
	wantCode(t, "search versions in dev", wsCall(t, h, devon, "dev", "GET", mlflow+"/model-versions/search", "", &versions), 200, "")
	for _, v := range versions.ModelVersions {
		if v.Name != "churn" {
			t.Errorf("model-versions/search in dev lists a version of %s", v.Name)
		}
	}
	if len(versions.ModelVersions) != 1 {
		t.Errorf("model-versions/search in dev lists %d versions, want 1", len(versions.ModelVersions))
	}
	// The lineage graph stays inside the request's workspace.
	if rec := wsCall(t, h, pat, "dev", "GET", "/api/v1/lineage?node=model:churn/1&direction=both", "", nil); rec.Code != 200 || strings.Contains(rec.Body.String(), "churn-prod") {
		t.Errorf("dev's lineage of churn/1: %d %s", rec.Code, rec.Body)
	}
	if rec := wsCall(t, h, pat, "prod", "GET", "/api/v1/lineage?node=model:churn-prod/1&direction=both", "", nil); rec.Code != 200 || strings.Contains(rec.Body.String(), `"model:churn/1"`) {
		t.Errorf("prod's lineage of churn-prod/1: %d %s", rec.Code, rec.Body)
	}
	wantCode(t, "dev's lineage of prod's copy", wsCall(t, h, pat, "dev", "GET", "/api/v1/lineage?node=model:churn-prod/1", "", nil), http.StatusNotFound, "")
	// A copy keeps the name: dev's churn/1 becomes version 1, then 2, of
	// prod's churn.
	for want := int64(1); want <= 2; want++ {
		wantCode(t, "copy to prod's churn", wsCall(t, h, pat, "dev", "POST", copyPath, `{"workspace":"prod","name":"churn"}`, &copied), http.StatusCreated, "")
		if copied.Name != "churn" || copied.Version != want || copied.Workspace != "prod" || copied.CopiedFrom != "dev:churn/1" {
			t.Errorf("copy %d to prod's churn = %+v", want, copied)
		}
	}
	for _, c := range []struct {
		ws, auth string
		want     int
	}{{"dev", devon, 1}, {"prod", pat, 2}} {
		var vs struct {
			ModelVersions []struct{ Name, Version string } `json:"model_versions"`
		}
		wantCode(t, c.ws+"'s churn versions", wsCall(t, h, c.auth, c.ws, "GET", mlflow+"/model-versions/search?filter="+url.QueryEscape("name='churn'"), "", &vs), 200, "")
		if len(vs.ModelVersions) != c.want {
			t.Errorf("%s's versions of churn: %+v, want %d", c.ws, vs.ModelVersions, c.want)
		}
		for _, v := range vs.ModelVersions {
			if v.Name != "churn" {
				t.Errorf("%s's version of churn is named %q", c.ws, v.Name)
			}
		}
	}
	var card struct {
		ModelDetails struct {
			Name       string `json:"name"`
			References []struct{ Reference string }
		} `json:"model_details"`
	}
	wantCode(t, "prod's churn/2 card", wsCall(t, h, pat, "prod", "GET", "/api/v1/models/churn/versions/2/card", "", &card), 200, "")
	if card.ModelDetails.Name != "churn" || len(card.ModelDetails.References) == 0 || card.ModelDetails.References[0].Reference != "models:/churn/2" {
		t.Errorf("prod's card of churn/2: %+v", card.ModelDetails)
	}
	wantCode(t, "dev has no churn/2", wsCall(t, h, pat, "dev", "GET", "/api/v1/models/churn/versions/2/card", "", nil), http.StatusNotFound, "")
	// A renamed model stays in its workspace.
	wantCode(t, "rename in prod", wsCall(t, h, admin, "prod", "POST", mlflow+"/registered-models/rename", `{"name":"churn-prod","new_name":"churn-live"}`, nil), 200, "")
	wantCode(t, "prod sees the new name", wsCall(t, h, pat, "prod", "GET", mlflow+"/registered-models/get?name=churn-live", "", nil), 200, "")
	wantCode(t, "dev does not", wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/get?name=churn-live", "", nil), http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantCode(t, "rename to a name with the separator", wsCall(t, h, admin, "dev", "POST", mlflow+"/registered-models/rename", `{"name":"churn","new_name":"prod\u001fchurn-live"}`, nil), http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	// Deleting prod's fraud leaves dev's.
	wantCode(t, "delete in prod (needs maintainer)", wsCall(t, h, admin, "prod", "DELETE", mlflow+"/registered-models/delete", `{"name":"fraud"}`, nil), 200, "")
	wantCode(t, "prod's is gone", wsCall(t, h, pat, "prod", "GET", mlflow+"/registered-models/get?name=fraud", "", nil), http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantCode(t, "dev's is still there", wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/get?name=fraud", "", nil), 200, "")

	sameNameEndpoints(t, srv, h, admin, pat, devon, exp.ExperimentID)

	// A workspace that was never created owns nothing; one that owns
	// resources cannot be deleted.
	wantCode(t, "create in a workspace that does not exist", wsCall(t, h, admin, "prdo", "POST", mlflow+"/registered-models/create", `{"name":"typo"}`, nil), http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantCode(t, "delete a workspace that owns resources", wsCall(t, h, admin, "", "DELETE", "/api/v1/workspaces/prod", "", nil), http.StatusConflict, "")
	mustCall(t, h, admin, "POST", "/api/v1/workspaces", `{"name":"empty"}`, http.StatusCreated, nil)
	wantCode(t, "delete an empty workspace", wsCall(t, h, admin, "", "DELETE", "/api/v1/workspaces/empty", "", nil), http.StatusNoContent, "")

	var rows int
	if err := srv.db.R.QueryRow(`SELECT COUNT(*) FROM workspace_resources`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	// prod-exp (prod's and dev's), dev-exp, dev's churn, prod's
	// churn-live and churn, dev's fraud (prod's row went with its model),
	// and the endpoint scorer.
	if rows != 8 {
		t.Errorf("workspace_resources has %d rows, want 8", rows)
	}
}

// TestWorkspaceSingle: a server with only the default workspace works as
// before and records no ownership.
func TestWorkspaceSingle(t *testing.T) {
	srv, h, admin := authServer(t)
	vera := token(t, h, admin, "vera", "default", "viewer", "all")
	const mlflow = "/api/2.0/mlflow"
	mustCall(t, h, admin, "POST", mlflow+"/experiments/create", `{"name":"e"}`, http.StatusOK, nil)
	mustCall(t, h, admin, "POST", mlflow+"/registered-models/create", `{"name":"m"}`, http.StatusOK, nil)
	var models struct {
		RegisteredModels []struct{ Name string } `json:"registered_models"`
	}
	mustCall(t, h, vera, "GET", mlflow+"/registered-models/search", "", http.StatusOK, &models)
	if len(models.RegisteredModels) != 1 {
		t.Errorf("search = %v, want m", models.RegisteredModels)
	}
	mustCall(t, h, vera, "GET", mlflow+"/experiments/get-by-name?experiment_name=e", "", http.StatusOK, nil)
	var rows int
	if err := srv.db.R.QueryRow(`SELECT COUNT(*) FROM workspace_resources`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("workspace_resources has %d rows on a single-workspace server", rows)
	}
}

// sameNameEndpoints: an endpoint's model references name models of its
// workspace. Prod's churn@champion is a loadable ONNX version (3); dev's
// churn@champion is version 1, whose source cannot be loaded: an
// endpoint in prod routes to prod's version 3, the same document in dev
// resolves dev's version 1 (and fails to load it).
func sameNameEndpoints(t *testing.T, srv *Server, h http.Handler, admin, pat, devon, prodExp string) {
	t.Helper()
	const mlflow = "/api/2.0/mlflow"
	var run struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	wantCode(t, "a run in prod", wsCall(t, h, pat, "prod", "POST", mlflow+"/runs/create", `{"experiment_id":"`+prodExp+`"}`, &run), 200, "")
	onnx, err := os.ReadFile("../runtime/onnx/testdata/models/skl_svc_rbf_multi/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(run.Run.Info.ArtifactURI, "mlflow-artifacts:/") + "/model"
	for n, b := range map[string][]byte{
		"MLmodel":    []byte("flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\nmlflow_version: 3.6.0\n"),
		"model.onnx": onnx,
	} {
		if _, err := srv.artifacts.Put(context.Background(), key+"/"+n, bytes.NewReader(b), ""); err != nil {
			t.Fatal(err)
		}
	}
	var mv struct {
		ModelVersion struct{ Name, Version string } `json:"model_version"`
	}
	wantCode(t, "register prod's churn 3", wsCall(t, h, pat, "prod", "POST", mlflow+"/model-versions/create",
		`{"name":"churn","source":"runs:/`+run.Run.Info.RunID+`/model","run_id":"`+run.Run.Info.RunID+`"}`, &mv), 200, "")
	if mv.ModelVersion.Name != "churn" || mv.ModelVersion.Version != "3" {
		t.Fatalf("prod's new version = %+v, want churn 3", mv.ModelVersion)
	}
	wantCode(t, "prod's champion", wsCall(t, h, admin, "prod", "POST", mlflow+"/registered-models/alias", `{"name":"churn","alias":"champion","version":"3"}`, nil), 200, "")
	wantCode(t, "dev's champion", wsCall(t, h, admin, "dev", "POST", mlflow+"/registered-models/alias", `{"name":"churn","alias":"champion","version":"1"}`, nil), 200, "")
	var alias struct {
		ModelVersion struct{ Name, Version string } `json:"model_version"`
	}
	wantCode(t, "dev's churn@champion", wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/alias?name=churn&alias=champion", "", &alias), 200, "")
	if alias.ModelVersion.Version != "1" || alias.ModelVersion.Name != "churn" {
		t.Errorf("dev's churn@champion = %+v, want churn 1", alias.ModelVersion)
	}

	doc := func(name string) string {
		return `{"apiVersion":"kiln.dev/v1","kind":"Endpoint","metadata":{"name":"` + name + `"},"spec":{"model":"churn","routes":[{"name":"main","alias":"champion","weight":100}]}}`
	}
	var applied api.ApplyEndpointResponse
	rec := wsCall(t, h, admin, "prod", "PUT", "/api/v1/endpoints/scorer", doc("scorer"), &applied)
	wantCode(t, "deploy scorer in prod", rec, http.StatusCreated, "")
	if strings.Contains(rec.Body.String(), `\u001f`) {
		t.Errorf("the endpoint's answer shows stored names: %s", rec.Body)
	}
	if rs := applied.State.Status.Routes; len(rs) != 1 || rs[0].Model != "churn" || rs[0].Version != 3 {
		t.Errorf("prod's scorer routes to %+v, want prod's churn 3", rs)
	}
	var st struct {
		Status struct {
			Routes []struct {
				Model   string
				Version int64
			}
		}
	}
	wantCode(t, "get scorer in prod", wsCall(t, h, pat, "prod", "GET", "/api/v1/endpoints/scorer", "", &st), 200, "")
	if rs := st.Status.Routes; len(rs) != 1 || rs[0].Model != "churn" || rs[0].Version != 3 {
		t.Errorf("GET prod's scorer: routes %+v, want churn 3", rs)
	}
	wantCode(t, "dev does not see scorer", wsCall(t, h, devon, "dev", "GET", "/api/v1/endpoints/scorer", "", nil), http.StatusNotFound, "")
	// The same document in dev resolves dev's churn@champion: version 1,
	// which cannot be loaded. The claim on the name goes with the failure.
	rec = wsCall(t, h, admin, "dev", "PUT", "/api/v1/endpoints/scorer-dev", doc("scorer-dev"), nil)
	if rec.Code < 400 || !strings.Contains(rec.Body.String(), "version 1") || strings.Contains(rec.Body.String(), `\u001f`) {
		t.Errorf("deploy the document in dev: %d %s, want a failure to load dev's churn version 1", rec.Code, rec.Body)
	}
	wantCode(t, "no scorer-dev", wsCall(t, h, admin, "dev", "GET", "/api/v1/endpoints/scorer-dev", "", nil), http.StatusNotFound, "")

	// An approval policy protects the model of the workspace it is put in.
	wantCode(t, "prod's approval policy", wsCall(t, h, admin, "prod", "PUT", "/api/v1/approval-policies/champ", `{"model":"churn","aliases":["champion"],"required":1}`, nil), 200, "")
	wantCode(t, "prod's champion is protected", wsCall(t, h, admin, "prod", "POST", mlflow+"/registered-models/alias", `{"name":"churn","alias":"champion","version":"1"}`, nil), http.StatusBadRequest, "")
	wantCode(t, "dev's is not", wsCall(t, h, admin, "dev", "POST", mlflow+"/registered-models/alias", `{"name":"churn","alias":"champion","version":"1"}`, nil), 200, "")
	wantCode(t, "dev does not see prod's policy", wsCall(t, h, admin, "dev", "GET", "/api/v1/approval-policies/champ", "", nil), http.StatusNotFound, "")
	wantCode(t, "dev may not take it over", wsCall(t, h, admin, "dev", "PUT", "/api/v1/approval-policies/champ", `{"model":"churn","aliases":["champion"],"required":1}`, nil), http.StatusConflict, "")
	var pol struct{ Model string }
	wantCode(t, "prod sees its policy", wsCall(t, h, admin, "prod", "GET", "/api/v1/approval-policies/champ", "", &pol), 200, "")
	if pol.Model != "churn" {
		t.Errorf("prod's policy protects %q, want churn", pol.Model)
	}
	var reqs struct {
		Requests []struct{ Model string } `json:"requests"`
	}
	wantCode(t, "prod asks for approval", wsCall(t, h, pat, "prod", "POST", "/api/v1/approval-requests", `{"model":"churn","version":1,"alias":"champion"}`, nil), http.StatusCreated, "")
	wantCode(t, "dev lists no request", wsCall(t, h, admin, "dev", "GET", "/api/v1/approval-requests", "", &reqs), 200, "")
	if len(reqs.Requests) != 0 {
		t.Errorf("dev lists prod's approval requests: %+v", reqs.Requests)
	}
	wantCode(t, "prod lists its request", wsCall(t, h, admin, "prod", "GET", "/api/v1/approval-requests", "", &reqs), 200, "")
	if len(reqs.Requests) != 1 || reqs.Requests[0].Model != "churn" {
		t.Errorf("prod's approval requests: %+v", reqs.Requests)
	}
}
