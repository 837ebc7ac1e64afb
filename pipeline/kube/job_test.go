package kube

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/kiln-ml/kiln/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden manifests in testdata/")

func testTask() *pipeline.Task {
	return &pipeline.Task{
		Pipeline: "churn", RunID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Step: "train", Attempt: 2,
		TrackingRunID: "0123456789abcdef0123456789abcdef",
		Image:         "python:3.12-slim",
		Command:       []string{"python", "train.py", "--lr", "0.1"},
		Env: map[string]string{"KILN_URL": "http://kiln.local:5000", "MLFLOW_TRACKING_URI": "http://kiln.local:5000",
			"MLFLOW_RUN_ID": "0123456789abcdef0123456789abcdef", "LR": "0.1"},
		WorkingDir:   "/app",
		Inputs:       []pipeline.TaskInput{{Name: "data", URI: "dataset:churn@3"}, {Name: "lr", Value: "0.1"}},
		Outputs:      []pipeline.Output{{Name: "model"}, {Name: "auc", Type: pipeline.OutputMetric}},
		OutputPrefix: "mlflow-artifacts:/pipelines/churn/01JABCDEFGHJKMNPQRSTVWXYZ0/train/2/outputs",
		Timeout:      90*time.Minute + 500*time.Millisecond,
		Resources:    map[string]string{"cpu": "2", "memory": "4Gi", "limits.cpu": "4", "nvidia.com/gpu": "1"},
	}
}

func newTestExecutor(t *testing.T, o Options) *Executor {
	t.Helper()
	if o.Client == nil {
		o.Client = clientset{fake.NewClientset()}
	}
	if o.KilnImage == "" {
		o.KilnImage = "ghcr.io/kiln-ml/kiln:1.0"
	}
	if o.Namespace == "" {
		o.Namespace = "ml"
	}
	if o.Poll == 0 {
		o.Poll = 5 * time.Millisecond
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestJobGolden compares the Jobs built for a few tasks with
// testdata/*.yaml (go test ./pipeline/kube -update rewrites them).
func TestJobGolden(t *testing.T) {
	minimal := &pipeline.Task{Pipeline: "etl", RunID: "01JZZZZZZZZZZZZZZZZZZZZZZZ", Step: "extract", Attempt: 1,
		Command: []string{"sh", "-c", "echo hi"}, WorkingDir: "rel/dir"}
	for _, tc := range []struct {
		name string
		o    Options
		t    *pipeline.Task
	}{
		{"full", Options{}, testTask()},
		{"defaults", Options{DefaultImage: "busybox:1.36", ServiceAccount: "kiln-steps", TokenSecret: "kiln-token",
			ServerURL: "http://kiln.kiln.svc:5000", TTLAfterFinished: 10 * time.Minute, KilnCommand: "/usr/local/bin/kiln"}, minimal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestExecutor(t, tc.o)
			job, err := e.BuildJob(tc.t)
			if err != nil {
				t.Fatal(err)
			}
			got, err := yaml.Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./pipeline/kube -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the Job differs from %s (go test ./pipeline/kube -update rewrites it):\n%s", file, got)
			}
		})
	}
}

