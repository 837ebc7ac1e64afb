package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/pipeline"
)

// TestPipelineEndToEnd applies a pipeline over the API and runs it on the
// local executor of a real server: the first step writes a parameter and
// an artifact output, the second reads the parameter through a template
// and the artifact as an input; an invalid document is refused with the
// field at fault.
func TestPipelineEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	olFile := filepath.Join(t.TempDir(), "openlineage.jsonl")
	cfg.Lineage.OpenLineageFile = olFile
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg.Server.Addr = ln.Addr().String()
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

	call := func(method, path, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, url+"/api/v1"+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(out); err != nil {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
			}
		}
		return resp.StatusCode
	}

	doc := `
apiVersion: kiln.dev/v1
kind: Pipeline
metadata: {name: hello}
spec:
  parameters:
    - {name: who, default: world}
  steps:
    - name: produce
      command: [sh, -c, 'printf "hello {{params.who}}" > "$KILN_OUTPUTS/greeting"; mkdir -p "$KILN_OUTPUTS/files"; echo data > "$KILN_OUTPUTS/files/a.txt"']
      outputs:
        - {name: greeting, type: parameter}
        - {name: files}
    - name: consume
      command: [sh, -c, 'test "$0" = "hello kiln" && test "$(cat "$KILN_INPUT_FILES/a.txt")" = data', '{{steps.produce.outputs.greeting}}']
      inputs:
        - {name: files, from: steps.produce.outputs.files}
`
	var applied api.ApplyPipelineResponse
	if code := call("PUT", "/pipelines/hello", doc, &applied); code != http.StatusCreated || !applied.Created {
		t.Fatalf("PUT = %d, created %v", code, applied.Created)
	}
	var started api.RunResponse
	if code := call("POST", "/pipelines/hello/runs", `{"parameters": {"who": "kiln"}}`, &started); code/100 != 2 || started.Run == nil {
		t.Fatalf("POST runs = %d", code)
	}
	var run pipeline.Run
	deadline := time.Now().Add(30 * time.Second)
	for {
		call("GET", "/pipeline-runs/"+started.Run.ID, "", &run)
		if pipeline.Terminal(run.State) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run.State != pipeline.StateSucceeded {
		for _, s := range run.Steps {
			t.Logf("step %s: %s %s", s.Step, s.State, s.Error)
		}
		t.Fatalf("run %s: %s", run.State, run.Error)
	}
	if len(run.Steps) != 2 || run.Steps[0].Outputs["greeting"] != "hello kiln" || run.TrackingRunID == "" {
		t.Errorf("steps %+v, tracking run %q", run.Steps, run.TrackingRunID)
	}

	// Lineage: the pipeline run ran its parent tracking run and one per step.
	var g lineage.Graph
	if code := call("GET", "/lineage?direction=downstream&node=pipeline-run:"+run.ID, "", &g); code != http.StatusOK {
		t.Fatalf("GET /lineage = %d", code)
	}
	ran := map[string]bool{}
	for _, e := range g.Edges {
		if e.From == "pipeline-run:"+run.ID && e.Relation == lineage.RelRan {
			ran[e.To] = true
		}
	}
	if len(run.Steps) == 2 && (!ran["run:"+run.TrackingRunID] || !ran["run:"+run.Steps[0].TrackingRunID] || !ran["run:"+run.Steps[1].TrackingRunID] || len(ran) != 3) {
		t.Errorf("lineage of the pipeline run: %+v", g.Edges)
	}
	var bad0 api.ErrorBody
	if code := call("GET", "/lineage?node=pipeline:hello", "", &bad0); code != http.StatusBadRequest || !strings.Contains(bad0.Error.Message, "node id") {
		t.Errorf("bad node: %d %+v", code, bad0.Error)
	}
	if code := call("GET", "/lineage?node=run:nope", "", &bad0); code != http.StatusNotFound {
		t.Errorf("unknown run: %d %+v", code, bad0.Error)
	}

	// OpenLineage: START and COMPLETE of the run and of each step, in the file.
	var kinds []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		data, _ := os.ReadFile(olFile)
		kinds = kinds[:0]
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var ev lineage.OLEvent
			if json.Unmarshal([]byte(line), &ev) == nil {
				kinds = append(kinds, ev.Job.Name+" "+ev.EventType)
			}
		}
		if len(kinds) >= 6 {
			break
		}
	}
	slices.Sort(kinds)
	if want := "hello COMPLETE,hello START,hello.consume COMPLETE,hello.consume START,hello.produce COMPLETE,hello.produce START"; strings.Join(kinds, ",") != want {
		t.Errorf("OpenLineage events %v, want %s", kinds, want)
	}

	var bad api.ErrorBody
	code := call("PUT", "/pipelines/broken", strings.Replace(doc, "name: hello", "name: broken", 1)+
		"    - {name: loop, command: [x], depends_on: [loop]}\n", &bad)
	if code != http.StatusBadRequest || bad.Error.Code == "" || !strings.Contains(bad.Error.Message, "loop") {
		t.Errorf("invalid pipeline: %d %+v", code, bad.Error)
	}
}
