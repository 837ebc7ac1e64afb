package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/score"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

// jobsHolder lets the job service be built after the env's stores.
type jobsHolder struct{ *score.Jobs }

// scoreEnv is a server with score jobs: the rf100 forest registered as
// "rf" version 1, dataset "scoring" version 1 with data.csv (id, f0..f3).
func scoreEnv(t *testing.T, db *store.DB) (*env, *score.Jobs) {
	t.Helper()
	holder := &jobsHolder{}
	e := newEnv(t, db, func(d *api.Deps) { d.ScoreJobs = holder })
	jobs := score.NewJobs(score.JobsDeps{
		DB: db, Datasets: e.datasets, Content: dataset.NewBucketRemote(e.bucket), Artifacts: e.bucket,
		Models: model.NewStoreResolver(e.tracking, e.registry, e.bucket, t.TempDir()),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, score.JobsOptions{Poll: 10 * time.Millisecond, TempDir: t.TempDir(), Workers: 2})
	holder.Jobs = jobs

	ctx := context.Background()
	onnx, err := os.ReadFile("../runtime/onnx/testdata/models/skl_rf100_clf/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string][]byte{
		"models/rf/MLmodel":    []byte("flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\n"),
		"models/rf/model.onnx": onnx,
	} {
		if _, err := e.bucket.Put(ctx, key, bytes.NewReader(body), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.registry.CreateRegisteredModel(ctx, "rf", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "rf", Source: "mlflow-artifacts:/models/rf"}); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("id,f0,f1,f2,f3\n")
	for i := range 300 {
		fmt.Fprintf(&csv, "r%d,%g,%g,%g,%g\n", i, float64(i%7)-3, float64(i%5)/2-1, float64(i%11)/5-1, float64(i%3)-1)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"data.csv": csv.String()})
	src, err := dataset.NewLocalSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, dataset.NewBucketRemote(e.bucket), dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.datasets.CreateDataset(ctx, "scoring", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.datasets.CreateVersion(ctx, dataset.NewVersion{Dataset: "scoring", Manifest: m, Source: dir}); err != nil {
		t.Fatal(err)
	}
	return e, jobs
}

func postJSON(t *testing.T, url, body string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestScoreJobsAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e, jobs := scoreEnv(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- jobs.Run(ctx) }()
		defer func() { cancel(); <-done }()
		base := e.srv.URL + "/api/v1/score-jobs"

		code, hdr, body := postJSON(t, base, `{"model": "models:/rf/1", "input": "scoring@1/data.csv", "output": "preds/out.csv", "keep": ["id"], "features": ["f0","f1","f2","f3"]}`,
			map[string]string{api.ActorHeader: "alice"})
		if code != http.StatusCreated {
			t.Fatalf("POST: %d %s", code, body)
		}
		var job score.Job
		if err := json.Unmarshal(body, &job); err != nil {
			t.Fatal(err)
		}
		if hdr.Get("Location") != "/api/v1/score-jobs/"+job.ID || job.CreatedBy != "alice" || job.Output != "preds/out.csv" ||
			job.Input != "scoring@1/data.csv" || len(job.Keep) != 1 || len(job.Features) != 4 {
			t.Errorf("job = %s, Location %q", body, hdr.Get("Location"))
		}
		deadline := time.Now().Add(60 * time.Second)
		for job.State != score.JobSucceeded && job.State != score.JobFailed {
			if time.Now().After(deadline) {
				t.Fatalf("job still %s", job.State)
			}
			time.Sleep(5 * time.Millisecond)
			code, _, body := rawRequest(t, "GET", base+"/"+job.ID, "", nil)
			if code != 200 {
				t.Fatalf("GET: %d %s", code, body)
			}
			job = score.Job{}
			if err := json.Unmarshal(body, &job); err != nil {
				t.Fatal(err)
			}
		}
		if job.State != score.JobSucceeded || job.RowsDone != 300 || job.OutputURI != "mlflow-artifacts:/preds/out.csv" {
			t.Fatalf("job = %+v", job)
		}
		o, err := e.bucket.Get(context.Background(), "preds/out.csv")
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(o)
		o.Close()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 301 || lines[0] != "id,label,probabilities_0,probabilities_1,probabilities_2" || !strings.HasPrefix(lines[300], "r299,") {
			t.Errorf("output: %d lines, header %q, last %q", len(lines), lines[0], lines[len(lines)-1])
		}

		// A failing job fails with the cause.
		code, _, body = postJSON(t, base, `{"model": "models:/rf/1", "input": "scoring@latest"}`, nil)
		if code != http.StatusCreated {
			t.Fatalf("POST: %d %s", code, body)
		}

		code, _, body = rawRequest(t, "GET", base+"?state=succeeded&max_results=10", "", nil)
		var list api.ScoreJobList
		if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Jobs) != 1 || list.Jobs[0].ID != job.ID {
			t.Errorf("list: %d %s", code, body)
		}
		code, _, body = rawRequest(t, "GET", base, "", nil)
		if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Jobs) != 2 || list.Jobs[1].ID != job.ID {
			t.Errorf("list all: %d %s", code, body)
		}
	})
}

