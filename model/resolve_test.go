package model_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/server"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// kilnOps builds the objects of the resolution scenario, either directly
// in the stores or through a server's MLflow REST API.
type kilnOps interface {
	createRun(t *testing.T) (runID, artifactURI string)
	createLoggedModel(t *testing.T, name, runID string) (id, artifactURI string)
	upload(t *testing.T, artifactURI, fixture string)
	createModel(t *testing.T, name string)
	createVersion(t *testing.T, name, source, runID, modelID string) int64
	setAlias(t *testing.T, name, alias string, version int64)
	transition(t *testing.T, name string, version int64, stage string)
}

var ctx = context.Background()

// fixtureKey maps an mlflow-artifacts:/ URI to its bucket key.
func fixtureKey(t *testing.T, uri string) string {
	t.Helper()
	k, ok := strings.CutPrefix(uri, "mlflow-artifacts:/")
	if !ok {
		t.Fatalf("artifact URI %q is not proxied", uri)
	}
	return k
}

func fixtureFiles(t *testing.T, fixture string) map[string][]byte {
	t.Helper()
	dir := filepath.Join("testdata", fixture)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// storeOps works on the stores directly.
type storeOps struct {
	trk *tracking.Store
	reg *registry.Store
	art *blob.Bucket
}

func (o storeOps) createRun(t *testing.T) (string, string) {
	r, err := o.trk.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	return r.Info.RunID, r.Info.ArtifactURI
}

func (o storeOps) createLoggedModel(t *testing.T, name, runID string) (string, string) {
	m, err := o.trk.CreateLoggedModel(ctx, tracking.CreateLoggedModelInput{ExperimentID: "0", Name: name, SourceRunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID, m.ArtifactLocation
}

func (o storeOps) upload(t *testing.T, uri, fixture string) {
	for name, b := range fixtureFiles(t, fixture) {
		if _, err := o.art.Put(ctx, fixtureKey(t, uri)+"/"+name, bytes.NewReader(b), ""); err != nil {
			t.Fatal(err)
		}
	}
}

func (o storeOps) createModel(t *testing.T, name string) {
	if _, err := o.reg.CreateRegisteredModel(ctx, name, "", nil); err != nil {
		t.Fatal(err)
	}
}

func (o storeOps) createVersion(t *testing.T, name, source, runID, modelID string) int64 {
	v, err := o.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: name, Source: source, RunID: runID, ModelID: modelID})
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

func (o storeOps) setAlias(t *testing.T, name, alias string, version int64) {
	if err := o.reg.SetAlias(ctx, name, alias, version); err != nil {
		t.Fatal(err)
	}
}

func (o storeOps) transition(t *testing.T, name string, version int64, stage string) {
	if _, err := o.reg.TransitionStage(ctx, name, version, stage, false); err != nil {
		t.Fatal(err)
	}
}

// httpOps works through a Kiln server's MLflow REST API, as the mlflow
// client does.
type httpOps struct{ url string }

func (o httpOps) call(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, o.url+"/api/2.0/mlflow/"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	json.Unmarshal(raw, &out)
	return out
}

func dig(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		v = v.(map[string]any)[k]
	}
	return fmt.Sprint(v)
}

func (o httpOps) createRun(t *testing.T) (string, string) {
	r := o.call(t, "POST", "runs/create", map[string]any{"experiment_id": "0"})
	return dig(r, "run", "info", "run_id"), dig(r, "run", "info", "artifact_uri")
}

func (o httpOps) createLoggedModel(t *testing.T, name, runID string) (string, string) {
	r := o.call(t, "POST", "logged-models", map[string]any{"experiment_id": "0", "name": name, "source_run_id": runID})
	return dig(r, "model", "info", "model_id"), dig(r, "model", "info", "artifact_uri")
}

func (o httpOps) upload(t *testing.T, uri, fixture string) {
	for name, b := range fixtureFiles(t, fixture) {
		req, _ := http.NewRequest("PUT", o.url+"/api/2.0/mlflow-artifacts/artifacts/"+fixtureKey(t, uri)+"/"+name, bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("upload %s: %s", name, resp.Status)
		}
	}
}

func (o httpOps) createModel(t *testing.T, name string) {
	o.call(t, "POST", "registered-models/create", map[string]any{"name": name})
}

func (o httpOps) createVersion(t *testing.T, name, source, runID, modelID string) int64 {
	r := o.call(t, "POST", "model-versions/create", map[string]any{"name": name, "source": source, "run_id": runID, "model_id": modelID})
	v, _ := strconv.ParseInt(dig(r, "model_version", "version"), 10, 64)
	return v
}

func (o httpOps) setAlias(t *testing.T, name, alias string, version int64) {
	o.call(t, "POST", "registered-models/alias", map[string]any{"name": name, "alias": alias, "version": strconv.FormatInt(version, 10)})
}

func (o httpOps) transition(t *testing.T, name string, version int64, stage string) {
	o.call(t, "POST", "model-versions/transition-stage", map[string]any{"name": name, "version": strconv.FormatInt(version, 10), "stage": stage, "archive_existing_versions": false})
}

type scenario struct {
	runID, modelID string
}

// build creates: a run whose artifacts hold sklearn_logreg under model/;
// a logged model "echo" of that run holding pyfunc_echo; registered model
// iris with version 1 (the run's model, alias champion, Production) and
// version 2 (the logged model, Staging).
func build(t *testing.T, o kilnOps) scenario {
	runID, runURI := o.createRun(t)
	o.upload(t, runURI+"/model", "sklearn_logreg")
	modelID, modelURI := o.createLoggedModel(t, "echo", runID)
	o.upload(t, modelURI, "pyfunc_echo")
	o.createModel(t, "iris")
	if v := o.createVersion(t, "iris", "runs:/"+runID+"/model", runID, ""); v != 1 {
		t.Fatalf("version %d", v)
	}
	if v := o.createVersion(t, "iris", "models:/"+modelID, "", modelID); v != 2 {
		t.Fatalf("version %d", v)
	}
	o.setAlias(t, "iris", "champion", 1)
	o.transition(t, "iris", 1, "Production")
	o.transition(t, "iris", 2, "Staging")
	return scenario{runID: runID, modelID: modelID}
}

// checkResolutions resolves every kind of URI of the scenario and checks
// the files each leads to.
func checkResolutions(t *testing.T, r model.Resolver, s scenario) {
	tests := []struct {
		uri     string
		fixture string
		version int64
		modelID string
	}{
		{uri: "runs:/" + s.runID + "/model", fixture: "sklearn_logreg"},
		{uri: "runs:/" + s.runID + "/echo", fixture: "pyfunc_echo", modelID: s.modelID},
		{uri: "models:/iris/1", fixture: "sklearn_logreg", version: 1},
		{uri: "models:/iris@champion", fixture: "sklearn_logreg", version: 1},
		{uri: "models:/iris/Production", fixture: "sklearn_logreg", version: 1},
		{uri: "models:/iris/staging", fixture: "pyfunc_echo", version: 2, modelID: s.modelID},
		{uri: "models:/iris/latest", fixture: "pyfunc_echo", version: 2, modelID: s.modelID},
		{uri: "models:/iris/2", fixture: "pyfunc_echo", version: 2, modelID: s.modelID},
		{uri: s.modelID, fixture: "pyfunc_echo", modelID: s.modelID},
		{uri: "models:/" + s.modelID, fixture: "pyfunc_echo", modelID: s.modelID},
		{uri: "mlflow-artifacts:/0/" + s.runID + "/artifacts/model", fixture: "sklearn_logreg"},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.uri, "/", "_"), func(t *testing.T) {
			res, err := r.Resolve(ctx, tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range fixtureFiles(t, tc.fixture) {
				got, err := os.ReadFile(filepath.Join(res.Dir, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %s differs from the fixture (%v)", tc.uri, name, err)
				}
			}
			if res.Version != tc.version || (tc.version > 0 && res.Name != "iris") {
				t.Errorf("%s: resolved to %s v%d", tc.uri, res.Name, res.Version)
			}
			if tc.modelID != "" && res.ModelID != tc.modelID {
				t.Errorf("%s: model id %q, want %q", tc.uri, res.ModelID, tc.modelID)
			}
			if !strings.HasPrefix(res.Source, "mlflow-artifacts:/0/") {
				t.Errorf("%s: source %q", tc.uri, res.Source)
			}
		})
	}
	errTests := []struct {
		uri  string
		kind error
		msg  string
	}{
		{"models:/iris/7", errdefs.ErrNotFound, "Model Version (name=iris, version=7) not found"},
		{"models:/nope@champion", errdefs.ErrNotFound, "Registered Model with name=nope not found"},
		{"models:/iris@nope", errdefs.ErrNotFound, "alias nope not found"},
		{"models:/iris/Archived", errdefs.ErrNotFound, "No versions of model with name 'iris' and stage 'Archived' found"},
		{"models:/iris/Bogus", errdefs.ErrInvalidArgument, "Invalid Model Version stage"},
		{"runs:/" + s.runID + "/missing", model.ErrNoMLmodel, `no logged model named "missing"`},
		{"runs:/0123456789abcdef0123456789abcdef/model", errdefs.ErrNotFound, "0123456789abcdef0123456789abcdef"},
		{"m-0123456789abcdef0123456789abcdef", errdefs.ErrNotFound, "m-0123456789abcdef0123456789abcdef"},
		{"models:/iris/1/extra", model.ErrBadURI, "models URIs must be of the form"},
	}
	for _, tc := range errTests {
		_, err := r.Resolve(ctx, tc.uri)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %v containing %q", tc.uri, err, tc.kind, tc.msg)
		}
	}
	// Local directories resolve in place.
	local, err := r.Resolve(ctx, filepath.Join("testdata", "sklearn_logreg"))
	if err != nil {
		t.Fatal(err)
	}
	if abs, _ := filepath.Abs(filepath.Join("testdata", "sklearn_logreg")); local.Dir != abs || local.Cached {
		t.Errorf("local dir resolved to %+v", local)
	}
}

