package mlflowapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
)

// fakeModels stands in for tracking.Store as the registry's ModelSource.
type fakeModels struct{ tags map[string]string }

func (f *fakeModels) LoggedModelLocation(_ context.Context, id string) (string, string, error) {
	if id != "m-00000000000000000000000000000001" {
		return "", "", errdefs.NotFound("Logged model with ID '%s' not found.", id)
	}
	return "mlflow-artifacts:/0/models/" + id + "/artifacts", "0123456789abcdef0123456789abcdef", nil
}

func (f *fakeModels) RunArtifactURI(_ context.Context, id string) (string, error) {
	if id != "0123456789abcdef0123456789abcdef" {
		return "", errdefs.NotFound("Run with id=%s not found", id)
	}
	return "mlflow-artifacts:/0/" + id + "/artifacts", nil
}

func (f *fakeModels) SetLoggedModelTag(_ context.Context, id, key, value string) error {
	f.tags[id+"/"+key] = value
	return nil
}

// newRegistryServer serves the registry RPCs over a real SQLite store.
func newRegistryServer(t testing.TB) (*httptest.Server, *fakeModels) {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeModels{tags: map[string]string{}}
	mux := http.NewServeMux()
	New(Deps{Registry: registry.New(db, src), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); db.Close() })
	return srv, src
}

const (
	rmPath = "/api/2.0/mlflow/registered-models/"
	mvPath = "/api/2.0/mlflow/model-versions/"
)

// jsonOf decodes raw into a generic value for comparisons.
func jsonOf(t *testing.T, raw string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("bad JSON %q: %v", raw, err)
	}
	return v
}

// dropTimes removes timestamps (which vary) from decoded JSON, checking
// that each is a positive number.
func dropTimes(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "creation_timestamp" || k == "last_updated_timestamp" {
				if n, ok := e.(float64); !ok || n <= 0 {
					t.Fatalf("%s = %v", k, e)
				}
				delete(x, k)
				continue
			}
			x[k] = dropTimes(t, e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropTimes(t, e)
		}
	}
	return v
}

