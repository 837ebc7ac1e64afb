package pipeline_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/pipelinetest"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

type env struct {
	db  *store.DB
	trk *tracking.Store
	svc *pipeline.Service
	exe *pipelinetest.Executor
}

func newService(t *testing.T, db *store.DB, trk *tracking.Store, exe *pipelinetest.Executor, owner string) *pipeline.Service {
	t.Helper()
	s, err := pipeline.NewService(pipeline.ServiceOptions{DB: db, Tracking: trk, Executors: map[string]pipeline.Executor{"local": exe},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Owner: owner, LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond, TimeoutGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T, s *pipeline.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func setup(t *testing.T, db *store.DB) *env {
	trk := tracking.New(db, tracking.Options{})
	exe := pipelinetest.New()
	e := &env{db: db, trk: trk, exe: exe, svc: newService(t, db, trk, exe, "one")}
	start(t, e.svc)
	return e
}

func put(t *testing.T, s *pipeline.Service, name string, spec pipeline.Spec) {
	t.Helper()
	if _, _, _, err := s.Put(context.Background(), &pipeline.Pipeline{Metadata: pipeline.Metadata{Name: name}, Spec: spec}, "test"); err != nil {
		t.Fatal(err)
	}
}

func wait(t *testing.T, s *pipeline.Service, id string) *pipeline.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := s.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if pipeline.Terminal(r.State) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	r, _ := s.GetRun(context.Background(), id)
	t.Fatalf("run %s did not end: %+v", id, r)
	return nil
}

func states(r *pipeline.Run) map[string]string {
	out := map[string]string{}
	for _, s := range r.Steps {
		out[s.Step] = s.State
	}
	return out
}

func step(name string, deps ...string) pipeline.Step {
	return pipeline.Step{Name: name, Command: []string{"true"}, DependsOn: deps}
}

func run(t *testing.T, s *pipeline.Service, req pipeline.RunRequest) *pipeline.Run {
	t.Helper()
	r, _, err := s.StartRun(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return wait(t, s, r.ID)
}

func TestEngine(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			e := setup(t, db)
			ctx := context.Background()

			t.Run("fan-out", func(t *testing.T) {
				spec := pipeline.Spec{Steps: []pipeline.Step{step("a")}}
				var mids []string
				for i := 0; i < 20; i++ {
					n := "m" + string(rune('a'+i))
					mids = append(mids, n)
					spec.Steps = append(spec.Steps, step(n, "a"))
				}
				spec.Steps = append(spec.Steps, step("z", mids...))
				put(t, e.svc, "fan", spec)
				r := run(t, e.svc, pipeline.RunRequest{Pipeline: "fan", NoCache: true})
				if r.State != pipeline.StateSucceeded {
					t.Fatalf("run %s: %s", r.State, r.Error)
				}
				var order []string
				for _, st := range e.exe.Starts() {
					if st.Task.RunID == r.ID {
						order = append(order, st.Task.Step)
					}
				}
				if len(order) != 22 || order[0] != "a" || order[21] != "z" {
					t.Fatalf("start order %v", order)
				}
				if r.TrackingRunID == "" {
					t.Fatal("no tracking run")
				}
				parent, err := e.trk.GetRun(ctx, r.TrackingRunID)
				if err != nil || parent.Info.Status != "FINISHED" {
					t.Fatalf("parent run %+v %v", parent, err)
				}
				child, err := e.trk.GetRun(ctx, r.Steps[0].TrackingRunID)
				if err != nil {
					t.Fatal(err)
				}
				tags := map[string]string{}
				for _, kv := range child.Tags {
					tags[kv.Key] = kv.Value
				}
				if tags["mlflow.parentRunId"] != r.TrackingRunID || tags["kiln.step"] != "a" || tags["kiln.attempt"] != "1" {
					t.Fatalf("child tags %v", tags)
				}
			})

			t.Run("retry then success", func(t *testing.T) {
				e.exe.Script("flaky", pipelinetest.Result{ExitCode: 2}, pipelinetest.Result{ExitCode: 3}, pipelinetest.Result{Log: "ok\n"})
				put(t, e.svc, "retry", pipeline.Spec{Steps: []pipeline.Step{{Name: "flaky", Command: []string{"x"},
					Retry: &pipeline.RetryPolicy{Limit: 2, Backoff: pipeline.Duration(20 * time.Millisecond)}}}})
				r := run(t, e.svc, pipeline.RunRequest{Pipeline: "retry"})
				if r.State != pipeline.StateSucceeded || r.Steps[0].Attempt != 3 {
					t.Fatalf("run %s, attempt %d: %s", r.State, r.Steps[0].Attempt, r.Error)
				}
				logs, err := e.svc.Logs(ctx, r.ID, "flaky", 0, 0, 0)
				if err != nil || len(logs) != 1 || logs[0].Data != "ok\n" || logs[0].Attempt != 3 {
					t.Fatalf("logs %+v %v", logs, err)
				}
			})

			t.Run("failure, skip and exit handler", func(t *testing.T) {
				e.exe.Script("bad", pipelinetest.Result{ExitCode: 1})
				put(t, e.svc, "fail", pipeline.Spec{Steps: []pipeline.Step{
					step("good"), step("bad"), step("after", "bad"), step("after2", "after"),
					{Name: "never", Command: []string{"x"}, When: "1 == 2", Outputs: []pipeline.Output{{Name: "o", Type: pipeline.OutputParameter}}},
					{Name: "needs", Command: []string{"x", "{{steps.never.outputs.o}}"}, DependsOn: []string{"never"}},
				}, OnExit: &pipeline.Step{Name: "notify", Command: []string{"echo", "{{pipeline.status}}"}}})
				r := run(t, e.svc, pipeline.RunRequest{Pipeline: "fail", NoCache: true})
				want := map[string]string{"good": "succeeded", "bad": "failed", "after": "upstream_failed", "after2": "upstream_failed",
					"never": "skipped", "needs": "skipped", "notify": "succeeded"}
				if got := states(r); r.State != pipeline.StateFailed || !equal(got, want) {
					t.Fatalf("run %s, steps %v", r.State, got)
				}
				for _, st := range e.exe.Starts() {
					if st.Task.RunID == r.ID && st.Task.Step == "notify" && strings.Join(st.Task.Command, " ") != "echo Failed" {
						t.Fatalf("exit handler ran %v", st.Task.Command)
					}
				}
			})

			t.Run("cache, no-cache and resume", func(t *testing.T) {
				put(t, e.svc, "cache", pipeline.Spec{Steps: []pipeline.Step{
					{Name: "train", Command: []string{"train"}, Outputs: []pipeline.Output{{Name: "auc", Type: pipeline.OutputMetric}}},
					{Name: "eval", Command: []string{"eval", "{{steps.train.outputs.auc}}"}},
				}})
				r1 := run(t, e.svc, pipeline.RunRequest{Pipeline: "cache"})
				n := e.exe.StartCount("train")
				r2 := run(t, e.svc, pipeline.RunRequest{Pipeline: "cache"})
				if e.exe.StartCount("train") != n || states(r2)["train"] != pipeline.StateCached || r2.Steps[0].CachedFrom != r1.ID {
					t.Fatalf("second run: %v, from %q", states(r2), r2.Steps[0].CachedFrom)
				}
				run(t, e.svc, pipeline.RunRequest{Pipeline: "cache", NoCache: true})
				if e.exe.StartCount("train") != n+1 {
					t.Fatal("no_cache did not run the step")
				}
				// Resume: eval fails, then is resumed; train is reused.
				e.exe.Script("eval", pipelinetest.Result{ExitCode: 1}, pipelinetest.Result{})
				r4 := run(t, e.svc, pipeline.RunRequest{Pipeline: "cache", NoCache: true})
				if r4.State != pipeline.StateFailed {
					t.Fatalf("run 4 %s", r4.State)
				}
				trains := e.exe.StartCount("train")
				r5 := run(t, e.svc, pipeline.RunRequest{Pipeline: "cache", ResumeFrom: r4.ID, NoCache: true})
				if r5.State != pipeline.StateSucceeded || states(r5)["train"] != pipeline.StateCached || e.exe.StartCount("train") != trains {
					t.Fatalf("resume: %s %v", r5.State, states(r5))
				}
			})

			t.Run("dedup and cancel", func(t *testing.T) {
				e.exe.Script("slow", pipelinetest.Result{Block: true})
				put(t, e.svc, "slow", pipeline.Spec{Steps: []pipeline.Step{step("slow"), step("later", "slow")}})
				r1, created, err := e.svc.StartRun(ctx, pipeline.RunRequest{Pipeline: "slow", DedupKey: "k1"})
				if err != nil || !created {
					t.Fatal(err, created)
				}
				r2, created, err := e.svc.StartRun(ctx, pipeline.RunRequest{Pipeline: "slow", DedupKey: "k1"})
				if err != nil || created || r2.ID != r1.ID {
					t.Fatalf("dedup: %v %v %v", r2, created, err)
				}
				for len(e.exe.Running()) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				if _, err := e.svc.CancelRun(ctx, r1.ID, "me", ""); err != nil {
					t.Fatal(err)
				}
				r := wait(t, e.svc, r1.ID)
				if r.State != pipeline.StateCancelled || states(r)["later"] != pipeline.StateCancelled {
					t.Fatalf("cancel: %s %v", r.State, states(r))
				}
				for len(e.exe.Running()) != 0 {
					time.Sleep(5 * time.Millisecond)
				}
			})

			t.Run("timeout", func(t *testing.T) {
				e.exe.Script("hang", pipelinetest.Result{Block: true})
				put(t, e.svc, "hang", pipeline.Spec{Steps: []pipeline.Step{{Name: "hang", Command: []string{"x"}, Timeout: pipeline.Duration(50 * time.Millisecond)}}})
				r := run(t, e.svc, pipeline.RunRequest{Pipeline: "hang"})
				if r.State != pipeline.StateFailed || !strings.Contains(r.Steps[0].Error, "timed out") {
					t.Fatalf("timeout: %s %q", r.State, r.Steps[0].Error)
				}
			})
		})
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