func TestStoreResolver(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			trk := tracking.New(db, tracking.Options{})
			reg := registry.New(db, trk)
			bucket, err := blob.Open(ctx, "file://"+filepath.Join(t.TempDir(), "artifacts"), blob.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bucket.Close() })
			s := build(t, storeOps{trk, reg, bucket})
			cache := t.TempDir()
			r := model.NewStoreResolver(trk, reg, bucket, cache)
			checkResolutions(t, r, s)
			// Two URIs of the same files share one cache entry.
			a, err := r.Resolve(ctx, "models:/iris/1")
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.Resolve(ctx, "models:/iris@champion")
			if err != nil {
				t.Fatal(err)
			}
			if a.Dir != b.Dir || !a.Cached || !strings.HasPrefix(a.Dir, cache) {
				t.Errorf("cache entries %+v %+v", a, b)
			}
		})
	}
}

// countingHandler counts the artifact downloads a server answers.
type countingHandler struct {
	h         http.Handler
	artifacts atomic.Int64
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/2.0/mlflow-artifacts/") {
		c.artifacts.Add(1)
	}
	c.h.ServeHTTP(w, r)
}

func startServer(t *testing.T, dbURL string) (*httptest.Server, *countingHandler) {
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = dbURL
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = "" // no shared gRPC port between test servers
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ch := &countingHandler{h: srv.Handler()}
	hs := httptest.NewServer(ch)
	t.Cleanup(hs.Close)
	return hs, ch
}

