package score

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

type jobEnv struct {
	jobs     *Jobs
	db       *store.DB
	bucket   *blob.Bucket
	inputCSV string // the local copy of dataset scoring@1's data.csv
}

// newJobEnv sets up a server's stores: the rf100 forest as registered
// model "rf" version 1 (files in the artifact store), and dataset
// "scoring" version 1 holding data.csv (id, f0..f3, 500 rows) and
// notes.txt.
func newJobEnv(t *testing.T, db *store.DB, opts JobsOptions) *jobEnv {
	t.Helper()
	ctx := context.Background()
	bucket, err := blob.Open(ctx, "file://"+filepath.ToSlash(t.TempDir()), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	onnx, err := os.ReadFile(filepath.Join(rf100Dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string][]byte{
		"models/rf/MLmodel":    []byte("flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\nmlflow_version: 2.17.0\n"),
		"models/rf/model.onnx": onnx,
	} {
		if _, err := bucket.Put(ctx, key, bytes.NewReader(body), ""); err != nil {
			t.Fatal(err)
		}
	}
	trk := tracking.New(db, tracking.Options{})
	reg := registry.New(db, trk)
	if _, err := reg.CreateRegisteredModel(ctx, "rf", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "rf", Source: "mlflow-artifacts:/models/rf"}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	s, b := randomForestTable(500, 3)
	csvPath := filepath.Join(dir, "data.csv")
	writeTable(t, csvPath, s, b)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a table\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	datasets := dataset.NewStore(db)
	content := dataset.NewBucketRemote(bucket)
	src, err := dataset.NewLocalSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, content, dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := datasets.CreateDataset(ctx, "scoring", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := datasets.CreateVersion(ctx, dataset.NewVersion{Dataset: "scoring", Manifest: m, Source: dir}); err != nil {
		t.Fatal(err)
	}
	if opts.Poll == 0 {
		opts.Poll = 10 * time.Millisecond
	}
	opts.TempDir = t.TempDir()
	jobs := NewJobs(JobsDeps{
		DB: db, Models: model.NewStoreResolver(trk, reg, bucket, t.TempDir()), Artifacts: bucket,
		Datasets: datasets, Content: content,
	}, opts)
	return &jobEnv{jobs: jobs, db: db, bucket: bucket, inputCSV: csvPath}
}

// run starts the runner until the test ends.
func (e *jobEnv) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.jobs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// wait polls a job until it ends.
func (e *jobEnv) wait(t *testing.T, id string) *Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := e.jobs.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == JobSucceeded || j.State == JobFailed {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", id, j.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// artifactTable downloads an artifact and reads it as a table.
func (e *jobEnv) artifactTable(t *testing.T, key string) [][]string {
	t.Helper()
	o, err := e.bucket.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(key))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, rows := readTable(t, p)
	return rows
}

func TestJobs(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			e := newJobEnv(t, db, JobsOptions{Concurrency: 2, Workers: 2})
			ctx := context.Background()
			feats := []string{"f0", "f1", "f2", "f3"}

			// The reference: the same file scored locally.
			ref := filepath.Join(t.TempDir(), "ref.csv")
			rm := loadRF100(t)
			if _, err := File(ctx, rm, nil, e.inputCSV, ref, FileOptions{Columns: Columns{Keep: []string{"id"}, Features: feats}}); err != nil {
				t.Fatal(err)
			}
			_, want := readTable(t, ref)

			e.run(t)
			tests := []struct {
				name string
				req  JobRequest
				// the output key, or the error of the failed job
				out, fail string
			}{
				{name: "registered version, dataset file", req: JobRequest{Model: "models:/rf/1", Input: "scoring@1/data.csv", Output: "preds/a.csv",
					Columns: Columns{Keep: []string{"id"}, Features: feats}}, out: "preds/a.csv"},
				{name: "latest version, whole dataset, parquet by default", req: JobRequest{Model: "models:/rf/latest", Input: "kiln://datasets/scoring@latest",
					Columns: Columns{Keep: []string{"id"}, Features: feats}, BatchRows: 37}},
				{name: "artifact model and input", req: JobRequest{Model: "mlflow-artifacts:/models/rf", Input: "mlflow-artifacts:/" + "placeholder",
					Output: "mlflow-artifacts:/preds/c.jsonl", Columns: Columns{Keep: []string{"id"}, Features: feats}}, out: "preds/c.jsonl"},
				{name: "text column fed to the model", req: JobRequest{Model: "models:/rf/1", Input: "scoring@1"}, fail: "takes 4 columns, the table has 5"},
				{name: "unknown registered model", req: JobRequest{Model: "models:/nope/1", Input: "scoring@1", Columns: Columns{Features: feats}}, fail: "nope"},
				{name: "dataset path that is not a table", req: JobRequest{Model: "models:/rf/1", Input: "scoring@1/notes.txt", Columns: Columns{Features: feats}}, fail: "not a table file"},
			}
			// The artifact input: the first job's input copied into the artifact store.
			csv, err := os.ReadFile(e.inputCSV)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.bucket.Put(ctx, "inputs/data.csv", bytes.NewReader(csv), "text/csv"); err != nil {
				t.Fatal(err)
			}
			tests[2].req.Input = "mlflow-artifacts:/inputs"

			var ids []string
			for _, tt := range tests {
				job, err := e.jobs.Submit(ctx, tt.req, "alice")
				if err != nil {
					t.Fatalf("%s: Submit: %v", tt.name, err)
				}
				if job.State != JobQueued && job.State != JobRunning {
					t.Errorf("%s: submitted job is %s", tt.name, job.State)
				}
				if !validID(job.ID) || job.CreatedBy != "alice" {
					t.Errorf("%s: job = %+v", tt.name, job)
				}
				ids = append(ids, job.ID)
			}
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					job := e.wait(t, ids[i])
					if tt.fail != "" {
						if job.State != JobFailed || !strings.Contains(job.Error, tt.fail) {
							t.Fatalf("job = %s %q, want failed with %q", job.State, job.Error, tt.fail)
						}
						return
					}
					if job.State != JobSucceeded {
						t.Fatalf("job failed: %s", job.Error)
					}
					out := tt.out
					if out == "" {
						out = "score-jobs/" + job.ID + "/predictions.parquet"
					}
					if job.Output != out || job.OutputURI != "mlflow-artifacts:/"+out || job.RowsDone != 500 || job.Attempts != 1 ||
						job.StartTime < job.CreationTime || job.EndTime < job.StartTime {
						t.Errorf("job = %+v", job)
					}
					if got := e.artifactTable(t, out); !reflect.DeepEqual(got, want) {
						t.Errorf("output differs from kiln score's: %d rows, first %v; want %d, first %v", len(got), first(got), len(want), first(want))
					}
				})
			}

			// Listing: newest first, by state, in pages.
			all, next, err := e.jobs.List(ctx, JobQuery{})
			if err != nil || next != "" || len(all) != len(tests) || all[0].ID != ids[len(ids)-1] {
				t.Fatalf("List = %d jobs, next %q, err %v", len(all), next, err)
			}
			failed, _, err := e.jobs.List(ctx, JobQuery{State: JobFailed})
			if err != nil || len(failed) != 3 {
				t.Errorf("failed jobs: %d, %v", len(failed), err)
			}
			var paged []string
			tok := ""
			for {
				page, nt, err := e.jobs.List(ctx, JobQuery{MaxResults: 4, PageToken: tok})
				if err != nil {
					t.Fatal(err)
				}
				for _, j := range page {
					paged = append(paged, j.ID)
				}
				if tok = nt; tok == "" {
					break
				}
			}
			if len(paged) != len(ids) || paged[0] != ids[len(ids)-1] || paged[len(paged)-1] != ids[0] {
				t.Errorf("pages = %v, ids %v", paged, ids)
			}
		})
	}
}