// TestJobSpec checks the fields the executor relies on, independently of
// the golden files.
func TestJobSpec(t *testing.T) {
	e := newTestExecutor(t, Options{ServerURL: "http://kiln.svc:5000"})
	task := testTask()
	job, err := e.BuildJob(task)
	if err != nil {
		t.Fatal(err)
	}
	s := job.Spec
	if job.Namespace != "ml" || job.Name != JobName(task) {
		t.Errorf("job %s/%s", job.Namespace, job.Name)
	}
	if s.BackoffLimit == nil || *s.BackoffLimit != 0 {
		t.Errorf("backoffLimit %v, want 0 (the engine retries)", s.BackoffLimit)
	}
	if s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != 5401 {
		t.Errorf("activeDeadlineSeconds %v, want 5401 (90m0.5s rounded up)", s.ActiveDeadlineSeconds)
	}
	if s.TTLSecondsAfterFinished == nil || *s.TTLSecondsAfterFinished != 3600 {
		t.Errorf("ttlSecondsAfterFinished %v", s.TTLSecondsAfterFinished)
	}
	for k, v := range map[string]string{LabelPipeline: "churn", LabelRun: task.RunID, LabelStep: "train", LabelAttempt: "2"} {
		if job.Labels[k] != v || job.Annotations[k] != v || s.Template.Labels[k] != v {
			t.Errorf("label %s: job %q, annotation %q, pod %q; want %q", k, job.Labels[k], job.Annotations[k], s.Template.Labels[k], v)
		}
	}
	if s.Template.Labels[LabelJob] != job.Name {
		t.Errorf("pod label %s = %q", LabelJob, s.Template.Labels[LabelJob])
	}
	pod := s.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("pod spec %+v", pod)
	}
	c := pod.Containers[0]
	if c.Image != "python:3.12-slim" || c.WorkingDir != "/app" || c.TerminationMessagePath != TerminationLog {
		t.Errorf("container image %q, dir %q, termination path %q", c.Image, c.WorkingDir, c.TerminationMessagePath)
	}
	if strings.Join(c.Command, " ") != "/kiln/bin/kiln step exec --dir /kiln/work --termination-log /dev/termination-log" {
		t.Errorf("command %q", c.Command)
	}
	env := map[string]string{}
	for _, v := range c.Env {
		env[v.Name] = v.Value
	}
	if env["KILN_URL"] != "http://kiln.svc:5000" || env["MLFLOW_TRACKING_URI"] != "http://kiln.svc:5000" || env["MLFLOW_REGISTRY_URI"] != "http://kiln.svc:5000" || env["LR"] != "0.1" {
		t.Errorf("env %v", env)
	}
	got, err := DecodeTask(env[TaskEnv])
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != "train" || got.Attempt != 2 || got.Timeout != task.Timeout || len(got.Env) != 0 ||
		len(got.Inputs) != 2 || got.Inputs[0].URI != "dataset:churn@3" || got.OutputPrefix != task.OutputPrefix {
		t.Errorf("KILN_TASK decodes to %+v", got)
	}
	if task.Env["KILN_URL"] != "http://kiln.local:5000" {
		t.Error("BuildJob changed the task's env")
	}
	if q := c.Resources.Limits[corev1.ResourceCPU]; q.Cmp(resource.MustParse("4")) != 0 {
		t.Errorf("cpu limit %v", q.String())
	}
	if q := c.Resources.Requests[corev1.ResourceCPU]; q.Cmp(resource.MustParse("2")) != 0 {
		t.Errorf("cpu request %v", q.String())
	}
	if q := c.Resources.Limits["nvidia.com/gpu"]; q.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("gpu limit %v", q.String())
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("a pod without a service account mounts an API token")
	}

	if _, err := e.BuildJob(&pipeline.Task{Step: "x", Command: []string{"true"}, Resources: map[string]string{"cpu": "lots"}}); err == nil {
		t.Error("a bad quantity was accepted")
	}
	if _, err := e.BuildJob(&pipeline.Task{Step: "x"}); err == nil {
		t.Error("a task without a command was accepted")
	}
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func TestJobName(t *testing.T) {
	long := strings.Repeat("a", 63)
	base := pipeline.Task{Pipeline: "p", RunID: "R1", Step: "s", Attempt: 1}
	names := map[string]string{}
	for _, tc := range []struct {
		label string
		mod   func(*pipeline.Task)
	}{
		{"base", func(*pipeline.Task) {}},
		{"attempt", func(t *pipeline.Task) { t.Attempt = 2 }},
		{"run", func(t *pipeline.Task) { t.RunID = "R2" }},
		{"step", func(t *pipeline.Task) { t.Step = "s2" }},
		{"long", func(t *pipeline.Task) { t.Pipeline, t.Step = long, long }},
		{"long attempt", func(t *pipeline.Task) { t.Pipeline, t.Step, t.Attempt = long, long+"b", 123456789 }},
		{"odd", func(t *pipeline.Task) { t.Pipeline, t.Step = "A_B", "--x--" }},
	} {
		task := base
		tc.mod(&task)
		n := JobName(&task)
		if !dnsLabel.MatchString(n) {
			t.Errorf("%s: %q is not a DNS label", tc.label, n)
		}
		if n != JobName(&task) {
			t.Errorf("%s: the name is not deterministic", tc.label)
		}
		if prev, dup := names[n]; dup {
			t.Errorf("%s and %s share the name %q", tc.label, prev, n)
		}
		names[n] = tc.label
	}
	if n := JobName(&base); !strings.HasPrefix(n, "kiln-p-s-1-") {
		t.Errorf("JobName = %q", n)
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{"churn": "churn", "a/b": "a_b", "-x-": "x", strings.Repeat("z", 70): strings.Repeat("z", 63)} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}
