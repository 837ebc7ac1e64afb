package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/pipelinetest"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// TestExactlyOnce runs one pipeline on three Services sharing a database;
// one is stopped mid-step as if it crashed (its lease is never released):
// that step is taken over after the lease lapses, and every other step
// starts exactly once.
func TestExactlyOnce(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		if name != "postgres" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			db := open(t)
			trk := tracking.New(db, tracking.Options{})
			base := pipelinetest.New()
			var svcs []*pipeline.Service
			var stops []func()
			for i := 0; i < 3; i++ {
				s := newService(t, db, trk, base.Named(fmt.Sprint("s", i)), fmt.Sprint("s", i))
				svcs = append(svcs, s)
				stops = append(stops, start(t, s))
			}
			spec := pipeline.Spec{Steps: []pipeline.Step{step("first"), {Name: "victim", Command: []string{"v"}, DependsOn: []string{"first"}}}}
			var mids []string
			for i := 0; i < 30; i++ {
				n := fmt.Sprint("p", i)
				mids = append(mids, n)
				spec.Steps = append(spec.Steps, pipeline.Step{Name: n, Command: []string{"p", n}, DependsOn: []string{"first"}})
			}
			spec.Steps = append(spec.Steps, step("last", append(mids, "victim")...))
			put(t, svcs[0], "replicas", spec)
			base.Script("victim", pipelinetest.Result{Block: true}, pipelinetest.Result{})
			r, _, err := svcs[1].StartRun(context.Background(), pipeline.RunRequest{Pipeline: "replicas"})
			if err != nil {
				t.Fatal(err)
			}
			// Find who runs the victim, and crash it.
			var owner string
			for deadline := time.Now().Add(10 * time.Second); owner == "" && time.Now().Before(deadline); {
				for _, st := range base.Starts() {
					if st.Task.Step == "victim" {
						owner = st.Owner
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if owner == "" {
				t.Fatal("victim never started")
			}
			// Crash it once every other ready step has ended.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				r, _ := svcs[0].GetRun(context.Background(), r.ID)
				n := 0
				for _, st := range r.Steps {
					if pipeline.Terminal(st.State) {
						n++
					}
				}
				if n == len(mids)+1 {
					break
				}
			}
			var idx int
			fmt.Sscanf(owner, "s%d", &idx)
			svcs[idx].Crash()
			stops[idx]()
			other := svcs[(idx+1)%3]
			got := wait(t, other, r.ID)
			if got.State != pipeline.StateSucceeded {
				t.Fatalf("run %s: %s %v", got.State, got.Error, states(got))
			}
			for step, n := range base.StartCounts() {
				want := 1
				if step == "victim" {
					want = 2
				}
				if n != want {
					t.Errorf("step %s started %d times, want %d", step, n, want)
				}
			}
			for _, st := range got.Steps {
				if st.Step == "victim" && (st.Attempt != 2 || st.Owner != "") {
					t.Errorf("victim: attempt %d owner %q", st.Attempt, st.Owner)
				}
			}
		})
	}
}
