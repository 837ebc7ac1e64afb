package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/score"
	"github.com/kiln-ml/kiln/server"
)

const rf100Model = "../../runtime/onnx/testdata/models/skl_rf100_clf/model.onnx"

// writeScoreCSV writes rows of (id, f0..f3).
func writeScoreCSV(t *testing.T, path string, rows int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,f0,f1,f2,f3\n")
	for i := range rows {
		fmt.Fprintf(&b, "c%d,%g,%g,%g,%g\n", i, float64(i%7)-3, float64(i%5)/2-1, float64(i%11)/5-1, float64(i%3)-1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runKiln(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestScoreCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	writeScoreCSV(t, in, 1000)
	tests := []struct {
		name string
		args []string
		// header of the output CSV, or the error
		header string
		err    string
	}{
		{
			name:   "keep one column",
			args:   []string{"--keep", "id", "--features", "f0,f1,f2,f3", "--workers", "3", "--batch-rows", "64"},
			header: "id,label,probabilities_0,probabilities_1,probabilities_2",
		},
		{
			name:   "keep all",
			args:   []string{"--keep-all", "--features", "f0,f1,f2,f3", "--chunk-rows", "100"},
			header: "id,f0,f1,f2,f3,label,probabilities_0,probabilities_1,probabilities_2",
		},
		{name: "text column fed to the model", args: nil, err: "takes 4 columns, the table has 5"},
		{name: "keep and keep-all", args: []string{"--keep", "id", "--keep-all"}, err: "exclude each other"},
		{name: "unknown feature", args: []string{"--features", "f0,zz"}, err: `no column "zz"`},
		{name: "resume without partial output", args: []string{"--resume", "--features", "f0,f1,f2,f3"}, err: "nothing to resume"},
		{name: "output is the input", args: []string{"--output", in}, err: "must not be the input"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out%d.csv", i))
			args := append([]string{"score", "--model", rf100Model, "--input", in, "--output", out}, tt.args...)
			stdout, _, err := runKiln(t, context.Background(), args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout, "scored 1000 rows") {
				t.Errorf("summary = %q", stdout)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(recs[0], ","); got != tt.header {
				t.Errorf("header = %s, want %s", got, tt.header)
			}
			if len(recs) != 1001 || recs[1000][0] != "c999" {
				t.Errorf("%d records, last %v", len(recs), recs[len(recs)-1])
			}
		})
	}
}

// TestScoreCommandInterrupted: a cancelled run (SIGINT) exits 130 and
// leaves a partial output that --resume completes.
func TestScoreCommandInterrupted(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	writeScoreCSV(t, in, 5000)
	out := filepath.Join(dir, "out.parquet")
	args := []string{"score", "--model", rf100Model, "--input", in, "--output", out, "--keep", "id",
		"--features", "f0,f1,f2,f3", "--batch-rows", "100", "--chunk-rows", "500", "--workers", "2"}

	// Cancel once the first chunk is in the journal.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if b, err := os.ReadFile(filepath.Join(score.PartialDir(out), "journal.json")); err == nil && strings.Contains(string(b), "chunk-000001") {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, stderr, err := runKiln(t, ctx, args...)
	cancel()
	<-done
	var ee exitError
	if err == nil {
		// The run beat the watcher: nothing to resume, but it must be complete.
		if _, err := os.Stat(out); err != nil {
			t.Fatal(err)
		}
		t.Log("the run finished before it could be interrupted")
		return
	}
	if !errors.As(err, &ee) || ee.code != 130 || !strings.Contains(stderr, "--resume") {
		t.Fatalf("err = %v, stderr = %q; want exit 130 and a hint to resume", err, stderr)
	}
	stdout, _, err := runKiln(t, context.Background(), append(args, "--resume")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "more from the interrupted run") {
		t.Errorf("summary = %q", stdout)
	}
	if _, err := os.Stat(score.PartialDir(out)); !os.IsNotExist(err) {
		t.Errorf("partial output left: %v", err)
	}
	whole := filepath.Join(dir, "whole.parquet")
	if _, _, err := runKiln(t, context.Background(), append(append(args[:6:6], whole), args[7:]...)...); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(out)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("resumed output (%d bytes) differs from an uninterrupted run (%d bytes)", len(b), len(a))
	}
}

// TestScoreJobCommands drives kiln score submit and kiln score jobs
// against a running kiln server (its job runner included): a dataset
// pushed with kiln data add, the forest registered through MLflow's REST
// API with its files in the artifact proxy.
func TestScoreJobCommands(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = "" // no shared gRPC port between test servers
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	// The model: files through the artifact proxy, registered as rf/1.
	onnx, err := os.ReadFile(rf100Model)
	if err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string][]byte{
		"models/rf/MLmodel":    []byte("flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\n"),
		"models/rf/model.onnx": onnx,
	} {
		req, _ := http.NewRequest("PUT", base+"/api/2.0/mlflow-artifacts/artifacts/"+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("upload %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	for _, call := range [][2]string{
		{"registered-models/create", `{"name": "rf"}`},
		{"model-versions/create", `{"name": "rf", "source": "mlflow-artifacts:/models/rf"}`},
	} {
		resp, err := http.Post(base+"/api/2.0/mlflow/"+call[0], "application/json", strings.NewReader(call[1]))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", call[0], err, resp)
		}
		resp.Body.Close()
	}
	data := t.TempDir()
	writeScoreCSV(t, filepath.Join(data, "data.csv"), 1000)
	if _, stderr, err := runKiln(t, context.Background(), "data", "add", "scoring", data, "--server", base, "--cache-dir", t.TempDir()); err != nil {
		t.Fatalf("kiln data add: %v %s", err, stderr)
	}

	stdout, stderr, err := runKiln(t, context.Background(), "score", "submit", "--server", base, "-m", "models:/rf/1", "-i", "scoring@1",
		"--features", "f0,f1,f2,f3", "--keep", "id", "--artifact", "preds/scored.csv", "--wait", "-o", "json", "--actor", "ci")
	if err != nil {
		t.Fatalf("submit: %v %s", err, stderr)
	}
	var job score.Job
	if err := json.Unmarshal([]byte(stdout), &job); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if job.State != score.JobSucceeded || job.RowsDone != 1000 || job.OutputURI != "mlflow-artifacts:/preds/scored.csv" || job.CreatedBy != "ci" {
		t.Fatalf("job = %+v", job)
	}
	out, err := os.ReadFile(filepath.Join(dir, "artifacts", "preds", "scored.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1001 || lines[0] != "id,label,probabilities_0,probabilities_1,probabilities_2" {
		t.Errorf("output: %d lines, header %q", len(lines), lines[0])
	}

	// A job that fails: --wait exits 1 with the reason.
	_, _, err = runKiln(t, context.Background(), "score", "submit", "--server", base, "-m", "models:/rf/1", "-i", "scoring@1", "--wait")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "takes 4 columns") {
		t.Errorf("failing job: err = %v", err)
	}
	// Refused at submission, in the API's words.
	if _, _, err := runKiln(t, context.Background(), "score", "submit", "--server", base, "-m", "./rf.onnx", "-i", "scoring@1"); err == nil ||
		!strings.Contains(err.Error(), "registry and artifact store") {
		t.Errorf("local model: err = %v", err)
	}

	stdout, _, err = runKiln(t, context.Background(), "score", "jobs", "--server", base, "-o", "json")
	var list api.ScoreJobList
	if err != nil || json.Unmarshal([]byte(stdout), &list) != nil || len(list.Jobs) != 2 || list.Jobs[1].ID != job.ID {
		t.Errorf("jobs: %v %s", err, stdout)
	}
	stdout, _, err = runKiln(t, context.Background(), "score", "jobs", job.ID, "--server", base)
	if err != nil || !strings.Contains(stdout, "succeeded") || !strings.Contains(stdout, "1000") {
		t.Errorf("jobs ID: %v %s", err, stdout)
	}
	if _, _, err := runKiln(t, context.Background(), "score", "jobs", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--server", base); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unknown job: %v", err)
	}
}