func TestRemoteResolver(t *testing.T) {
	for name := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			dbURL := "sqlite://" + filepath.Join(t.TempDir(), "kiln.db")
			if name == "postgres" {
				dbURL = storetest.NewPostgresURL(t, os.Getenv("KILN_TEST_POSTGRES"))
			}
			hs, counter := startServer(t, dbURL)
			s := build(t, httpOps{hs.URL})
			cache := t.TempDir()
			r, err := model.NewRemoteResolver(hs.URL+"/", model.RemoteOptions{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			checkResolutions(t, r, s)

			// A fresh resolver on the same cache (a second `kiln serve`)
			// finds the version's files without downloading.
			r2, _ := model.NewRemoteResolver(hs.URL, model.RemoteOptions{CacheDir: cache})
			before := counter.artifacts.Load()
			res, err := r2.Resolve(ctx, "models:/iris/1")
			if err != nil {
				t.Fatal(err)
			}
			if !res.Cached || counter.artifacts.Load() != before {
				t.Errorf("second resolution: cached=%v, %d artifact requests", res.Cached, counter.artifacts.Load()-before)
			}
			// A new cache downloads again: 1 listing and one GET per file.
			r3, _ := model.NewRemoteResolver(hs.URL, model.RemoteOptions{CacheDir: t.TempDir()})
			before = counter.artifacts.Load()
			if res, err = r3.Resolve(ctx, "models:/iris/1"); err != nil || res.Cached {
				t.Fatalf("fresh cache: %+v %v", res, err)
			}
			if n := counter.artifacts.Load() - before; n != int64(1+len(fixtureFiles(t, "sklearn_logreg"))) {
				t.Errorf("fresh download made %d artifact requests", n)
			}
			if ents, _ := os.ReadDir(cache); len(ents) == 0 {
				t.Error("empty cache")
			} else {
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), ".tmp-") {
						t.Errorf("temporary directory %s left in the cache", e.Name())
					}
				}
			}
		})
	}
}

