package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/server"
	"github.com/kiln-ml/kiln/tune"
)

// TestTuneObjectiveHelper is the trials' program: the test binary run
// again with KILN_TUNE_HELPER=1 (so no Python or curl is needed). It logs
// the objective "loss" to the trial's run with runs/log-metric, as
// mlflow.log_metric does. Modes (KILN_TUNE_MODE):
//
//	plain: loss = (x-0.3)² (+0.5 when c is "b") at step 0
//	curve: loss at step s is 1/(s+1) for 5 steps, 100ms apart; the trial
//	       numbered KILN_TUNE_BAD logs 100 at each of 10 steps, 150ms apart
func TestTuneObjectiveHelper(t *testing.T) {
	if os.Getenv("KILN_TUNE_HELPER") != "1" {
		return
	}
	uri, run := os.Getenv("MLFLOW_TRACKING_URI"), os.Getenv("MLFLOW_RUN_ID")
	logMetric := func(v float64, step int) {
		body, _ := json.Marshal(map[string]any{"run_id": run, "key": "loss", "value": v, "timestamp": time.Now().UnixMilli(), "step": step})
		resp, err := http.Post(uri+"/api/2.0/mlflow/runs/log-metric", "application/json", bytes.NewReader(body))
		if err != nil {
			fmt.Fprintln(os.Stderr, "log-metric:", err)
			os.Exit(3)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Fprintln(os.Stderr, "log-metric: HTTP", resp.StatusCode)
			os.Exit(3)
		}
	}
	x, _ := strconv.ParseFloat(os.Getenv("KILN_PARAM_X"), 64)
	switch os.Getenv("KILN_TUNE_MODE") {
	case "plain":
		v := (x - 0.3) * (x - 0.3)
		if os.Getenv("KILN_PARAM_C") == "b" {
			v += 0.5
		}
		logMetric(v, 0)
	case "curve":
		if os.Getenv("KILN_TRIAL") == os.Getenv("KILN_TUNE_BAD") {
			for s := 0; s < 10; s++ {
				logMetric(100, s)
				time.Sleep(150 * time.Millisecond)
			}
		} else {
			for s := 0; s < 5; s++ {
				logMetric(1/float64(s+1), s)
				time.Sleep(100 * time.Millisecond)
			}
		}
	case "fail":
		fmt.Println("objective broke")
		os.Exit(4)
	}
	os.Exit(0)
}

// tuneServer starts an in-process Kiln server on a loopback listener and
// returns its URL.
func tuneServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Server.Addr = ln.Addr().String()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = ""
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL
}