func TestRegistryJSONShapes(t *testing.T) {
	srv, src := newRegistryServer(t)
	const mid = "m-00000000000000000000000000000001"
	const rid = "0123456789abcdef0123456789abcdef"
	steps := []struct {
		method, path, body string
		want               string // JSON, timestamps left out
	}{
		{"POST", rmPath + "create", `{"name":"churn","description":"d","tags":[{"key":"team","value":"risk"}]}`,
			`{"registered_model":{"name":"churn","description":"d","tags":[{"key":"team","value":"risk"}]}}`},
		{"POST", mvPath + "create", `{"name":"churn","source":"models:/` + mid + `","model_id":"` + mid + `","tags":[{"key":"k","value":"v"}]}`,
			`{"model_version":{"name":"churn","version":"1","current_stage":"None","source":"models:/` + mid + `","run_id":"` + rid + `",
			"status":"READY","model_id":"` + mid + `","tags":[{"key":"k","value":"v"}]}}`},
		{"POST", mvPath + "create", `{"name":"churn","source":"runs:/` + rid + `/model","run_id":"` + rid + `","description":"second"}`,
			`{"model_version":{"name":"churn","version":"2","current_stage":"None","source":"runs:/` + rid + `/model","run_id":"` + rid + `",
			"status":"READY","description":"second"}}`},
		{"POST", rmPath + "alias", `{"name":"churn","alias":"champion","version":"1"}`, `{}`},
		{"POST", mvPath + "transition-stage", `{"name":"churn","version":"2","stage":"production","archive_existing_versions":false}`,
			`{"model_version":{"name":"churn","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `",
			"status":"READY","description":"second"}}`},
		{"GET", rmPath + "get?name=churn", "",
			`{"registered_model":{"name":"churn","description":"d","tags":[{"key":"team","value":"risk"}],
			"aliases":[{"alias":"champion","version":"1"}],
			"latest_versions":[
				{"name":"churn","version":"1","current_stage":"None","source":"models:/` + mid + `","run_id":"` + rid + `","status":"READY","model_id":"` + mid + `","tags":[{"key":"k","value":"v"}],"aliases":["champion"]},
				{"name":"churn","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `","status":"READY","description":"second"}]}}`},
		{"GET", rmPath + "alias?name=churn&alias=champion", "",
			`{"model_version":{"name":"churn","version":"1","current_stage":"None","source":"models:/` + mid + `","run_id":"` + rid + `",
			"status":"READY","model_id":"` + mid + `","tags":[{"key":"k","value":"v"}],"aliases":["champion"]}}`},
		{"POST", rmPath + "get-latest-versions", `{"name":"churn","stages":["Production"]}`,
			`{"model_versions":[{"name":"churn","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `","status":"READY","description":"second"}]}`},
		{"GET", rmPath + "get-latest-versions?name=churn&stages=staging", "", `{}`},
		{"GET", mvPath + "get-download-uri?name=churn&version=2", "", `{"artifact_uri":"mlflow-artifacts:/0/` + rid + `/artifacts/model"}`},
		{"GET", mvPath + "get-download-uri?name=churn&version=1", "", `{"artifact_uri":"mlflow-artifacts:/0/models/` + mid + `/artifacts"}`},
		{"PATCH", mvPath + "update", `{"name":"churn","version":"1","description":"first"}`,
			`{"model_version":{"name":"churn","version":"1","current_stage":"None","source":"models:/` + mid + `","run_id":"` + rid + `",
			"status":"READY","model_id":"` + mid + `","description":"first","tags":[{"key":"k","value":"v"}],"aliases":["champion"]}}`},
		{"POST", mvPath + "set-tag", `{"name":"churn","version":"2","key":"x","value":"y"}`, `{}`},
		{"DELETE", mvPath + "delete-tag", `{"name":"churn","version":"1","key":"k"}`, `{}`},
		{"POST", rmPath + "set-tag", `{"name":"churn","key":"owner","value":"ana"}`, `{}`},
		{"DELETE", rmPath + "delete-tag", `{"name":"churn","key":"team"}`, `{}`},
		{"PATCH", rmPath + "update", `{"name":"churn","description":"new"}`,
			`{"registered_model":{"name":"churn","description":"new","tags":[{"key":"owner","value":"ana"}],
			"aliases":[{"alias":"champion","version":"1"}],
			"latest_versions":[
				{"name":"churn","version":"1","current_stage":"None","source":"models:/` + mid + `","run_id":"` + rid + `","status":"READY","model_id":"` + mid + `","description":"first","aliases":["champion"]},
				{"name":"churn","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `","status":"READY","description":"second","tags":[{"key":"x","value":"y"}]}]}}`},
		{"GET", mvPath + "search?filter=" + url.QueryEscape("name='churn' and tags.x='y'"), "",
			`{"model_versions":[{"name":"churn","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `","status":"READY","description":"second","tags":[{"key":"x","value":"y"}]}]}`},
		{"POST", rmPath + "rename", `{"name":"churn","new_name":"churn2"}`,
			`{"registered_model":{"name":"churn2","description":"new","tags":[{"key":"owner","value":"ana"}],
			"aliases":[{"alias":"champion","version":"1"}],
			"latest_versions":[
				{"name":"churn2","version":"1","current_stage":"None","source":"models:/` + mid + `","run_id":"` + rid + `","status":"READY","model_id":"` + mid + `","description":"first","aliases":["champion"]},
				{"name":"churn2","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `","status":"READY","description":"second","tags":[{"key":"x","value":"y"}]}]}}`},
		{"DELETE", rmPath + "alias", `{"name":"churn2","alias":"champion"}`, `{}`},
		{"DELETE", mvPath + "delete", `{"name":"churn2","version":"1"}`, `{}`},
		{"GET", rmPath + "search?filter=" + url.QueryEscape("name LIKE 'churn%'") + "&max_results=1", "",
			`{"registered_models":[{"name":"churn2","description":"new","tags":[{"key":"owner","value":"ana"}],
			"latest_versions":[{"name":"churn2","version":"2","current_stage":"Production","source":"runs:/` + rid + `/model","run_id":"` + rid + `","status":"READY","description":"second","tags":[{"key":"x","value":"y"}]}]}]}`},
		{"GET", rmPath + "search?filter=" + url.QueryEscape("name = 'nothing'"), "", `{}`},
		{"DELETE", rmPath + "delete", `{"name":"churn2"}`, `{}`},
		{"GET", mvPath + "search", "", `{}`},
	}
	for i, s := range steps {
		r := call(t, srv, s.method, s.path, s.body)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, r.status, r.raw)
		}
		if got, want := dropTimes(t, jsonOf(t, r.raw)), jsonOf(t, s.want); !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			t.Fatalf("%s %s:\n got %s\nwant %s", s.method, s.path, gj, s.want)
		}
		if i == 1 {
			if got := src.tags[mid+"/mlflow.modelVersions"]; got != `[{"name": "churn", "version": 1}]` {
				t.Fatalf("logged model registrations tag %q", got)
			}
		}
	}
	// Version 1 was deleted: the logged model lists no registration.
	if got := src.tags[mid+"/mlflow.modelVersions"]; got != `[]` {
		t.Fatalf("logged model registrations tag after delete %q", got)
	}
	// Both API prefixes serve the registry.
	if r := call(t, srv, "POST", "/ajax-api/2.0/mlflow/registered-models/create", `{"name":"ajax"}`); r.status != 200 {
		t.Fatalf("ajax-api create: %d %s", r.status, r.raw)
	}
}

func TestRegistrySearchPaging(t *testing.T) {
	srv, _ := newRegistryServer(t)
	for _, n := range []string{"a", "b", "c"} {
		if r := call(t, srv, "POST", rmPath+"create", `{"name":"`+n+`"}`); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	var names []string
	tok := ""
	for range 3 {
		q := url.Values{"max_results": {"2"}, "order_by": {"name DESC"}}
		if tok != "" {
			q.Set("page_token", tok)
		}
		r := call(t, srv, "GET", rmPath+"search?"+q.Encode(), "")
		if r.status != 200 {
			t.Fatal(r.raw)
		}
		for _, m := range r.body["registered_models"].([]any) {
			names = append(names, m.(map[string]any)["name"].(string))
		}
		tok, _ = r.body["next_page_token"].(string)
		if tok == "" {
			break
		}
	}
	if !reflect.DeepEqual(names, []string{"c", "b", "a"}) {
		t.Fatalf("paged names %v", names)
	}
}

func TestRegistryErrors(t *testing.T) {
	srv, _ := newRegistryServer(t)
	if r := call(t, srv, "POST", rmPath+"create", `{"name":"m"}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	if r := call(t, srv, "POST", mvPath+"create", `{"name":"m","source":"s3://b/m"}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	const missingName = "Missing value for required parameter 'name'. See the API docs for more information about request parameters."
	tests := []struct {
		method, path, body string
		status             int
		code, msg          string
	}{
		{"POST", rmPath + "create", `{"name":"m"}`, 400, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=m) already exists."},
		{"POST", rmPath + "create", `{}`, 400, "INVALID_PARAMETER_VALUE", missingName},
		{"POST", rmPath + "create", `{"name":""}`, 400, "INVALID_PARAMETER_VALUE", missingName},
		{"POST", rmPath + "create", `{"name":`, 400, "BAD_REQUEST", ""},
		{"POST", rmPath + "create", `{"name":7}`, 400, "INVALID_PARAMETER_VALUE", ""},
		{"GET", rmPath + "get?name=zzz", "", 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=zzz not found"},
		{"GET", rmPath + "get", "", 400, "INVALID_PARAMETER_VALUE", missingName},
		{"DELETE", rmPath + "delete", `{"name":"zzz"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=zzz not found"},
		{"PATCH", rmPath + "update", `{"name":"zzz"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"POST", rmPath + "rename", `{"name":"m"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'new_name'."},
		{"POST", rmPath + "rename", `{"name":"zzz","new_name":"y"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"GET", rmPath + "search?max_results=1001", "", 400, "INVALID_PARAMETER_VALUE", "It must be at most 1000"},
		{"GET", rmPath + "search?filter=" + url.QueryEscape("name = "), "", 400, "INVALID_PARAMETER_VALUE", ""},
		{"GET", rmPath + "search?page_token=garbage", "", 400, "INVALID_PARAMETER_VALUE", ""},
		{"GET", rmPath + "get-latest-versions?name=m&stages=bogus", "", 400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage: bogus."},
		{"POST", rmPath + "set-tag", `{"name":"m","value":"v"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'key'."},
		{"POST", rmPath + "set-tag", `{"name":"zzz","key":"k","value":"v"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"POST", rmPath + "alias", `{"name":"m","alias":"latest","version":"1"}`, 400, "INVALID_PARAMETER_VALUE", "'latest' alias name (case insensitive) is reserved."},
		{"POST", rmPath + "alias", `{"name":"m","alias":"a","version":"9"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=9) not found"},
		{"POST", rmPath + "alias", `{"name":"m","alias":"a"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'."},
		{"GET", rmPath + "alias?name=m&alias=none", "", 404, "RESOURCE_DOES_NOT_EXIST", "Registered model alias none not found."},
		{"POST", mvPath + "create", `{"name":"m"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'source'."},
		{"POST", mvPath + "create", `{"name":"zzz","source":"s3://b/x"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"POST", mvPath + "create", `{"name":"m","source":"s3://b/../../etc"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source: 's3://b/../../etc'."},
		{"POST", mvPath + "create", `{"name":"m","source":"/etc/passwd"}`, 400, "INVALID_PARAMETER_VALUE", "To use a local path as a model version source"},
		{"POST", mvPath + "create", `{"name":"m","source":"models:/m-ffffffffffffffffffffffffffffffff","model_id":"m-ffffffffffffffffffffffffffffffff"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"GET", mvPath + "get?name=m&version=x", "", 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'x'."},
		{"GET", mvPath + "get?name=m", "", 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'."},
		{"GET", mvPath + "get?name=m&version=2", "", 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=2) not found"},
		{"PATCH", mvPath + "update", `{"name":"m","version":"5","description":"d"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"DELETE", mvPath + "delete", `{"name":"m","version":"5"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"POST", mvPath + "transition-stage", `{"name":"m","version":"1"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'stage'."},
		{"POST", mvPath + "transition-stage", `{"name":"m","version":"1","stage":"Gold"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage: Gold."},
		{"GET", mvPath + "get-download-uri?name=m&version=7", "", 404, "RESOURCE_DOES_NOT_EXIST", ""},
		{"GET", mvPath + "search?filter=" + url.QueryEscape("status = 'READY'"), "", 400, "INVALID_PARAMETER_VALUE", "Invalid attribute name: status"},
		{"GET", mvPath + "search?max_results=200001", "", 400, "INVALID_PARAMETER_VALUE", "It must be at most 200000"},
		{"POST", mvPath + "set-tag", `{"name":"m","version":"1","key":"a/../b","value":"v"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value \"a/../b\" for parameter 'key' supplied"},
		{"DELETE", mvPath + "delete-tag", `{"name":"m","version":"3","key":"k"}`, 404, "RESOURCE_DOES_NOT_EXIST", ""},
	}
	for _, tt := range tests {
		r := call(t, srv, tt.method, tt.path, tt.body)
		if r.status != tt.status || r.body["error_code"] != tt.code {
			t.Errorf("%s %s %s: %d %s, want %d %s", tt.method, tt.path, tt.body, r.status, r.raw, tt.status, tt.code)
			continue
		}
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, tt.msg) {
			t.Errorf("%s %s %s: message %q does not contain %q", tt.method, tt.path, tt.body, msg, tt.msg)
		}
	}
	// None of the failures changed the model.
	r := call(t, srv, "GET", rmPath+"get?name=m", "")
	if lv := r.body["registered_model"].(map[string]any)["latest_versions"].([]any); len(lv) != 1 {
		t.Fatalf("latest versions after errors: %s", r.raw)
	}
}

// FuzzRegistryRequests sends arbitrary bodies and query strings to every
// registry RPC: the answer is a 200 or an MLflow-shaped 4xx, never a 5xx or
// a panic.
func FuzzRegistryRequests(f *testing.F) {
	srv, _ := newRegistryServer(f)
	type route struct{ method, path string }
	var routes []route
	for _, p := range []string{"create", "rename", "update", "delete", "get", "search", "get-latest-versions", "set-tag", "delete-tag", "alias"} {
		for _, m := range []string{"POST", "GET", "PATCH", "DELETE"} {
			routes = append(routes, route{m, rmPath + p})
		}
	}
	for _, p := range []string{"create", "update", "delete", "get", "search", "transition-stage", "get-download-uri", "set-tag", "delete-tag"} {
		for _, m := range []string{"POST", "GET", "PATCH", "DELETE"} {
			routes = append(routes, route{m, mvPath + p})
		}
	}
	call(f, srv, "POST", rmPath+"create", `{"name":"m"}`)
	call(f, srv, "POST", mvPath+"create", `{"name":"m","source":"s3://b/m"}`)
	seeds := []string{`{"name":"m"}`, `{"name":"m","version":"1","stage":"Staging","archive_existing_versions":true}`,
		`{"name":"m","alias":"a","version":"1"}`, `{"name":"m","source":"runs:/x/../y"}`, `{"filter":"tags.a = 'b'","max_results":"5","order_by":["name"]}`,
		`{"name":"m","new_name":"n"}`, `{"name":"m","version":"99999999999999999999"}`, `[]`, `"{\"name\":\"m\"}"`, `{"name":"m","key":"k","value":"v"}`,
		`{"filter":"name ILIKE '%'","page_token":"eyJvZmZzZXQiOiAxfQ=="}`, `{"name":"m","stages":["x"]}`, `{"max_results":-5}`}
	for i, s := range seeds {
		for k := range 3 {
			f.Add(uint16(i*5+k*29), s, "name=m&version=1")
		}
	}
	f.Fuzz(func(t *testing.T, which uint16, body, query string) {
		rt := routes[int(which)%len(routes)]
		path := rt.path
		if query != "" {
			path += "?" + url.PathEscape(query)
		}
		r := call(t, srv, rt.method, path, body)
		if r.status >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, path, body, r.status, r.raw)
		}
		if r.status != 200 && r.status != 404 && r.status != 405 && (r.body["error_code"] == nil || r.body["message"] == nil) {
			t.Fatalf("%s %s %q: %d without an MLflow error body: %s", rt.method, path, body, r.status, r.raw)
		}
	})
}
