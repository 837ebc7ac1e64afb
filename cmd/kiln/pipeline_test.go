package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/server"
)

// pipelineServer is an in-process kiln server that runs pipeline steps on
// its local executor; it is stopped when the test ends.
func pipelineServer(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = ""
	cfg.Pipeline.WorkDir = filepath.Join(dir, "work")
	cfg.Server.ShutdownTimeout = 10 * time.Second
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Addr = ln.Addr().String() // the steps' way back to the server
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the server did not stop")
		}
	})
	old := pipelinePoll
	pipelinePoll = 50 * time.Millisecond
	t.Cleanup(func() { pipelinePoll = old })
	return "http://" + ln.Addr().String()
}

const cliPipelineDocs = `apiVersion: kiln.dev/v1
kind: Pipeline
metadata: {name: greet, description: says hello}
spec:
  parameters:
    - {name: who, default: world}
  steps:
    - name: hello
      command: [sh, -c, 'echo "hello $0"; printf %s "$0" > "$KILN_OUTPUTS/who"', '{{params.who}}']
      outputs:
        - {name: who, type: parameter}
    - name: shout
      depends_on: [hello]
      command: [sh, -c, 'echo "HELLO $0"', '{{steps.hello.outputs.who}}']
  schedules:
    - {name: yearly, cron: "0 0 1 1 *"}
---
apiVersion: kiln.dev/v1
kind: Pipeline
metadata: {name: flaky}
spec:
  parameters:
    - {name: fail, default: "yes"}
  steps:
    - name: first
      command: [sh, -c, 'echo first done']
    - name: check
      depends_on: [first]
      command: [sh, -c, 'echo "checking $0"; test "$0" != yes', '{{params.fail}}']
---
apiVersion: kiln.dev/v1
kind: Pipeline
metadata: {name: slow}
spec:
  steps:
    - name: nap
      command: [sh, -c, 'echo napping; sleep 60']
`

// pipelineRunOf returns the run of a kiln pipeline status -o json.
func pipelineRunOf(t *testing.T, url, id string) *pipeline.Run {
	t.Helper()
	out, errOut, code := runGate(t, "pipeline", "status", id, "--server", url, "-o", "json")
	var run pipeline.Run
	if code != 0 || json.Unmarshal([]byte(out), &run) != nil {
		t.Fatalf("status %s: %d %s %s", id, code, out, errOut)
	}
	return &run
}

// startPipeline starts a run without waiting and returns its id.
func startPipeline(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, errOut, code := runGate(t, append([]string{"pipeline", "run", "--server", url, "-o", "json"}, args...)...)
	var resp api.RunResponse
	if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || resp.Run == nil || !resp.Created {
		t.Fatalf("run %v: %d %s %s", args, code, out, errOut)
	}
	return resp.Run.ID
}

