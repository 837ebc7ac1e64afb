package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
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
	// Names are shared: dev cannot create one prod owns.
	wantCode(t, "create prod's name in dev", wsCall(t, h, devon, "dev", "POST", mlflow+"/registered-models/create", `{"name":"fraud"}`, nil), http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS") // MLflow answers 400

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
	wantCode(t, "copy onto prod's name from dev's", wsCall(t, h, pat, "dev", "POST", copyPath, `{"workspace":"prod","name":"churn"}`, nil), http.StatusConflict, "ALREADY_EXISTS")
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
	// A renamed model stays in its workspace.
	wantCode(t, "rename in prod", wsCall(t, h, admin, "prod", "POST", mlflow+"/registered-models/rename", `{"name":"churn-prod","new_name":"churn-live"}`, nil), 200, "")
	wantCode(t, "prod sees the new name", wsCall(t, h, pat, "prod", "GET", mlflow+"/registered-models/get?name=churn-live", "", nil), 200, "")
	wantCode(t, "dev does not", wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/get?name=churn-live", "", nil), http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantCode(t, "rename onto prod's name from dev", wsCall(t, h, admin, "dev", "POST", mlflow+"/registered-models/rename", `{"name":"churn","new_name":"churn-live"}`, nil), http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS")
	// A deleted model frees its name.
	wantCode(t, "delete in prod (needs maintainer)", wsCall(t, h, admin, "prod", "DELETE", mlflow+"/registered-models/delete", `{"name":"fraud"}`, nil), 200, "")
	wantCode(t, "dev takes the freed name", wsCall(t, h, devon, "dev", "POST", mlflow+"/registered-models/create", `{"name":"fraud"}`, nil), 200, "")
	wantCode(t, "now dev's", wsCall(t, h, devon, "dev", "GET", mlflow+"/registered-models/get?name=fraud", "", nil), 200, "")

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
	// prod-exp, dev-exp, churn, churn-live, and fraud, now dev's (prod's
	// row went with the model).
	if rows != 5 {
		t.Errorf("workspace_resources has %d rows, want 5", rows)
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