func TestScoreJobsAPIErrors(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e, _ := scoreEnv(t, db)
		base := e.srv.URL + "/api/v1/score-jobs"
		tests := []struct {
			name, method, path, body string
			status                   int
			code, msg                string
		}{
			{"empty body", "POST", "", "", 400, api.CodeInvalidArgument, "needs a JSON body"},
			{"not JSON", "POST", "", "{", 400, api.CodeInvalidArgument, "Invalid JSON body"},
			{"unknown field", "POST", "", `{"model": "models:/rf/1", "input": "scoring@1", "colour": 1}`, 400, api.CodeInvalidArgument, "unknown field"},
			{"wrong type", "POST", "", `{"model": 3, "input": "scoring@1"}`, 400, api.CodeInvalidArgument, "Invalid JSON body"},
			{"trailing data", "POST", "", `{"model": "models:/rf/1", "input": "scoring@1"} {}`, 400, api.CodeInvalidArgument, "data after"},
			{"local model", "POST", "", `{"model": "./rf", "input": "scoring@1"}`, 400, api.CodeInvalidArgument, "registry and artifact store"},
			{"bad output", "POST", "", `{"model": "models:/rf/1", "input": "scoring@1", "output": "x.xlsx"}`, 400, api.CodeInvalidArgument, ".parquet"},
			{"unknown dataset", "POST", "", `{"model": "models:/rf/1", "input": "nope@1"}`, 404, api.CodeNotFound, "nope"},
			{"unknown job", "GET", "/01ARZ3NDEKTSV4RRFFQ69G5FAV", "", 404, api.CodeNotFound, "does not exist"},
			{"malformed job id", "GET", "/..%2f", "", 404, api.CodeNotFound, ""},
			{"bad state", "GET", "?state=done", "", 400, api.CodeInvalidArgument, "Invalid state"},
			{"bad max_results", "GET", "?max_results=x", "", 400, api.CodeInvalidArgument, "max_results"},
			{"bad page token", "GET", "?page_token=zz", "", 400, api.CodeInvalidArgument, "page_token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var body io.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
				}
				code, eb, raw := rawRequest(t, tt.method, base+tt.path, "application/json", body)
				if code != tt.status || eb.Error.Code != tt.code || !strings.Contains(eb.Error.Message, tt.msg) {
					t.Errorf("%s %s: %d %s, want %d %s with %q", tt.method, tt.path, code, raw, tt.status, tt.code, tt.msg)
				}
			})
		}
	})
	// A server without the job service says so.
	e := newEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	code, eb, _ := rawRequest(t, "GET", e.srv.URL+"/api/v1/score-jobs", "", nil)
	if code != http.StatusNotImplemented || eb.Error.Code != api.CodeNotImplemented {
		t.Errorf("without jobs: %d %+v", code, eb)
	}
}

// fakeJobs accepts every request.
type fakeJobs struct{}

func (fakeJobs) Submit(_ context.Context, req score.JobRequest, actor string) (*score.Job, error) {
	return &score.Job{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Model: req.Model, Input: req.Input, Output: req.Output, State: score.JobQueued, CreatedBy: actor}, nil
}
func (fakeJobs) Get(context.Context, string) (*score.Job, error) { return &score.Job{}, nil }
func (fakeJobs) List(context.Context, score.JobQuery) ([]*score.Job, string, error) {
	return nil, "", nil
}

// FuzzScoreJobRequest: any POST /score-jobs body is a 201 with a job or a
// 4xx in the API's error format, never a 500 or a panic; what is accepted
// names a model that is not a server path and a well-formed input.
func FuzzScoreJobRequest(f *testing.F) {
	for _, s := range []string{
		`{"model": "models:/rf/1", "input": "scoring@1/data.csv", "output": "preds/out.csv", "keep": ["id"], "features": ["a","b"]}`,
		`{"model": "models:/rf@champion", "input": "kiln://datasets/x@latest", "keep_all": true, "batch_rows": 100}`,
		`{"model": "runs:/abc/model", "input": "mlflow-artifacts:/inputs/a.parquet", "output": "mlflow-artifacts:/o.jsonl"}`,
		`{"model": "/etc/passwd", "input": "s3://b/k"}`,
		`{"model": "models:/m-123", "input": "x@v3/../y"}`,
		`{"model": "", "input": ""}`, `[]`, `null`, `{"batch_rows": 1e99}`, "{\"model\": \"models:/a/1\", \"input\": \"a@1\x00\"}",
	} {
		f.Add([]byte(s))
	}
	mux := http.NewServeMux()
	api.New(api.Deps{ScoreJobs: fakeJobs{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/score-jobs", bytes.NewReader(body)))
		switch {
		case rec.Code == http.StatusCreated:
			var job score.Job
			if err := json.Unmarshal(rec.Body.Bytes(), &job); err != nil {
				t.Fatalf("201 with %q: %v", rec.Body.String(), err)
			}
			u, err := model.ParseURI(job.Model)
			if err != nil || u.Kind == model.URILocal {
				t.Fatalf("accepted model %q (%v)", job.Model, err)
			}
			if _, err := score.ParseInput(job.Input); err != nil {
				t.Fatalf("accepted input %q: %v", job.Input, err)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%d with %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}