func first(rows [][]string) []string {
	if len(rows) == 0 {
		return nil
	}
	return rows[0]
}

func TestJobSubmitErrors(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			e := newJobEnv(t, open(t), JobsOptions{SourceSchemes: []string{"s3"}})
			tests := []struct {
				name string
				req  JobRequest
				kind error
				msg  string
			}{
				{"no model", JobRequest{Input: "scoring@1"}, errdefs.ErrInvalidArgument, "needs a model"},
				{"local model path", JobRequest{Model: "/etc/models/rf", Input: "scoring@1"}, errdefs.ErrInvalidArgument, "not from '/etc/models/rf'"},
				{"bad model URI", JobRequest{Model: "models:/", Input: "scoring@1"}, errdefs.ErrInvalidArgument, "models URIs must be"},
				{"no input", JobRequest{Model: "models:/rf/1"}, errdefs.ErrInvalidArgument, "needs an input"},
				{"input without version", JobRequest{Model: "models:/rf/1", Input: "scoring"}, errdefs.ErrInvalidArgument, "NAME@VERSION"},
				{"unknown dataset", JobRequest{Model: "models:/rf/1", Input: "other@1"}, errdefs.ErrNotFound, "other"},
				{"unknown version", JobRequest{Model: "models:/rf/1", Input: "scoring@9"}, errdefs.ErrNotFound, ""},
				{"path escape", JobRequest{Model: "models:/rf/1", Input: "scoring@1/../x.csv"}, errdefs.ErrInvalidArgument, ""},
				{"scheme not allowed", JobRequest{Model: "models:/rf/1", Input: "gs://bucket/x.csv"}, errdefs.ErrInvalidArgument, "only from s3://"},
				{"output format", JobRequest{Model: "models:/rf/1", Input: "scoring@1", Output: "out.txt"}, errdefs.ErrInvalidArgument, "must end in .parquet"},
				{"output escapes", JobRequest{Model: "models:/rf/1", Input: "scoring@1", Output: "../out.csv"}, errdefs.ErrInvalidArgument, "Invalid output"},
				{"output in the dataset store", JobRequest{Model: "models:/rf/1", Input: "scoring@1", Output: "datasets/objects/x.csv"}, errdefs.ErrInvalidArgument, "dataset store"},
				{"output URL", JobRequest{Model: "models:/rf/1", Input: "scoring@1", Output: "s3://b/x.csv"}, errdefs.ErrInvalidArgument, "artifact store"},
				{"keep and keep_all", JobRequest{Model: "models:/rf/1", Input: "scoring@1", Columns: Columns{Keep: []string{"id"}, KeepAll: true}}, errdefs.ErrInvalidArgument, "exclude"},
				{"batch rows", JobRequest{Model: "models:/rf/1", Input: "scoring@1", BatchRows: -1}, errdefs.ErrInvalidArgument, "batch_rows"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := e.jobs.Submit(context.Background(), tt.req, "")
					if !errors.Is(err, tt.kind) || !strings.Contains(errdefs.Message(err), tt.msg) {
						t.Fatalf("err = %v, want %v with %q", err, tt.kind, tt.msg)
					}
				})
			}
			if jobs, _, err := e.jobs.List(context.Background(), JobQuery{}); err != nil || len(jobs) != 0 {
				t.Errorf("refused requests left jobs: %d, %v", len(jobs), err)
			}
			for _, q := range []JobQuery{{State: "done"}, {MaxResults: 5000}, {PageToken: "x"}} {
				if _, _, err := e.jobs.List(context.Background(), q); !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("List(%+v): err = %v", q, err)
				}
			}
			if _, err := e.jobs.Get(context.Background(), newID()); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Get(unknown) = %v", err)
			}
		})
	}
}

