package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/kube"
)

// stepExec runs kiln step exec with task in $KILN_TASK against server and
// returns its exit code, standard output and the termination message.
func stepExec(t *testing.T, server string, task *pipeline.Task, raw string) (int, string, string) {
	t.Helper()
	if task != nil {
		s, err := kube.EncodeTask(task)
		if err != nil {
			t.Fatal(err)
		}
		raw = s
	}
	t.Setenv(kube.TaskEnv, raw)
	term := filepath.Join(t.TempDir(), "termination-log")
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"step", "exec", "--server", server, "--dir", t.TempDir(), "--termination-log", term})
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		code, _ = exitCode(err)
	}
	msg, err := os.ReadFile(term)
	if err != nil {
		t.Fatalf("no termination message: %v (stderr %s)", err, errOut.String())
	}
	if len(msg) > kube.MaxMessage {
		t.Errorf("the termination message has %d bytes, more than Kubernetes keeps", len(msg))
	}
	return code, out.String(), string(msg)
}

func stepTask(name string, script string) *pipeline.Task {
	return &pipeline.Task{Pipeline: "p", RunID: "01JSTEPEXECTESTRUN00000000", Step: name, Attempt: 1,
		Command: []string{"sh", "-c", script}, Env: map[string]string{"GREETING": "hello"},
		OutputPrefix: "mlflow-artifacts:/pipelines/p/01JSTEPEXECTESTRUN00000000/" + name + "/1/outputs"}
}

func TestStepExec(t *testing.T) {
	k := newTestServer(t)
	ctx := context.Background()
	c, err := client.New(k.server, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stager()
	in := filepath.Join(t.TempDir(), "data.txt")
	os.WriteFile(in, []byte("rows\n"), 0o644)
	if err := st.Store(ctx, in, "mlflow-artifacts:/inputs/data.txt"); err != nil {
		t.Fatal(err)
	}

	t.Run("success", func(t *testing.T) {
		task := stepTask("train", `echo "$GREETING from $KILN_STEP"; test -z "$KILN_TASK" || exit 9
cp "$KILN_INPUT_DATA" "$KILN_OUTPUTS/model"; echo 0.93 > "$KILN_OUTPUTS/auc"; printf '%s' "$KILN_INPUT_LR" > "$KILN_OUTPUTS/lr"`)
		task.Inputs = []pipeline.TaskInput{{Name: "data", URI: "mlflow-artifacts:/inputs/data.txt"}, {Name: "lr", Value: "0.1"}}
		task.Outputs = []pipeline.Output{{Name: "model"}, {Name: "auc", Type: pipeline.OutputMetric}, {Name: "lr", Type: pipeline.OutputParameter}}
		code, stdout, msg := stepExec(t, k.server, task, "")
		if code != 0 {
			t.Fatalf("exit %d, output %q, message %q", code, stdout, msg)
		}
		if !strings.Contains(stdout, "hello from train\n") {
			t.Errorf("the step's output %q", stdout)
		}
		o, uri, ok := kube.DecodeOutcome(msg)
		if !ok || uri != "" || o.ExitCode != 0 || o.Error != "" || o.Outputs["auc"] != "0.93" || o.Outputs["lr"] != "0.1" || o.Handle != "" {
			t.Errorf("outcome %+v from %q", o, msg)
		}
		got := filepath.Join(t.TempDir(), "model")
		if err := st.Fetch(ctx, task.OutputPrefix+"/model", got); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(got); string(data) != "rows\n" {
			t.Errorf("stored model %q", data)
		}
	})

	for _, tc := range []struct {
		name   string
		task   *pipeline.Task
		raw    string
		code   int
		outErr string
		outEC  int
	}{
		{name: "exit code", task: stepTask("fail", "echo boom; exit 3"), code: 3, outErr: "exit status 3", outEC: 3},
		{name: "missing input", task: func() *pipeline.Task {
			t := stepTask("in", "true")
			t.Inputs = []pipeline.TaskInput{{Name: "data", URI: "mlflow-artifacts:/inputs/none.txt"}}
			return t
		}(), code: 1, outErr: "fetching input data", outEC: -1},
		{name: "missing output", task: func() *pipeline.Task {
			t := stepTask("out", "true")
			t.Outputs = []pipeline.Output{{Name: "auc", Type: pipeline.OutputMetric}}
			return t
		}(), code: 1, outErr: "output auc ($KILN_OUTPUTS/auc) was not written", outEC: 1},
		{name: "bad task", raw: `{"step":`, code: 1, outErr: "is not a kiln task", outEC: -1},
		{name: "no task", raw: "", code: 1, outErr: "no task", outEC: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, msg := stepExec(t, k.server, tc.task, tc.raw)
			o, _, ok := kube.DecodeOutcome(msg)
			if code != tc.code || !ok || o.ExitCode != tc.outEC || !strings.Contains(o.Error, tc.outErr) {
				t.Errorf("exit %d, outcome %+v (%q); want exit %d, outcome code %d with %q", code, o, msg, tc.code, tc.outEC, tc.outErr)
			}
		})
	}

	t.Run("large outcome", func(t *testing.T) {
		task := stepTask("big", `head -c 10000 /dev/zero | tr '\0' x > "$KILN_OUTPUTS/notes"`)
		task.Outputs = []pipeline.Output{{Name: "notes", Type: pipeline.OutputParameter}}
		code, _, msg := stepExec(t, k.server, task, "")
		_, uri, ok := kube.DecodeOutcome(msg)
		if code != 0 || !ok || uri != kube.OutcomeURI(task) {
			t.Fatalf("exit %d, message %q", code, msg)
		}
		p := filepath.Join(t.TempDir(), "outcome.json")
		if err := st.Fetch(ctx, uri, p); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		o, _, ok := kube.DecodeOutcome(string(data))
		if !ok || len(o.Outputs["notes"]) != 10000 {
			t.Errorf("stored outcome: %d bytes of notes", len(o.Outputs["notes"]))
		}
	})
}

func TestStepInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin")
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"step", "install", dir})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "kiln"))
	if err != nil || fi.Mode()&0o111 == 0 || fi.Size() == 0 {
		t.Fatalf("installed binary: %v, %v", fi, err)
	}
	self, _ := os.Executable()
	if si, err := os.Stat(self); err == nil && si.Size() != fi.Size() {
		t.Errorf("copied %d bytes of %d", fi.Size(), si.Size())
	}
}
