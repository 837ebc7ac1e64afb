package trigger

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

// fakeRunner is an in-memory Runner that dedups like the engine.
type fakeRunner struct {
	mu        sync.Mutex
	pipes     map[string]*pipeline.StoredPipeline
	runs      []*pipeline.Run
	byKey     map[string]*pipeline.Run
	calls     map[string]int // StartRun calls by pipeline + dedup key
	cancelled []string
	startErr  error
}

func newFakeRunner(ps ...*pipeline.StoredPipeline) *fakeRunner {
	r := &fakeRunner{pipes: map[string]*pipeline.StoredPipeline{}, byKey: map[string]*pipeline.Run{}, calls: map[string]int{}}
	for _, p := range ps {
		r.put(p)
	}
	return r
}

func (r *fakeRunner) put(p *pipeline.StoredPipeline) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pipes[p.Metadata.Name] = p
}

func (r *fakeRunner) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pipes, name)
}

func (r *fakeRunner) List(ctx context.Context) ([]*pipeline.StoredPipeline, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*pipeline.StoredPipeline
	for _, p := range r.pipes {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out, nil
}

func (r *fakeRunner) Get(ctx context.Context, name string) (*pipeline.StoredPipeline, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pipes[name]; p != nil {
		return p, nil
	}
	return nil, errdefs.NotFound("Pipeline '%s' does not exist", name)
}

func (r *fakeRunner) StartRun(ctx context.Context, req pipeline.RunRequest) (*pipeline.Run, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.startErr != nil {
		return nil, false, r.startErr
	}
	if r.pipes[req.Pipeline] == nil {
		return nil, false, errdefs.NotFound("Pipeline '%s' does not exist", req.Pipeline)
	}
	key := req.Pipeline + "\x00" + req.DedupKey
	r.calls[key]++
	if req.DedupKey != "" {
		if run := r.byKey[key]; run != nil {
			return run, false, nil
		}
	}
	run := &pipeline.Run{ID: fmt.Sprintf("run-%03d", len(r.runs)+1), Pipeline: req.Pipeline, State: pipeline.StatePending,
		Parameters: req.Parameters, Cause: req.Cause, CreatedBy: req.Actor}
	r.runs = append(r.runs, run)
	if req.DedupKey != "" {
		r.byKey[key] = run
	}
	return run, true, nil
}

func (r *fakeRunner) ListRuns(ctx context.Context, q pipeline.RunQuery) ([]*pipeline.Run, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*pipeline.Run
	for _, run := range r.runs {
		if (q.Pipeline == "" || run.Pipeline == q.Pipeline) && (q.State != "active" || !pipeline.Terminal(run.State)) {
			c := *run
			out = append(out, &c)
		}
	}
	return out, "", nil
}

func (r *fakeRunner) CancelRun(ctx context.Context, id, actor, reason string) (*pipeline.Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.runs {
		if run.ID == id {
			if pipeline.Terminal(run.State) {
				return nil, errdefs.InvalidState("Run %s is %s", id, run.State)
			}
			run.State = pipeline.StateCancelled
			r.cancelled = append(r.cancelled, id)
			return run, nil
		}
	}
	return nil, errdefs.NotFound("no run %s", id)
}

// finishAll marks every run succeeded.
func (r *fakeRunner) finishAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.runs {
		if !pipeline.Terminal(run.State) {
			run.State = pipeline.StateSucceeded
		}
	}
}

// started returns copies of the runs of a pipeline, in start order.
func (r *fakeRunner) started(name string) []pipeline.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pipeline.Run
	for _, run := range r.runs {
		if run.Pipeline == name {
			out = append(out, *run)
		}
	}
	return out
}

func (r *fakeRunner) callsFor(pipelineName, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[pipelineName+"\x00"+key]
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func forEachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

func newTestService(t *testing.T, db *store.DB, r Runner, clk *clock, mod ...func(*Options)) *Service {
	t.Helper()
	o := Options{DB: db, Runner: r, Now: clk.Now, Poll: time.Second, LeaseTTL: 30 * time.Second,
		Env:    func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, m := range mod {
		m(&o)
	}
	s, err := NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testWriter writes log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func stored(name string, scheds []pipeline.Schedule, trigs []pipeline.Trigger) *pipeline.StoredPipeline {
	return &pipeline.StoredPipeline{Generation: 1, Pipeline: pipeline.Pipeline{APIVersion: pipeline.APIVersion, Kind: pipeline.KindPipeline,
		Metadata: pipeline.Metadata{Name: name},
		Spec:     pipeline.Spec{Steps: []pipeline.Step{{Name: "a", Command: []string{"true"}}}, Schedules: scheds, Triggers: trigs}}}
}

// state returns the State of one schedule or trigger.
func state(t *testing.T, s *Service, pipelineName, name string) State {
	t.Helper()
	sts, err := s.States(context.Background(), pipelineName)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no state of %s/%s in %+v", pipelineName, name, sts)
	return State{}
}

func ticksOf(runs []pipeline.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Cause.Event["time"])
	}
	return out
}
