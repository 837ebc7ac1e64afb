package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/server"
)

var _ pipeline.Stager = (*client.Stager)(nil)

// newKiln starts a Kiln server on SQLite and a local artifact folder.
func newKiln(t *testing.T) *client.Client {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = ""
	cfg.Pipeline.Disabled = true
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, err := client.New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree reads every file under dir by its slash path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files %v, want %d", what, len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
}

func TestStagerArtifacts(t *testing.T) {
	ctx := context.Background()
	c := newKiln(t)
	s := c.Stager()
	src := t.TempDir()
	tree := map[string]string{"model.pkl": "weights", "sub/dir/conf.yaml": "a: 1\n", "empty": "", "sp ace#.txt": "odd name"}
	writeTree(t, src, tree)
	prefix := "mlflow-artifacts:/pipelines/p/01J/train/1/outputs"
	if err := s.Store(ctx, src, prefix+"/model"); err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx, filepath.Join(src, "model.pkl"), prefix+"/single"); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := s.Fetch(ctx, prefix+"/model", filepath.Join(dst, "model")); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "folder", readTree(t, filepath.Join(dst, "model")), tree)
	if err := s.Fetch(ctx, "mlflow-artifacts://kiln.example:5000/pipelines/p/01J/train/1/outputs/single", filepath.Join(dst, "one")); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "one")); string(data) != "weights" {
		t.Errorf("single file = %q", data)
	}

	// runs:/ resolves through the run's artifact root.
	var created struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	resp, err := http.Post(c.URL()+"/api/2.0/mlflow/runs/create", "application/json", strings.NewReader(`{"experiment_id":"0"}`))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	id := created.Run.Info.RunID
	if id == "" {
		t.Fatalf("runs/create answered %s", resp.Status)
	}
	if err := s.Store(ctx, src, "runs:/"+id+"/model"); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, created.Run.Info.ArtifactURI+"/model", filepath.Join(dst, "via-root")); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "runs:/ stored", readTree(t, filepath.Join(dst, "via-root")), tree)
	if err := s.Fetch(ctx, "runs:/"+id+"/model/sub", filepath.Join(dst, "runsub")); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "runs:/ fetched", readTree(t, filepath.Join(dst, "runsub")), map[string]string{"dir/conf.yaml": "a: 1\n"})

	for _, tc := range []struct {
		uri  string
		kind error
	}{
		{prefix + "/missing", errdefs.ErrNotFound},
		{"runs:/0123456789abcdef0123456789abcdef/x", errdefs.ErrNotFound},
		{"models:/churn/1", errdefs.ErrInvalidArgument},
		{"mlflow-artifacts:/../etc/passwd", errdefs.ErrInvalidArgument},
		{"s3://bucket/key", errdefs.ErrInvalidArgument},
	} {
		err := s.Fetch(ctx, tc.uri, filepath.Join(dst, "x"))
		if !errors.Is(err, tc.kind) {
			t.Errorf("Fetch(%s) = %v, want %v", tc.uri, err, tc.kind)
		}
	}
	if err := s.Store(ctx, filepath.Join(src, "nope"), prefix+"/nope"); err == nil {
		t.Error("storing a missing file succeeded")
	}
}

func TestStagerDataset(t *testing.T) {
	ctx := context.Background()
	c := newKiln(t)
	srcDir := t.TempDir()
	tree := map[string]string{"train.csv": "a,b\n1,2\n", "img/x.bin": "\x00\x01\x02"}
	writeTree(t, srcDir, tree)
	if _, err := c.CreateDataset(ctx, api.CreateDatasetRequest{Name: "iris"}); err != nil {
		t.Fatal(err)
	}
	src, err := dataset.NewLocalSource(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, c.Remote(), dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVersion(ctx, "iris", api.CreateVersionRequest{Manifest: m.Digest().String()}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "inputs", "data")
	if err := c.Stager().Fetch(ctx, "dataset:iris@1", dst); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "dataset", readTree(t, dst), tree)
	if err := c.Stager().Fetch(ctx, "dataset:iris@9", t.TempDir()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a missing version: %v", err)
	}
}