// waitStep waits until a run's step is in one of the states.
func waitStep(t *testing.T, url, id, step string, states ...string) *pipeline.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run := pipelineRunOf(t, url, id)
		for _, s := range run.Steps {
			for _, st := range states {
				if s.Step == step && s.State == st {
					return run
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("step %s of run %s is not %v: %+v", step, id, states, run)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stepOf(run *pipeline.Run, name string) *pipeline.StepRun {
	for _, s := range run.Steps {
		if s.Step == name {
			return s
		}
	}
	return nil
}

func TestPipelineCLI(t *testing.T) {
	url := pipelineServer(t)
	t.Setenv("KILN_ACTOR", "tester")
	dir := t.TempDir()
	file := filepath.Join(dir, "pipelines.yaml")
	if err := os.WriteFile(file, []byte(cliPipelineDocs), 0o644); err != nil {
		t.Fatal(err)
	}

	// Apply, then apply again: nothing changes.
	out, errOut, code := runGate(t, "apply", "-f", file, "--server", url)
	for _, want := range []string{"pipeline/greet created", "pipeline/flaky created", "pipeline/slow created", "+kind: Pipeline"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("apply lacks %q: %d\n%s\n%s", want, code, out, errOut)
		}
	}
	if out, errOut, code = runGate(t, "apply", "-f", file, "--server", url); code != 0 || strings.Count(out, "unchanged") != 3 {
		t.Fatalf("apply again: %d %s %s", code, out, errOut)
	}
	changed := strings.Replace(cliPipelineDocs, "default: world", "default: everyone", 1)
	os.WriteFile(file, []byte(changed), 0o644)
	if out, _, code = runGate(t, "apply", "-f", file, "--server", url, "--dry-run"); code != 0 || !strings.Contains(out, "pipeline/greet configured (dry run)") ||
		!strings.Contains(out, "+      default: everyone") || !strings.Contains(out, "-      default: world") {
		t.Fatalf("dry run: %d %s", code, out)
	}

	t.Run("manifest errors", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("kind: Pipeline\nmetadata: {name: bad}\nspec:\n  steps:\n    - name: a\n      command: [x]\n      depends_on: [nope]\n      retyr: {limit: 1}\n"), 0o644)
		_, errOut, code := runGate(t, "apply", "-f", bad, "--server", url)
		if code == 0 || !strings.Contains(errOut, `bad.yaml:8:7: unknown field "retyr" in spec.steps[0] (did you mean "retry"?)`) {
			t.Fatalf("unknown field: %d %s", code, errOut)
		}
		os.WriteFile(bad, []byte("kind: Pipeline\nmetadata: {name: bad}\nspec:\n  steps:\n    - name: a\n      command: [x]\n      depends_on: [nope]\n"), 0o644)
		_, errOut, code = runGate(t, "apply", "-f", bad, "--server", url)
		if code == 0 || !strings.Contains(errOut, "bad.yaml:7:") || !strings.Contains(errOut, "spec.steps[0].depends_on[0]") {
			t.Fatalf("validation: %d %s", code, errOut)
		}
	})

	t.Run("list", func(t *testing.T) {
		out, _, code := runGate(t, "pipeline", "list", "--server", url)
		if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "greet") || !strings.Contains(out, "flaky") {
			t.Fatalf("table: %d %s", code, out)
		}
		out, _, code = runGate(t, "pipeline", "list", "--server", url, "-o", "json")
		var ps []api.PipelineInfo
		if err := json.Unmarshal([]byte(out), &ps); err != nil || code != 0 || len(ps) != 3 {
			t.Fatalf("json: %d %v %s", code, err, out)
		}
		out, _, code = runGate(t, "pipeline", "list", "--server", url, "-o", "yaml")
		var y []struct {
			Metadata struct{ Name string } `yaml:"metadata"`
			Spec     struct {
				Steps []struct{ Name string } `yaml:"steps"`
			} `yaml:"spec"`
			Generation int `yaml:"generation"`
		}
		if err := yaml.Unmarshal([]byte(out), &y); err != nil || code != 0 || len(y) != 3 || y[0].Generation != 1 || len(y[0].Spec.Steps) == 0 {
			t.Fatalf("yaml: %d %v %s", code, err, out)
		}
		if out, _, code = runGate(t, "pipeline", "get", "greet", "--server", url); code != 0 || !strings.Contains(out, "says hello") ||
			!strings.Contains(out, "who (string) = world") || !strings.Contains(out, "yearly") {
			t.Fatalf("get: %d %s", code, out)
		}
		// kiln get prints the documents, which apply takes back unchanged.
		out, _, code = runGate(t, "get", "pipelines", "--server", url, "-o", "yaml")
		if code != 0 || strings.Count(out, "kind: Pipeline") != 3 || strings.Contains(out, "generation") {
			t.Fatalf("get pipelines -o yaml: %d %s", code, out)
		}
		back := filepath.Join(dir, "back.yaml")
		os.WriteFile(back, []byte(out), 0o644)
		if out, errOut, code := runGate(t, "apply", "-f", back, "--server", url); code != 0 || strings.Count(out, "unchanged") != 3 {
			t.Fatalf("apply of kiln get: %d %s %s", code, out, errOut)
		}
		if out, _, code = runGate(t, "get", "pipeline", "greet", "--server", url, "-o", "json"); code != 0 || !strings.Contains(out, `"name": "greet"`) {
			t.Fatalf("get pipeline -o json: %d %s", code, out)
		}
	})

	t.Run("run wait succeeds with parameters", func(t *testing.T) {
		out, errOut, code := runGate(t, "pipeline", "run", "greet", "-p", "who=kiln", "--wait", "--server", url)
		if code != 0 || !strings.Contains(errOut, "step shout: succeeded") || !strings.Contains(out, "State:") || !strings.Contains(out, "succeeded") ||
			!strings.Contains(out, "who=kiln") {
			t.Fatalf("run --wait: %d\n%s\n%s", code, out, errOut)
		}
		out, _, _ = runGate(t, "pipeline", "runs", "greet", "--server", url, "-o", "json")
		var list api.RunList
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Runs) != 1 {
			t.Fatalf("runs: %v %s", err, out)
		}
		id := list.Runs[0].ID
		run := pipelineRunOf(t, url, id)
		if s := stepOf(run, "hello"); s == nil || s.Outputs["who"] != "kiln" {
			t.Fatalf("the parameter did not reach the step: %+v", run.Steps)
		}
		if out, _, code = runGate(t, "pipeline", "logs", id, "shout", "--server", url); code != 0 || out != "HELLO kiln\n" {
			t.Fatalf("logs: %d %q", code, out)
		}
		if out, _, code = runGate(t, "pipeline", "logs", id, "hello", "--follow", "--server", url); code != 0 || out != "hello kiln\n" {
			t.Fatalf("logs --follow of an ended step: %d %q", code, out)
		}
		out, _, code = runGate(t, "pipeline", "status", id, "--server", url)
		for _, want := range []string{"STEP", "STATE", "ATTEMPT", "CACHED", "DURATION", "hello", "shout", "Cause:", "manual, by tester"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("status lacks %q: %d\n%s", want, code, out)
			}
		}
		// The same run again hits the cache.
		out, errOut, code = runGate(t, "pipeline", "run", "greet", "-p", "who=kiln", "--wait", "--server", url)
		if code != 0 || !strings.Contains(out, "yes (run "+id+")") {
			t.Fatalf("cached run: %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("follow", func(t *testing.T) {
		out, errOut, code := runGate(t, "pipeline", "run", "greet", "-p", "who=follow", "--follow", "--no-cache", "--server", url)
		// Each step's lines come whole, with its name; the steps' streams
		// interleave as they come.
		if code != 0 || !strings.Contains(out, "hello | hello follow\n") || !strings.Contains(out, "shout | HELLO follow\n") {
			t.Fatalf("run --follow: %d\n%s\n%s", code, out, errOut)
		}
		if !strings.Contains(out, "Run:") || strings.Contains(out, "cached") {
			t.Fatalf("run --follow --no-cache status: %s", out)
		}
	})

	var failed string
	t.Run("run wait fails", func(t *testing.T) {
		out, errOut, code := runGate(t, "pipeline", "run", "flaky", "--wait", "--server", url)
		if code != pipelineExitFailed || !strings.Contains(errOut, "failed") || !strings.Contains(out, "check") {
			t.Fatalf("run --wait of a failing pipeline: %d\n%s\n%s", code, out, errOut)
		}
		var list api.RunList
		out, _, _ = runGate(t, "pipeline", "runs", "--state", "failed", "--server", url, "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Runs) != 1 || list.Runs[0].Pipeline != "flaky" {
			t.Fatalf("runs --state failed: %v %s", err, out)
		}
		failed = list.Runs[0].ID
		run := pipelineRunOf(t, url, failed)
		if s := stepOf(run, "check"); s == nil || s.State != pipeline.StateFailed || s.ExitCode != 1 {
			t.Fatalf("check: %+v", s)
		}
		if out, _, _ = runGate(t, "pipeline", "logs", failed, "check", "--server", url); out != "checking yes\n" {
			t.Fatalf("logs of the failed step: %q", out)
		}
	})

	t.Run("resume", func(t *testing.T) {
		if failed == "" {
			t.Skip("no failed run")
		}
		out, errOut, code := runGate(t, "pipeline", "resume", failed, "-p", "fail=no", "--wait", "--server", url)
		if code != 0 || !strings.Contains(out, "resume of "+failed) {
			t.Fatalf("resume: %d\n%s\n%s", code, out, errOut)
		}
		out, _, _ = runGate(t, "pipeline", "runs", "flaky", "--server", url, "-o", "json")
		var list api.RunList
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Runs) != 2 {
			t.Fatalf("runs: %v %s", err, out)
		}
		run := pipelineRunOf(t, url, list.Runs[0].ID)
		if run.ResumedFrom != failed || stepOf(run, "first").State != pipeline.StateCached || stepOf(run, "check").State != pipeline.StateSucceeded {
			t.Fatalf("resumed run: %+v", run)
		}
		if out, _, _ = runGate(t, "pipeline", "logs", run.ID, "check", "--server", url); out != "checking no\n" {
			t.Fatalf("logs of the resumed step: %q", out)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		id := startPipeline(t, url, "slow")
		waitStep(t, url, id, "nap", pipeline.StateRunning)
		type result struct {
			out  string
			code int
		}
		followed := make(chan result, 1)
		go func() {
			out, _, code := runGate(t, "pipeline", "logs", id, "nap", "--follow", "--server", url)
			followed <- result{out, code}
		}()
		// The log is written before the step ends.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if out, _, _ := runGate(t, "pipeline", "logs", id, "nap", "--server", url); out == "napping\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no log from the running step")
			}
			time.Sleep(50 * time.Millisecond)
		}
		start := time.Now()
		out, errOut, code := runGate(t, "pipeline", "cancel", id, "--reason", "test", "--server", url)
		if code != 0 || !strings.Contains(out, "run "+id) {
			t.Fatalf("cancel: %d %s %s", code, out, errOut)
		}
		run := waitStep(t, url, id, "nap", pipeline.StateCancelled, pipeline.StateFailed)
		if time.Since(start) > 20*time.Second {
			t.Errorf("the step took %s to stop", time.Since(start))
		}
		deadline = time.Now().Add(20 * time.Second)
		for !pipeline.Terminal(run.State) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			run = pipelineRunOf(t, url, id)
		}
		if run.State != pipeline.StateCancelled {
			t.Fatalf("cancelled run: %s", run.State)
		}
		select {
		case r := <-followed:
			if r.code != 0 || r.out != "napping\n" {
				t.Fatalf("logs --follow: %d %q", r.code, r.out)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("logs --follow did not end with the run")
		}
		if out, _, _ = runGate(t, "pipeline", "status", id, "--server", url); !strings.Contains(out, "cancelled") {
			t.Fatalf("status: %s", out)
		}
	})

	t.Run("triggers", func(t *testing.T) {
		out, errOut, code := runGate(t, "pipeline", "triggers", "greet", "--server", url)
		if code != 0 || !strings.Contains(out, "yearly") || !strings.Contains(out, "schedule") {
			t.Fatalf("triggers: %d %s %s", code, out, errOut)
		}
		out, _, code = runGate(t, "pipeline", "triggers", "greet", "--server", url, "-o", "json")
		var states []map[string]any
		if err := json.Unmarshal([]byte(out), &states); err != nil || code != 0 || len(states) != 1 || states[0]["name"] != "yearly" {
			t.Fatalf("triggers json: %d %v %s", code, err, out)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			code int
			err  string
		}{
			{"unknown pipeline", []string{"pipeline", "run", "nope"}, 1, "nope"},
			{"unknown pipeline, waiting", []string{"pipeline", "run", "nope", "--wait"}, pipelineExitError, "nope"},
			{"parameter without =", []string{"pipeline", "run", "greet", "-p", "who"}, 1, `invalid parameter "who": want -p NAME=VALUE`},
			{"parameter without a name", []string{"pipeline", "run", "greet", "-p", "=x", "--wait"}, pipelineExitError, "want -p NAME=VALUE"},
			{"parameter twice", []string{"pipeline", "run", "greet", "-p", "who=a", "-p", "who=b"}, 1, "given twice"},
			{"undeclared parameter", []string{"pipeline", "run", "greet", "-p", "whom=a"}, 1, "whom"},
			{"runs of an unknown pipeline", []string{"pipeline", "runs", "nope"}, 1, "nope"},
			{"unknown run", []string{"pipeline", "status", "01NOPE"}, 1, "01NOPE"},
			{"logs of an unknown step", []string{"pipeline", "logs", failed, "nope"}, 1, "no step 'nope'"},
			{"bad output", []string{"pipeline", "list", "-o", "xml"}, 1, "unknown --output"},
			{"missing name", []string{"pipeline", "get"}, 1, "accepts 1 arg"},
			{"unknown resource", []string{"get", "pipelinez"}, 1, "pipelines"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, errOut, code := runGate(t, append(tt.args, "--server", url)...)
				if code != tt.code || !strings.Contains(errOut, tt.err) {
					t.Fatalf("exit %d, want %d; stderr lacks %q:\n%s\n%s", code, tt.code, tt.err, out, errOut)
				}
			})
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out, errOut, code := runGate(t, "pipeline", "delete", "slow", "--server", url); code != 0 || out != "pipeline/slow deleted\n" {
			t.Fatalf("delete: %d %s %s", code, out, errOut)
		}
		if _, errOut, code := runGate(t, "pipeline", "get", "slow", "--server", url); code == 0 || !strings.Contains(errOut, "slow") {
			t.Fatalf("get after delete: %d %s", code, errOut)
		}
		if out, errOut, code := runGate(t, "delete", "pipeline", "greet", "--server", url); code != 0 || !strings.Contains(out, "pipeline/greet deleted") {
			t.Fatalf("kiln delete pipeline: %d %s %s", code, out, errOut)
		}
		if out, errOut, code := runGate(t, "delete", "-f", file, "--server", url, "--ignore-not-found"); code != 0 ||
			!strings.Contains(out, "pipeline/flaky deleted") || !strings.Contains(out, "pipeline/greet not found") {
			t.Fatalf("kiln delete -f: %d %s %s", code, out, errOut)
		}
		if out, _, _ := runGate(t, "pipeline", "list", "--server", url, "-o", "json"); strings.TrimSpace(out) != "[]" {
			t.Fatalf("list after delete: %s", out)
		}
	})
}

