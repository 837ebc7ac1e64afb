package lineage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/pipelinetest"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRunUUID(t *testing.T) {
	a, b := lineage.RunUUID("01ABC", "", 0), lineage.RunUUID("01ABC", "train", 1)
	for _, u := range []string{a, b} {
		if !uuidV5.MatchString(u) {
			t.Errorf("%q is not a UUIDv5", u)
		}
	}
	if a != lineage.RunUUID("01ABC", "", 0) || a == b || b == lineage.RunUUID("01ABC", "train", 2) || a == lineage.RunUUID("01ABD", "", 0) {
		t.Errorf("ids not stable or not distinct: %s %s", a, b)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestEventMapping(t *testing.T) {
	e, err := lineage.NewEmitter(lineage.EmitterOptions{File: filepath.Join(t.TempDir(), "ol.jsonl"), DatasetNamespace: "kiln://kiln.test:5000", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ev := e.Event(pipeline.Lifecycle{Phase: pipeline.PhaseFail, Time: at, Pipeline: "retrain", RunID: "01RUN", Step: "train", Attempt: 2,
		State: pipeline.StateFailed, TrackingRunID: "abc123", Error: "exit status 1",
		Inputs:  []pipeline.TaskInput{{Name: "data", URI: "dataset:churn@3"}, {Name: "prev", URI: "s3://bucket/path/model.onnx"}, {Name: "n", URI: "5"}},
		Outputs: map[string]string{"model": "models:/m-1", "auc": "0.91"}})
	if ev.EventType != "FAIL" || ev.EventTime != "2026-12-03T12:00:00Z" || ev.Job.Namespace != "kiln" || ev.Job.Name != "retrain.train" ||
		ev.Run.RunID != lineage.RunUUID("01RUN", "train", 2) || ev.SchemaURL == "" || ev.Producer != lineage.DefaultProducer {
		t.Errorf("event %+v", ev)
	}
	parent, _ := ev.Run.Facets["parent"].(map[string]any)
	if parent == nil || parent["run"].(map[string]any)["runId"] != lineage.RunUUID("01RUN", "", 0) || parent["job"].(map[string]any)["name"] != "retrain" ||
		parent["_producer"] == nil || parent["_schemaURL"] == nil {
		t.Errorf("parent facet %v", parent)
	}
	if em, _ := ev.Run.Facets["errorMessage"].(map[string]any); em == nil || em["message"] != "exit status 1" {
		t.Errorf("error facet %v", ev.Run.Facets["errorMessage"])
	}
	if k, _ := ev.Run.Facets["kiln"].(map[string]any); k == nil || k["mlflow_run_id"] != "abc123" || k["step"] != "train" {
		t.Errorf("kiln facet %v", ev.Run.Facets["kiln"])
	}
	if len(ev.Inputs) != 2 || ev.Inputs[0].Namespace != "kiln://kiln.test:5000" || ev.Inputs[0].Name != "churn" ||
		ev.Inputs[0].Facets["version"].(map[string]any)["datasetVersion"] != "3" ||
		ev.Inputs[1].Namespace != "s3://bucket" || ev.Inputs[1].Name != "path/model.onnx" {
		t.Errorf("inputs %+v", ev.Inputs)
	}
	if len(ev.Outputs) != 1 || ev.Outputs[0].Name != "models:/m-1" {
		t.Errorf("outputs %+v (the metric is not a dataset)", ev.Outputs)
	}
	run := e.Event(pipeline.Lifecycle{Phase: pipeline.PhaseStart, Time: at, Pipeline: "retrain", RunID: "01RUN", Parameters: map[string]string{"reason": "drift"}})
	if run.Job.Name != "retrain" || run.Run.Facets["parent"] != nil || run.Run.Facets["errorMessage"] != nil ||
		run.Job.Facets["jobType"].(map[string]any)["jobType"] != "PIPELINE" {
		t.Errorf("run event %+v", run)
	}
}

func TestEmitterHTTP(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var got []lineage.OLEvent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.URL.Path != "/api/v1/lineage" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		var ev lineage.OLEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if ev.Job.Name == "bad" {
			w.WriteHeader(http.StatusBadRequest) // not retried
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	e, err := lineage.NewEmitter(lineage.EmitterOptions{URL: srv.URL + "/api/v1/lineage", APIKey: "s3cret", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(pipeline.Lifecycle{Phase: pipeline.PhaseStart, Pipeline: "p", RunID: "r1"})
	e.Observe(pipeline.Lifecycle{Phase: pipeline.PhaseStart, Pipeline: "bad", RunID: "r2"})
	e.Observe(pipeline.Lifecycle{Phase: pipeline.PhaseComplete, Pipeline: "p", RunID: "r1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.Observe(pipeline.Lifecycle{Phase: pipeline.PhaseStart, Pipeline: "late", RunID: "r3"}) // after Close: ignored, no panic
	sent, dropped, failed := e.Stats()
	if sent != 2 || dropped != 0 || failed != 1 || calls.Load() != 4 {
		t.Errorf("sent %d dropped %d failed %d after %d calls; want 2 0 1 after 4", sent, dropped, failed, calls.Load())
	}
	if len(got) != 2 || got[0].EventType != "START" || got[1].EventType != "COMPLETE" || got[0].Run.RunID != got[1].Run.RunID {
		t.Errorf("received %+v", got)
	}
	if _, err := lineage.NewEmitter(lineage.EmitterOptions{URL: "ftp://x/y"}); err == nil {
		t.Error("an ftp URL was accepted")
	}
}

// A pipeline run through the engine, observed by an emitter writing a
// file: a START and one terminal event per run and per step attempt, the
// steps' parent is the run, and the dataset input is named.
func TestEngineEmitsOpenLineage(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			ds := dataset.NewStore(db)
			m, err := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: "d.csv", Size: 4, Digest: dataset.Sum([]byte("a,b\n"))}})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: "sales", Manifest: m}); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "openlineage.jsonl")
			em, err := lineage.NewEmitter(lineage.EmitterOptions{File: file, DatasetNamespace: "kiln://test", Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			exe := pipelinetest.New()
			exe.Script("train", pipelinetest.Result{Outputs: map[string]string{"model": "models:/m-7", "auc": "0.9"}})
			exe.Script("fail", pipelinetest.Result{ExitCode: 2, Error: "boom"})
			svc, err := pipeline.NewService(pipeline.ServiceOptions{DB: db, Tracking: tracking.New(db, tracking.Options{}), Datasets: ds,
				Executors: map[string]pipeline.Executor{"local": exe}, Observer: em, Logger: quiet(), Owner: "one",
				LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); svc.Run(runCtx) }()
			defer func() { cancel(); <-done }()
			if _, _, _, err := svc.Put(ctx, &pipeline.Pipeline{Metadata: pipeline.Metadata{Name: "retrain"}, Spec: pipeline.Spec{Steps: []pipeline.Step{
				{Name: "train", Command: []string{"true"}, Inputs: []pipeline.Input{{Name: "data", Dataset: "sales@latest"}},
					Outputs: []pipeline.Output{{Name: "model", Type: "model"}, {Name: "auc", Type: "metric"}}},
				{Name: "fail", Command: []string{"false"}, DependsOn: []string{"train"}},
			}}}, "test"); err != nil {
				t.Fatal(err)
			}
			r, _, err := svc.StartRun(ctx, pipeline.RunRequest{Pipeline: "retrain"})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				if r, err = svc.GetRun(ctx, r.ID); err != nil || pipeline.Terminal(r.State) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if r.State != pipeline.StateFailed {
				t.Fatalf("run %s: %s", r.State, r.Error)
			}
			// The run's end is observed just after it is stored: wait for
			// its event (6 in all) before closing.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if sent, _, _ := em.Stats(); sent >= 6 {
					break
				}
			}
			if err := em.Close(ctx); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			byJob := map[string][]lineage.OLEvent{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev lineage.OLEvent
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				byJob[ev.Job.Name] = append(byJob[ev.Job.Name], ev)
			}
			types := func(job string) (out []string) {
				for _, ev := range byJob[job] {
					out = append(out, ev.EventType)
				}
				return out
			}
			for job, want := range map[string]string{"retrain": "START FAIL", "retrain.train": "START COMPLETE", "retrain.fail": "START FAIL"} {
				if got := types(job); len(got) != 2 || got[0]+" "+got[1] != want {
					t.Errorf("%s: events %v, want %s", job, got, want)
				}
			}
			runID := lineage.RunUUID(r.ID, "", 0)
			for _, ev := range append(byJob["retrain.train"], byJob["retrain.fail"]...) {
				p, _ := ev.Run.Facets["parent"].(map[string]any)
				if p == nil || p["run"].(map[string]any)["runId"] != runID {
					t.Errorf("%s %s: parent %v, want run %s", ev.Job.Name, ev.EventType, p, runID)
				}
			}
			if tr := byJob["retrain.train"]; len(tr) == 2 {
				if len(tr[0].Inputs) != 1 || tr[0].Inputs[0].Name != "sales" || tr[0].Inputs[0].Facets["version"].(map[string]any)["datasetVersion"] != "1" {
					t.Errorf("train START inputs %+v, want sales version 1", tr[0].Inputs)
				}
				if len(tr[1].Outputs) != 1 || tr[1].Outputs[0].Name != "models:/m-7" || tr[0].Run.RunID != tr[1].Run.RunID {
					t.Errorf("train COMPLETE outputs %+v", tr[1].Outputs)
				}
			}
			if fe := byJob["retrain"]; len(fe) == 2 && fe[1].Run.Facets["errorMessage"] == nil {
				t.Errorf("the failed run's event has no errorMessage: %+v", fe[1].Run.Facets)
			}
		})
	}
}
