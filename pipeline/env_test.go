package pipeline_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/pipelinetest"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// A step's MLflow client talks to this server for tracking and for the
// registry, whatever MLFLOW_REGISTRY_URI the server's own environment
// holds (a stale one once sent register_model to a server that was gone);
// a step may still name another registry in its env.
func TestStepEnvPointsAtServer(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			exe := pipelinetest.New()
			svc, err := pipeline.NewService(pipeline.ServiceOptions{DB: db, Tracking: tracking.New(db, tracking.Options{}),
				Executors: map[string]pipeline.Executor{"local": exe}, ExternalURL: "http://kiln.test:5000",
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Owner: "one", LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start(t, svc)
			own := step("own")
			own.Env = map[string]string{"MLFLOW_REGISTRY_URI": "databricks-uc"}
			put(t, svc, "env", pipeline.Spec{Steps: []pipeline.Step{step("plain"), own}})
			r := run(t, svc, pipeline.RunRequest{Pipeline: "env"})
			if s := states(r); s["plain"] != pipeline.StateSucceeded || s["own"] != pipeline.StateSucceeded {
				t.Fatalf("states %v (%s)", s, r.Error)
			}
			want := map[string]string{"plain": "http://kiln.test:5000", "own": "databricks-uc"}
			for _, s := range exe.Starts() {
				env := s.Task.Env
				if env["MLFLOW_TRACKING_URI"] != "http://kiln.test:5000" || env["KILN_URL"] != "http://kiln.test:5000" ||
					env["MLFLOW_REGISTRY_URI"] != want[s.Task.Step] {
					t.Errorf("step %s: tracking %q, kiln %q, registry %q; want registry %q", s.Task.Step,
						env["MLFLOW_TRACKING_URI"], env["KILN_URL"], env["MLFLOW_REGISTRY_URI"], want[s.Task.Step])
				}
			}
			if len(exe.Starts()) != 2 {
				t.Errorf("%d starts, want 2", len(exe.Starts()))
			}
		})
	}
}
