package server

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
	"testing"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/store/storetest"
)

// TestMLflowInputsLinkDatasetVersions runs the whole flow on the assembled
// server: a dataset version is pushed through /api/v1, MLflow runs log
// inputs that name it through the MLflow REST API (as mlflow.log_input
// does), a model version is registered from one run, and the lineage is
// read both ways.
func TestMLflowInputsLinkDatasetVersions(t *testing.T) {
	configs := map[string]func(t *testing.T) string{"sqlite": func(t *testing.T) string { return testConfig(t).Store.URL }}
	if pg := os.Getenv("KILN_TEST_POSTGRES"); pg != "" {
		configs["postgres"] = func(t *testing.T) string { return storetest.NewPostgresURL(t, pg) }
	} else {
		storetest.TestDatabases(t) // fails under CI=true without PostgreSQL
	}
	for name, dbURL := range configs {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Store.URL = dbURL(t)
			srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			testLineageFlow(t, hs.URL)
		})
	}
}

func testLineageFlow(t *testing.T, base string) {
	ctx := context.Background()
	c, err := client.New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "iris.csv"), []byte("sepal,label\n5.1,setosa\n6.2,virginica\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, _ := dataset.NewLocalSource(dir)
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, c.Remote(), dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	cv, err := c.CreateVersion(ctx, "iris", api.CreateVersionRequest{Manifest: m.Digest().String()})
	if err != nil {
		t.Fatal(err)
	}
	ref := cv.Version.Ref()
	digest := cv.Version.Digest.String()

	mlflow := func(path string, body any) map[string]any {
		t.Helper()
		data, _ := json.Marshal(body)
		resp, err := http.Post(base+"/api/2.0/mlflow/"+path, "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	newRun := func() string {
		out := mlflow("runs/create", map[string]any{"experiment_id": "0"})
		return out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	}
	input := func(name, digest, sourceType, source, context string) map[string]any {
		return map[string]any{
			"tags":    []map[string]string{{"key": "mlflow.data.context", "value": context}},
			"dataset": map[string]string{"name": name, "digest": digest, "source_type": sourceType, "source": source},
		}
	}

	// Run 1 names the version by its API URL, as
	// mlflow.data.from_pandas(df, source="http://…/api/v1/datasets/iris/versions/1")
	// records it (MLflow's own 8-digit pandas digest alongside).
	run1 := newRun()
	mlflow("runs/log-inputs", map[string]any{"run_id": run1, "datasets": []any{
		input("dataset", "4a5b6c7d", "http", `{"url": "`+base+`/api/v1/datasets/iris/versions/1"}`, "training"),
		input("unrelated", "0f1e2d3c", "local", `{"uri": "/tmp/other.csv"}`, "eval"),
	}})
	// Run 2 names it by a digest prefix, with the dataset's name.
	run2 := newRun()
	mlflow("runs/log-inputs", map[string]any{"run_id": run2, "datasets": []any{input("iris", digest[:12], "code", "{}", "eval")}})
	// Run 3 logs nothing Kiln knows.
	run3 := newRun()
	mlflow("runs/log-inputs", map[string]any{"run_id": run3, "datasets": []any{input("iris", "0123abcd", "code", "{}", "training")}})

	for _, tc := range []struct {
		run     string
		n       int
		context string
	}{{run1, 1, "training"}, {run2, 1, "eval"}, {run3, 0, ""}} {
		rd, err := c.RunDatasets(ctx, tc.run)
		if err != nil {
			t.Fatal(err)
		}
		if len(rd.Datasets) != tc.n || tc.n == 1 && (rd.Datasets[0].Version != ref || rd.Datasets[0].Context != tc.context) {
			t.Fatalf("run %s: datasets %+v", tc.run, rd.Datasets)
		}
	}

	// A model version registered from run 1 (MLflow REST) is trained on
	// the version.
	mlflow("registered-models/create", map[string]any{"name": "iris-clf"})
	mlflow("model-versions/create", map[string]any{"name": "iris-clf", "source": "runs:/" + run1 + "/model", "run_id": run1})

	lin, err := c.Lineage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(lin.Runs) != 2 {
		t.Fatalf("runs of the version %+v", lin.Runs)
	}
	if len(lin.ModelVersions) != 1 || lin.ModelVersions[0] != (dataset.ModelUse{ModelName: "iris-clf", ModelVersion: 1, Via: "run", RunID: run1}) {
		t.Fatalf("model versions of the version %+v", lin.ModelVersions)
	}
	md, err := c.ModelDatasets(ctx, "iris-clf", 1)
	if err != nil || len(md.Datasets) != 1 || md.Datasets[0].Version != ref {
		t.Fatalf("datasets of the model version %+v %v", md, err)
	}
}