// writeStudy writes a study document for the helper objective.
func writeStudy(t *testing.T, name, mode, extra string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`apiVersion: kiln.dev/v1
kind: Study
metadata: {name: %s}
spec:
  objective: {metric: loss}
  command: [%q, "-test.run=^TestTuneObjectiveHelper$"]
  env: {KILN_TUNE_HELPER: "1", KILN_TUNE_MODE: %s, KILN_TUNE_BAD: "3"}
  parameters:
    - {name: x, type: float, low: 0, high: 1}
%s`, name, exe, mode, extra)
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// getRun reads a run from the server.
func getRun(t *testing.T, base, id string) *tune.RunInfo {
	t.Helper()
	resp, err := http.Get(base + "/api/2.0/mlflow/runs/get?run_id=" + url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Run tune.RunInfo `json:"run"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("runs/get %s: %d %v", id, resp.StatusCode, err)
	}
	return &got.Run
}

func runTag(r *tune.RunInfo, k string) string {
	for _, kv := range r.Data.Tags {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

func TestTuneRunAndShow(t *testing.T) {
	base := tuneServer(t)
	file := writeStudy(t, "quad", "plain", `    - {name: c, type: categorical, choices: [a, b]}
  sampler: {type: random, seed: 5}
  trials: 6
  parallelism: 2
`)
	out, errOut, code := runGate(t, "tune", "run", "-f", file, "--server", base, "--poll", "20ms", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var res tune.StudyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Trials) != 6 || res.Counts[tune.Completed] != 6 || res.Best == nil || res.Seed != 5 {
		t.Fatalf("result: %d trials, counts %v, best %v, seed %d", len(res.Trials), res.Counts, res.Best, res.Seed)
	}
	minV, minN := math.Inf(1), -1
	for _, tr := range res.Trials {
		x, _ := strconv.ParseFloat(tr.Params.String("x"), 64)
		want := (x - 0.3) * (x - 0.3)
		if tr.Params.String("c") == "b" {
			want += 0.5
		}
		if tr.Value == nil || math.Abs(*tr.Value-want) > 1e-9 {
			t.Errorf("trial %d: value %v, want %v for %v", tr.Number, tr.Value, want, tr.Params)
			continue
		}
		if *tr.Value < minV {
			minV, minN = *tr.Value, tr.Number
		}
		// Each trial is a finished child run of the parent.
		r := getRun(t, base, tr.RunID)
		if runTag(r, tune.TagParentRun) != res.ParentRunID || r.Info.Status != "FINISHED" || runTag(r, tune.TagTrialState) != "completed" {
			t.Errorf("trial %d run: parent %q (want %q), status %s, state %q", tr.Number, runTag(r, tune.TagParentRun), res.ParentRunID, r.Info.Status, runTag(r, tune.TagTrialState))
		}
	}
	if res.Best.Number != minN || *res.Best.Value != minV {
		t.Errorf("best trial %d (%v), want the minimum, trial %d (%v)", res.Best.Number, *res.Best.Value, minN, minV)
	}
	parent := getRun(t, base, res.ParentRunID)
	if runTag(parent, tune.TagBestRun) != res.Best.RunID || runTag(parent, tune.TagStudy) != "quad" || parent.Info.Status != "FINISHED" {
		t.Errorf("parent run: best_run %q (want %q), study %q, status %s", runTag(parent, tune.TagBestRun), res.Best.RunID, runTag(parent, tune.TagStudy), parent.Info.Status)
	}
	for _, want := range []string{"study quad: 6 trials, 2 at a time, random sampler", "trial 0 completed", "best "} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}

	// show, by parent run id and by study name, in each output.
	for _, ref := range []string{res.ParentRunID, "quad"} {
		out, errOut, code := runGate(t, "tune", "show", ref, "--server", base, "-o", "json")
		var shown tune.StudyResult
		if code != 0 || json.Unmarshal([]byte(out), &shown) != nil {
			t.Fatalf("show %s: exit %d\n%s\n%s", ref, code, out, errOut)
		}
		if shown.ParentRunID != res.ParentRunID || len(shown.Trials) != 6 || shown.Best == nil || shown.Best.Number != minN || *shown.Best.Value != minV {
			t.Errorf("show %s: parent %s, %d trials, best %+v", ref, shown.ParentRunID, len(shown.Trials), shown.Best)
		}
	}
	out, _, code = runGate(t, "tune", "show", "quad", "--server", base, "-o", "yaml")
	var y struct {
		Study string `yaml:"study"`
		Best  struct {
			Number int     `yaml:"number"`
			Value  float64 `yaml:"value"`
		} `yaml:"best"`
		Trials []map[string]any `yaml:"trials"`
	}
	if err := yaml.Unmarshal([]byte(out), &y); code != 0 || err != nil || y.Study != "quad" || y.Best.Number != minN || len(y.Trials) != 6 {
		t.Errorf("show -o yaml: exit %d, %v, %+v\n%s", code, err, y, out)
	}
	out, _, code = runGate(t, "tune", "show", "quad", "--server", base)
	bestRow := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, strconv.Itoa(minN)+" *") && strings.Contains(line, "completed") {
			bestRow = true
		}
	}
	if code != 0 || !bestRow || !strings.Contains(out, "TRIAL") || !strings.Contains(strings.Join(strings.Fields(out), " "), fmt.Sprintf("best trial %d: loss = ", minN)) {
		t.Errorf("show table: exit %d\n%s", code, out)
	}

	// kiln tune -f, with the flags overriding the document.
	out, errOut, code = runGate(t, "tune", "-f", file, "--server", base, "--trials", "2", "--parallel", "1", "--poll", "20ms", "-o", "json")
	var again tune.StudyResult
	if code != 0 || json.Unmarshal([]byte(out), &again) != nil || len(again.Trials) != 2 || again.ParentRunID == res.ParentRunID {
		t.Fatalf("tune -f: exit %d, %d trials\n%s\n%s", code, len(again.Trials), out, errOut)
	}
	// The name now shows the latest run.
	out, _, _ = runGate(t, "tune", "show", "quad", "--server", base, "-o", "json")
	var latest tune.StudyResult
	if json.Unmarshal([]byte(out), &latest) != nil || latest.ParentRunID != again.ParentRunID {
		t.Errorf("show quad after a second run: parent %s, want %s", latest.ParentRunID, again.ParentRunID)
	}
}

func TestTunePruning(t *testing.T) {
	base := tuneServer(t)
	for _, c := range []struct{ name, pruner string }{
		{"median", "{type: median, n_startup_trials: 2}"},
		{"asha", "{type: asha, min_resource: 1, reduction_factor: 3}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeStudy(t, "prune-"+c.name, "curve", "  sampler: {type: random, seed: 1}\n  pruner: "+c.pruner+"\n  trials: 5\n")
			out, errOut, code := runGate(t, "tune", "run", "-f", file, "--server", base, "--poll", "20ms", "-o", "json")
			var res tune.StudyResult
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Trials) != 5 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			for _, tr := range res.Trials {
				want := tune.Completed
				if tr.Number == 3 {
					want = tune.Pruned
				}
				if tr.State != want {
					t.Errorf("trial %d: %s, want %s (%v)", tr.Number, tr.State, want, tr.Intermediate)
				}
				r := getRun(t, base, tr.RunID)
				if wantStatus := map[tune.State]string{tune.Completed: "FINISHED", tune.Pruned: "KILLED"}[want]; r.Info.Status != wantStatus || runTag(r, tune.TagTrialState) != string(want) {
					t.Errorf("trial %d run: status %s, state tag %q", tr.Number, r.Info.Status, runTag(r, tune.TagTrialState))
				}
			}
			bad := res.Trials[3]
			if last, ok := bad.LastStep(); ok && last >= 9 {
				t.Errorf("the bad trial ran to its last step %d before it was pruned", last)
			}
			if res.Best == nil || *res.Best.Value != 0.2 { // 1/(4+1), the good trials' last value
				t.Errorf("best %+v", res.Best)
			}
			if !strings.Contains(errOut, "trial 3 pruned") {
				t.Errorf("progress lacks the pruned trial:\n%s", errOut)
			}
		})
	}
}

func TestTuneErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const head = "apiVersion: kiln.dev/v1\nkind: Study\nmetadata: {name: s}\nspec:\n"
	good := write("good.yaml", head+"  objective: {metric: loss}\n  command: [true]\n  parameters: [{name: x, type: float, low: 0, high: 1}]\n  trials: 2\n")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown field", []string{"-f", write("a.yaml", head+"  objective: {metric: loss}\n  command: [true]\n  parameters: []\n  trials: 2\n  sampler: {type: tpe, bogus: 1}\n")}, []string{"field bogus not found"}},
		{"missing metric and command", []string{"-f", write("b.yaml", head+"  parameters: [{name: x, type: float, low: 0, high: 1}]\n  trials: 2\n")}, []string{"spec.objective.metric", "spec.command"}},
		{"bad range and template", []string{"-f", write("c.yaml", head+"  objective: {metric: loss}\n  command: [echo, '{{params.y}}']\n  parameters: [{name: x, type: float, low: 2, high: 1}]\n  trials: 2\n")}, []string{"spec.parameters[0]", "spec.command[1]", "{{params.y}} names no parameter"}},
		{"bad sampler and pruner", []string{"-f", write("d.yaml", head+"  objective: {metric: loss}\n  command: [true]\n  parameters: [{name: x, type: float, low: 0, high: 1}]\n  trials: 2\n  sampler: {type: cmaes}\n  pruner: {type: hyperband}\n")}, []string{"spec.sampler.type", "spec.pruner.type"}},
		{"parallel flag", []string{"-f", good, "--parallel", "0"}, []string{"spec.parallelism", "with the flags"}},
		{"trials flag", []string{"-f", good, "--trials", "-1"}, []string{"spec.trials"}},
		{"no such file", []string{"-f", filepath.Join(dir, "none.yaml")}, []string{"reading the study", "none.yaml"}},
		{"bad output", []string{"-f", good, "-o", "xml"}, []string{"unknown --output"}},
		{"no server", []string{"-f", good, "--server", "http://127.0.0.1:1"}, []string{"tracking server", "127.0.0.1:1"}},
		{"not a tracking URL", []string{"-f", good, "--tracking-uri", "file:///tmp/mlruns"}, []string{"not an http(s) tracking server URL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runGate(t, append([]string{"tune", "run"}, c.args...)...)
			if code == 0 {
				t.Fatalf("exit 0\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	if _, errOut, code := runGate(t, "tune", "run"); code == 0 || !strings.Contains(errOut, `"file" not set`) {
		t.Errorf("run without -f: exit %d, %s", code, errOut)
	}
	if out, _, code := runGate(t, "tune"); code != 0 || !strings.Contains(out, "kind: Study") {
		t.Errorf("tune without -f prints help with an example: exit %d\n%s", code, out)
	}

	base := tuneServer(t)
	if _, errOut, code := runGate(t, "tune", "show", "nothing-here", "--server", base); code == 0 || !strings.Contains(errOut, "no experiment \"studies/nothing-here\"") {
		t.Errorf("show of an unknown study: exit %d, %s", code, errOut)
	}
	// A study whose every trial fails exits non-zero and says so.
	fail := writeStudy(t, "broken", "fail", "  trials: 2\n")
	_, errOut, code := runGate(t, "tune", "run", "-f", fail, "--server", base, "--poll", "20ms")
	if code == 0 || !strings.Contains(errOut, "no trial of study broken completed") || !strings.Contains(errOut, "objective broke") {
		t.Errorf("all trials failing: exit %d\n%s", code, errOut)
	}
}