// TestJobRecovery: a job whose server stopped while running (its lease
// lapsed) runs again; one that has used up its attempts fails.
func TestJobRecovery(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			e := newJobEnv(t, db, JobsOptions{MaxAttempts: 2})
			ctx := context.Background()
			req := JobRequest{Model: "models:/rf/1", Input: "scoring@1", Columns: Columns{Features: []string{"f0", "f1", "f2", "f3"}}}
			var ids []string
			for _, attempts := range []int{1, 2} {
				job, err := e.jobs.Submit(ctx, req, "")
				if err != nil {
					t.Fatal(err)
				}
				// As a replica that died while scoring leaves it.
				if _, err := db.W.ExecContext(ctx, db.Rebind(`UPDATE score_jobs SET state = 'running', lease_owner = 'gone', lease_expires = ?, attempts = ?, rows_done = 42 WHERE job_id = ?`),
					time.Now().Add(-time.Second).UnixMilli(), attempts, job.ID); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, job.ID)
			}
			// A job leased by a live replica is left alone.
			live, err := e.jobs.Submit(ctx, req, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.W.ExecContext(ctx, db.Rebind(`UPDATE score_jobs SET state = 'running', lease_owner = 'alive', lease_expires = ? WHERE job_id = ?`),
				time.Now().Add(time.Hour).UnixMilli(), live.ID); err != nil {
				t.Fatal(err)
			}
			e.run(t)
			if j := e.wait(t, ids[0]); j.State != JobSucceeded || j.Attempts != 2 || j.RowsDone != 500 {
				t.Errorf("recovered job = %s, %d attempts, %d rows (%s)", j.State, j.Attempts, j.RowsDone, j.Error)
			}
			if j := e.wait(t, ids[1]); j.State != JobFailed || !strings.Contains(j.Error, "abandoned after 2 attempts") {
				t.Errorf("exhausted job = %s %q", j.State, j.Error)
			}
			if j, err := e.jobs.Get(ctx, live.ID); err != nil || j.State != JobRunning || j.Attempts != 0 {
				t.Errorf("live job = %+v, %v", j, err)
			}
		})
	}
}

// TestJobShutdown: stopping the runner puts a running job back in the
// queue, and the next runner completes it.
func TestJobShutdown(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			e := newJobEnv(t, db, JobsOptions{Workers: 1})
			ctx := context.Background()
			job, err := e.jobs.Submit(ctx, JobRequest{Model: "models:/rf/1", Input: "scoring@1", BatchRows: 1,
				Columns: Columns{Features: []string{"f0", "f1", "f2", "f3"}}}, "")
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{})
			e.jobs.hook = func(ctx context.Context) error {
				close(started)
				<-ctx.Done() // scoring takes until the server stops
				return ctx.Err()
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- e.jobs.Run(rctx) }()
			<-started
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			j, err := e.jobs.Get(ctx, job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != JobQueued || j.Attempts != 1 {
				t.Fatalf("after shutdown the job is %s after %d attempts (%s), want queued", j.State, j.Attempts, j.Error)
			}
			e.jobs.hook = nil
			e.run(t)
			if j := e.wait(t, job.ID); j.State != JobSucceeded || j.Attempts != 2 {
				t.Errorf("job = %s after %d attempts (%s)", j.State, j.Attempts, j.Error)
			}
		})
	}
}