// fakeProxy serves one directory listing, as a hostile or broken server
// might.
func fakeProxy(t *testing.T, files string) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/2.0/mlflow-artifacts/artifacts":
			if r.URL.Query().Get("path") == "m" {
				io.WriteString(w, files)
				return
			}
			io.WriteString(w, `{}`)
		case strings.HasPrefix(r.URL.Path, "/api/2.0/mlflow-artifacts/artifacts/"):
			io.WriteString(w, "flavors: {python_function: {}}\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestRemoteResolverRejectsBadListings(t *testing.T) {
	tests := []struct{ name, files, want string }{
		{"traversal", `{"files": [{"path": "../evil", "is_dir": false, "file_size": 3}]}`, `refusing artifact name "../evil"`},
		{"absolute", `{"files": [{"path": "/etc/passwd", "is_dir": false}]}`, "refusing artifact name"},
		{"dot dir", `{"files": [{"path": "..", "is_dir": true}]}`, "refusing artifact name"},
		{"backslash", `{"files": [{"path": "..\\evil", "is_dir": false}]}`, "refusing artifact name"},
		{"no MLmodel", `{"files": [{"path": "other.txt", "is_dir": false}]}`, "no MLmodel file"},
		{"short body", `{"files": [{"path": "MLmodel", "is_dir": false, "file_size": 9999}]}`, "got 31 bytes, want 9999"},
		{"empty", `{}`, "no artifacts at m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			cache := filepath.Join(parent, "cache")
			r, err := model.NewRemoteResolver(fakeProxy(t, tc.files), model.RemoteOptions{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Resolve(ctx, "mlflow-artifacts:/m")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 {
				t.Errorf("files written outside the cache: %v", ents)
			}
			if ents, _ := os.ReadDir(cache); len(ents) != 0 {
				t.Errorf("cache not cleaned up: %v", ents)
			}
		})
	}
	if _, err := model.NewRemoteResolver("ftp://x", model.RemoteOptions{CacheDir: t.TempDir()}); err == nil {
		t.Error("ftp tracking URI accepted")
	}
}