func TestPipelineParams(t *testing.T) {
	tests := []struct {
		in   []string
		want map[string]string
		err  string
	}{
		{nil, nil, ""},
		{[]string{"a=1", "b=x=y", "c="}, map[string]string{"a": "1", "b": "x=y", "c": ""}, ""},
		{[]string{"a"}, nil, "want -p NAME=VALUE"},
		{[]string{" =1"}, nil, "want -p NAME=VALUE"},
		{[]string{"a=1", "a=2"}, nil, "given twice"},
	}
	for _, tt := range tests {
		got, err := parsePipelineParams(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("%v: %v %v", tt.in, got, err)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%v: %s = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

func TestPipelinePrefixWriter(t *testing.T) {
	var out, notes strings.Builder
	p := &prefixWriter{w: &out, notes: &notes, width: 5, partial: map[string][]byte{}}
	a, b := p.step("a"), p.step("bb")
	io.WriteString(a, "one\ntw")
	io.WriteString(b, "x\r\n")
	io.WriteString(a, "o\nthree")
	p.note("step a: running")
	p.flush()
	want := "a     | one\nbb    | x\na     | two\na     | three\n"
	if out.String() != want || notes.String() != "step a: running\n" {
		t.Fatalf("got %q and %q", out.String(), notes.String())
	}
}
