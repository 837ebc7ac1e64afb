package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/pipelinetest"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// BenchmarkEngine measures the engine's own overhead per step: the
// recording executor answers at once, so a run's wall time (creation to
// end, as the server records it) is all scheduling, leases, tracking and
// bookkeeping. Each iteration is one run; ms/step is its wall time over
// its steps. The service is set up as `kiln server` sets it up (default
// poll and lease, a tracking store, the cache off).
//
//	go test ./pipeline -run '^$' -bench Engine -benchtime 3x
func BenchmarkEngine(b *testing.B) {
	dags := []struct {
		name  string
		steps []pipeline.Step
	}{
		{"chain-20", benchChain(20)},
		{"fanout-100", benchFanout(100)},
	}
	for dbName, open := range storetest.TestDatabases(b) {
		for _, d := range dags {
			b.Run(dbName+"/"+d.name, func(b *testing.B) {
				db := open(b)
				trk := tracking.New(db, tracking.Options{})
				svc, err := pipeline.NewService(pipeline.ServiceOptions{DB: db, Tracking: trk,
					Executors: map[string]pipeline.Executor{"local": pipelinetest.New()},
					Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); svc.Run(ctx) }()
				defer func() { cancel(); <-done }()
				off := false
				p := &pipeline.Pipeline{Metadata: pipeline.Metadata{Name: "bench"}, Spec: pipeline.Spec{Cache: &off, Steps: d.steps}}
				if _, _, _, err := svc.Put(ctx, p, "bench"); err != nil {
					b.Fatal(err)
				}
				var wall time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r, _, err := svc.StartRun(ctx, pipeline.RunRequest{Pipeline: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					got := benchWait(b, svc, r.ID)
					if got.State != pipeline.StateSucceeded {
						b.Fatalf("run %s: %s", got.State, got.Error)
					}
					wall += time.Duration(got.EndTime-got.CreationTime) * time.Millisecond
				}
				b.ReportMetric(float64(wall.Milliseconds())/float64(b.N*len(d.steps)), "ms/step")
			})
		}
	}
}

func benchChain(n int) []pipeline.Step {
	var out []pipeline.Step
	for i := 0; i < n; i++ {
		s := pipeline.Step{Name: fmt.Sprint("s", i), Command: []string{"true"}}
		if i > 0 {
			s.DependsOn = []string{fmt.Sprint("s", i-1)}
		}
		out = append(out, s)
	}
	return out
}

func benchFanout(w int) []pipeline.Step {
	out := []pipeline.Step{{Name: "root", Command: []string{"true"}}}
	var mids []string
	for i := 0; i < w; i++ {
		n := fmt.Sprint("f", i)
		mids = append(mids, n)
		out = append(out, pipeline.Step{Name: n, Command: []string{"true"}, DependsOn: []string{"root"}})
	}
	return append(out, pipeline.Step{Name: "join", Command: []string{"true"}, DependsOn: mids})
}

func benchWait(b *testing.B, s *pipeline.Service, id string) *pipeline.Run {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		r, err := s.GetRun(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		if pipeline.Terminal(r.State) {
			return r
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("run %s did not end", id)
	return nil
}
