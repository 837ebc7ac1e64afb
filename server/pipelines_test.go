package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/pipeline"
)

// TestPipelineEndToEnd applies a pipeline over the API and runs it on the
// local executor of a real server: the first step writes a parameter and
// an artifact output, the second reads the parameter through a template
// and the artifact as an input; an invalid document is refused with the
// field at fault.
func TestPipelineEndToEnd(t *testing.T) {
	cfg := testConfig(t)
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

	var bad api.ErrorBody
	code := call("PUT", "/pipelines/broken", strings.Replace(doc, "name: hello", "name: broken", 1)+
		"    - {name: loop, command: [x], depends_on: [loop]}\n", &bad)
	if code != http.StatusBadRequest || bad.Error.Code == "" || !strings.Contains(bad.Error.Message, "loop") {
		t.Errorf("invalid pipeline: %d %+v", code, bad.Error)
	}
}
