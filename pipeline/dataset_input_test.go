package pipeline_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/pipelinetest"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// A dataset input given as name@latest is pinned when the step starts:
// {{inputs.n}} expands to the pinned name@N, and a new version changes
// the step's cache key, so a step that reads @latest is not served from
// the cache of the previous version.
func TestDatasetInputPinned(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			ds := dataset.NewStore(db)
			addVersion := func(content string) {
				t.Helper()
				m, err := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: "data.csv", Size: int64(len(content)), Digest: dataset.Sum([]byte(content))}})
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: "sales", Manifest: m}); err != nil {
					t.Fatal(err)
				}
			}
			trk := tracking.New(db, tracking.Options{})
			exe := pipelinetest.New()
			svc, err := pipeline.NewService(pipeline.ServiceOptions{DB: db, Tracking: trk, Datasets: ds, Executors: map[string]pipeline.Executor{"local": exe},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Owner: "one", LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start(t, svc)
			put(t, svc, "check", pipeline.Spec{
				Parameters: []pipeline.Parameter{{Name: "data", Default: "sales@latest"}},
				Steps: []pipeline.Step{{Name: "validate", Command: []string{"kiln", "data", "validate", "{{inputs.data}}"},
					Inputs: []pipeline.Input{{Name: "data", Dataset: "{{params.data}}"}}}},
			})
			commands := func(runID string) [][]string {
				var out [][]string
				for _, s := range exe.Starts() {
					if s.Task.RunID == runID {
						out = append(out, s.Task.Command)
					}
				}
				return out
			}
			for i, want := range []struct {
				add   string
				state string
				ref   string
			}{
				{add: "a,b\n1,2\n", state: pipeline.StateSucceeded, ref: "sales@1"},
				{state: pipeline.StateCached, ref: "sales@1"},
				{add: "a,b\n3,4\n", state: pipeline.StateSucceeded, ref: "sales@2"},
			} {
				if want.add != "" {
					addVersion(want.add)
				}
				r := run(t, svc, pipeline.RunRequest{Pipeline: "check"})
				if got := states(r)["validate"]; got != want.state {
					t.Fatalf("run %d: validate %s, want %s (%s)", i, got, want.state, r.Error)
				}
				if want.state == pipeline.StateCached {
					continue
				}
				cmds := commands(r.ID)
				if len(cmds) != 1 || !slices.Equal(cmds[0], []string{"kiln", "data", "validate", want.ref}) {
					t.Fatalf("run %d: commands %q, want validate %s", i, cmds, want.ref)
				}
			}
		})
	}
}

// The log writer a re-attaching executor gets knows when the attempt's
// last chunk was stored (pipeline.LogCursor), zero when none was.
func TestLogCursor(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			e := setup(t, open(t))
			e.exe.Script("talk", pipelinetest.Result{Log: "hello\n"})
			put(t, e.svc, "talk", pipeline.Spec{Steps: []pipeline.Step{step("talk"), step("quiet")}})
			r := run(t, e.svc, pipeline.RunRequest{Pipeline: "talk", NoCache: true})
			logs, err := e.svc.Logs(context.Background(), r.ID, "talk", 0, 0, 0)
			if err != nil || len(logs) == 0 {
				t.Fatalf("logs %v, %v", logs, err)
			}
			attempt := logs[len(logs)-1].Attempt
			if got, want := e.svc.LogCursorOf(r.ID, "talk", attempt), time.UnixMilli(logs[len(logs)-1].Time); !got.Equal(want) {
				t.Errorf("cursor %v, want the last chunk's time %v", got, want)
			}
			if got := e.svc.LogCursorOf(r.ID, "talk", attempt+1); !got.IsZero() {
				t.Errorf("cursor of an attempt with no log %v, want zero", got)
			}
		})
	}
}
