package mlflowapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

// newTestServer serves the MLflow API over a real SQLite store and a local
// artifact folder.
func newTestServer(t testing.TB) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := blob.Open(ctx, "file://"+filepath.Join(dir, "artifacts"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trk := tracking.New(db, tracking.Options{})
	mux := http.NewServeMux()
	New(Deps{Tracking: trk, Registry: registry.New(db, trk), Artifacts: bucket,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); bucket.Close(); db.Close() })
	return srv
}

type result struct {
	status int
	body   map[string]any
	raw    string
}

func call(t testing.TB, srv *httptest.Server, method, path, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return result{resp.StatusCode, m, string(raw)}
}

func TestJSONShapes(t *testing.T) {
	srv := newTestServer(t)
	r := call(t, srv, "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":"0","run_name":"r1","start_time":"1700000000000","tags":[{"key":"mlflow.user","value":"ana"}]}`)
	if r.status != 200 {
		t.Fatalf("create run: %d %s", r.status, r.raw)
	}
	info := r.body["run"].(map[string]any)["info"].(map[string]any)
	id := info["run_id"].(string)
	if info["run_uuid"] != id || info["start_time"] != float64(1700000000000) || info["status"] != "RUNNING" || info["user_id"] != "ana" {
		t.Fatalf("run info %v", info)
	}
	r = call(t, srv, "POST", "/api/2.0/mlflow/runs/log-batch", `{"run_id":"`+id+`","metrics":[{"key":"m","value":"NaN","timestamp":1,"step":0},{"key":"inf","value":"Infinity","timestamp":1}],"params":[{"key":"p","value":"1"}]}`)
	if r.status != 200 || r.raw != "{}\n" {
		t.Fatalf("log-batch: %d %q", r.status, r.raw)
	}
	// The ajax-api twin and GET query parameters.
	r = call(t, srv, "GET", "/ajax-api/2.0/mlflow/runs/get?run_id="+id, "")
	if r.status != 200 || !strings.Contains(r.raw, `"value":"NaN"`) || !strings.Contains(r.raw, `"value":"Infinity"`) {
		t.Fatalf("get run: %d %s", r.status, r.raw)
	}
	r = call(t, srv, "GET", "/api/2.0/mlflow/metrics/get-history?run_uuid="+id+"&metric_key=m", "")
	if r.status != 200 || len(r.body["metrics"].([]any)) != 1 {
		t.Fatalf("get history: %d %s", r.status, r.raw)
	}
	r = call(t, srv, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids="+id+"&metric_key=inf&start_step=0&end_step=10&max_results=5", "")
	if want := `{"metrics":[{"key":"inf","value":"Infinity","timestamp":1,"step":0,"run_id":"` + id + `"}]}` + "\n"; r.raw != want {
		t.Fatalf("bulk interval:\n got  %s want %s", r.raw, want)
	}
	r = call(t, srv, "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"m1"}`)
	if r.status != 200 || r.body["registered_model"].(map[string]any)["name"] != "m1" {
		t.Fatalf("create model: %d %s", r.status, r.raw)
	}
	r = call(t, srv, "POST", "/api/2.0/mlflow/model-versions/create", `{"name":"m1","source":"runs:/`+id+`/model","run_id":"`+id+`"}`)
	mv := r.body["model_version"].(map[string]any)
	if r.status != 200 || mv["version"] != "1" || mv["current_stage"] != "None" || mv["status"] != "READY" {
		t.Fatalf("create version: %d %s", r.status, r.raw)
	}
	r = call(t, srv, "GET", "/api/2.0/mlflow/model-versions/get-download-uri?name=m1&version=1", "")
	if r.body["artifact_uri"] != "mlflow-artifacts:/0/"+id+"/artifacts/model" {
		t.Fatalf("download uri: %s", r.raw)
	}
	r = call(t, srv, "GET", "/api/2.0/mlflow/experiments/search?max_results=10&filter=name%3D%27Default%27", "")
	if exps := r.body["experiments"].([]any); len(exps) != 1 {
		t.Fatalf("search experiments: %s", r.raw)
	}
}

func TestErrorsAreMLflowShaped(t *testing.T) {
	srv := newTestServer(t)
	big := `{"run_id":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed json", "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":`, 400, "BAD_REQUEST"},
		{"wrong type", "POST", "/api/2.0/mlflow/experiments/create", `{"name":123}`, 400, "INVALID_PARAMETER_VALUE"},
		{"wrong value type", "POST", "/api/2.0/mlflow/runs/log-metric", `{"run_id":"abc","key":"k","value":"x","timestamp":1}`, 400, "INVALID_PARAMETER_VALUE"},
		{"missing name", "POST", "/api/2.0/mlflow/experiments/create", `{}`, 400, "INVALID_PARAMETER_VALUE"},
		{"unknown run", "GET", "/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef", "", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"unknown experiment", "GET", "/api/2.0/mlflow/experiments/get?experiment_id=99", "", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"bad experiment id", "GET", "/api/2.0/mlflow/experiments/get?experiment_id=abc", "", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"unknown model", "GET", "/api/2.0/mlflow/registered-models/get?name=zzz", "", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"bad version", "GET", "/api/2.0/mlflow/model-versions/get?name=zzz&version=x", "", 400, "INVALID_PARAMETER_VALUE"},
		{"bad filter", "POST", "/api/2.0/mlflow/runs/search", `{"experiment_ids":["0"],"filter":"metrics.a >"}`, 400, "INVALID_PARAMETER_VALUE"},
		{"oversized body", "POST", "/api/2.0/mlflow/runs/log-batch", big, 400, "INVALID_PARAMETER_VALUE"},
		{"unknown endpoint", "GET", "/api/2.0/mlflow/nope", "", 404, "ENDPOINT_NOT_FOUND"},
		{"bulk interval without runs", "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?metric_key=m", "", 400, "INVALID_PARAMETER_VALUE"},
		{"bulk interval max_results 0", "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a&metric_key=m&max_results=0", "", 400, "INVALID_PARAMETER_VALUE"},
		{"bulk interval max_results over", "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a&metric_key=m&max_results=2501", "", 400, "INVALID_PARAMETER_VALUE"},
		{"bulk interval start only", "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a&metric_key=m&start_step=1", "", 400, "INVALID_PARAMETER_VALUE"},
		{"restore active experiment", "POST", "/api/2.0/mlflow/experiments/restore", `{"experiment_id":"0"}`, 404, "RESOURCE_DOES_NOT_EXIST"},
		{"multipart", "POST", "/api/2.0/mlflow-artifacts/mpu/create/0/x", `{}`, 501, "NOT_IMPLEMENTED"},
		{"traversal in list", "GET", "/api/2.0/mlflow-artifacts/artifacts?path=../../etc", "", 400, "INVALID_PARAMETER_VALUE"},
		{"missing artifact", "GET", "/api/2.0/mlflow-artifacts/artifacts/0/none.txt", "", 404, "RESOURCE_DOES_NOT_EXIST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.method, tt.path, tt.body)
			if r.status != tt.status || r.body["error_code"] != tt.code || r.body["message"] == "" {
				t.Fatalf("got %d %.200s, want %d %s", r.status, r.raw, tt.status, tt.code)
			}
		})
	}
	r := call(t, srv, "POST", "/api/2.0/mlflow-artifacts/mpu/create/0/x", `{}`)
	if !strings.HasPrefix(r.body["message"].(string), multipartUnsupported) {
		t.Fatalf("multipart message %q does not start with the client's fallback text", r.body["message"])
	}
	// Content-Type is required on POST, as in MLflow.
	req, _ := http.NewRequest("POST", srv.URL+"/api/2.0/mlflow/runs/create", strings.NewReader(`{}`))
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 400 {
		t.Fatalf("missing content type: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestArtifactProxy(t *testing.T) {
	srv := newTestServer(t)
	put := func(path string, body []byte) int {
		req, _ := http.NewRequest("PUT", srv.URL+"/api/2.0/mlflow-artifacts/artifacts/"+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	data := bytes.Repeat([]byte("kiln"), 1<<18)
	if s := put("0/r1/artifacts/model/model.pkl", data); s != 200 {
		t.Fatalf("put: %d", s)
	}
	put("0/r1/artifacts/model/MLmodel", []byte("flavors: {}"))
	resp, err := http.Get(srv.URL + "/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/model/model.pkl")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) || resp.Header.Get("Content-Length") != "1048576" {
		t.Fatalf("download: %d bytes, length header %q", len(got), resp.Header.Get("Content-Length"))
	}
	r := call(t, srv, "GET", "/api/2.0/mlflow-artifacts/artifacts?path=0/r1/artifacts/model", "")
	want := `{"files":[{"path":"MLmodel","is_dir":false,"file_size":11},{"path":"model.pkl","is_dir":false,"file_size":1048576}]}` + "\n"
	if r.raw != want {
		t.Fatalf("list:\n got  %s want %s", r.raw, want)
	}
	r = call(t, srv, "DELETE", "/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/model", "")
	if r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r := call(t, srv, "GET", "/api/2.0/mlflow-artifacts/artifacts?path=0/r1/artifacts", ""); r.raw != "{}\n" {
		t.Fatalf("after delete: %s", r.raw)
	}
}

// FuzzRPCBodies sends arbitrary bodies to the JSON RPCs: the answer is a
// 200 or a 4xx in MLflow's format, never a 5xx or a panic.
func FuzzRPCBodies(f *testing.F) {
	srv := newTestServer(f)
	paths := []string{
		"/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow/runs/create", "/api/2.0/mlflow/experiments/create",
		"/api/2.0/mlflow/runs/search", "/api/2.0/mlflow/registered-models/create", "/api/2.0/mlflow/model-versions/create",
		"/api/2.0/mlflow/logged-models", "/api/2.0/mlflow/runs/log-inputs", "/api/2.0/mlflow/runs/update",
	}
	for _, s := range []string{`{"run_id":"x","metrics":[{"key":"a","value":1,"timestamp":1}]}`, `{"experiment_id":"0"}`,
		`{"name":"n"}`, `{"experiment_ids":["0"],"filter":"metrics.a > 1","order_by":["metrics.a DESC"]}`, `"{\"name\":\"x\"}"`,
		`{"name":"m","source":"runs:/abc/model"}`, `[]`, `{"max_results":"-1"}`, `{"metrics":[{"value":"NaN"}]}`} {
		for i := range paths {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		r := call(t, srv, "POST", path, body)
		if r.status >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, r.status, r.raw)
		}
		if r.status != 200 && (r.body["error_code"] == nil || r.body["message"] == nil) {
			t.Fatalf("POST %s %q: %d without an MLflow error body: %s", path, body, r.status, r.raw)
		}
	})
}

// FuzzQueryDecode decodes arbitrary query strings into a request struct.
func FuzzQueryDecode(f *testing.F) {
	for _, s := range []string{"run_id=a&max_results=5", "experiment_ids=1&experiment_ids=2", "max_results=abc", "stages=a&stages=%00", "start_step=1e99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var req struct {
			runIDReq
			ExperimentIDs []string `json:"experiment_ids"`
			MaxResults    Int64    `json:"max_results"`
			StartStep     *Int64   `json:"start_step"`
			Value         *Float64 `json:"value"`
			Flag          *bool    `json:"flag"`
		}
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/x", RawQuery: q}, Header: http.Header{}}
		if err := decode(r, &req); err != nil && errorCode(err) == codeInternal {
			t.Fatalf("query %q: internal error %v", q, err)
		}
	})
}
