package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kiln-ml/kiln/pipeline"
)

// recLog is the attempt's log; it records the handle like the engine's.
type recLog struct {
	mu     sync.Mutex
	b      strings.Builder
	handle string
}

func (l *recLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *recLog) SetHandle(h string) {
	l.mu.Lock()
	l.handle = h
	l.mu.Unlock()
}

func (l *recLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cluster plays the Job controller and the kubelet on a fake clientset.
type cluster struct {
	t *testing.T
	c *fake.Clientset
}

func newCluster(t *testing.T, logs string) *cluster {
	c := fake.NewClientset()
	c.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte(logs)}, nil
	})
	return &cluster{t: t, c: c}
}

// job waits for the executor to create a Job.
func (k *cluster) job(ns string) *batchv1.Job {
	k.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		jobs, err := k.c.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			k.t.Fatal(err)
		}
		if len(jobs.Items) > 0 {
			return &jobs.Items[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
	k.t.Fatal("no Job was created")
	return nil
}

// pod creates (or updates) the Job's pod with a step container in state.
func (k *cluster) pod(job *batchv1.Job, mod func(*corev1.Pod)) {
	k.t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-abcde", Namespace: job.Namespace, Labels: job.Spec.Template.Labels},
		Spec:       job.Spec.Template.Spec,
	}
	mod(p)
	pods := k.c.CoreV1().Pods(job.Namespace)
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = pods.Update(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			k.t.Fatal(err)
		}
	} else if err != nil {
		k.t.Fatal(err)
	}
}

// finish sets the Job's terminal condition.
func (k *cluster) finish(job *batchv1.Job, typ batchv1.JobConditionType, reason, msg string) {
	k.t.Helper()
	j, err := k.c.BatchV1().Jobs(job.Namespace).Get(context.Background(), job.Name, metav1.GetOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg})
	if _, err := k.c.BatchV1().Jobs(job.Namespace).UpdateStatus(context.Background(), j, metav1.UpdateOptions{}); err != nil {
		k.t.Fatal(err)
	}
}

func terminated(code int32, reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodSucceeded
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: StepContainer,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}}
	}
}

func running(p *corev1.Pod) {
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: StepContainer,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
}

type result struct {
	out pipeline.Outcome
	err error
}

func runAsync(ctx context.Context, e *Executor, task *pipeline.Task, log *recLog) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := e.Run(ctx, task, log)
		ch <- result{out, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the executor did not return")
		return result{}
	}
}

func TestRunSuccess(t *testing.T) {
	k := newCluster(t, "epoch 1\nepoch 2 auc=0.91")
	e := newTestExecutor(t, Options{Client: clientset{k.c}})
	task := testTask()
	log := &recLog{}
	ch := runAsync(context.Background(), e, task, log)
	job := k.job("ml")
	k.pod(job, running)
	time.Sleep(20 * time.Millisecond)
	msg, full := EncodeOutcome(pipeline.Outcome{Outputs: map[string]string{"auc": "0.91"}}, "")
	if !full {
		t.Fatal("a small outcome did not fit")
	}
	k.pod(job, terminated(0, "Completed", msg))
	k.finish(job, batchv1.JobComplete, "", "")
	r := await(t, ch)
	if r.err != nil || r.out.ExitCode != 0 || r.out.Error != "" || r.out.Outputs["auc"] != "0.91" {
		t.Fatalf("Run = %+v, %v", r.out, r.err)
	}
	want := "ml/" + JobName(task)
	if r.out.Handle != want || log.handle != want {
		t.Errorf("handle %q, recorded %q; want %q", r.out.Handle, log.handle, want)
	}
	if got := log.String(); !strings.Contains(got, "epoch 1\nepoch 2 auc=0.91\n") {
		t.Errorf("the pod's log did not reach the attempt's log: %q", got)
	}
	// The log is streamed once, from the step container, following.
	n := 0
	for _, a := range k.c.Actions() {
		if a.GetSubresource() == "log" {
			n++
			if o := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions); o.Container != StepContainer || !o.Follow {
				t.Errorf("log options %+v", o)
			}
		}
	}
	if n != 1 {
		t.Errorf("the log was read %d times", n)
	}
	// A finished Job is left to its TTL.
	if _, err := k.c.BatchV1().Jobs("ml").Get(context.Background(), job.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the finished Job is gone: %v", err)
	}
}

// TestRunFailures maps the ways a Job ends badly to Outcomes.
func TestRunFailures(t *testing.T) {
	failed := func(code int32, outcome *pipeline.Outcome, reason, msg string) func(*corev1.Pod) {
		if outcome != nil {
			msg, _ = EncodeOutcome(*outcome, "")
		}
		return terminated(code, reason, msg)
	}
	for _, tc := range []struct {
		name      string
		pod       func(*corev1.Pod)
		cond      batchv1.JobConditionType // "" for a pod that never starts
		reason    string
		code      int
		errHas    string
		deleted   bool
		pullGrace time.Duration
	}{
		{name: "exit code from the outcome", pod: failed(3, &pipeline.Outcome{ExitCode: 3, Error: "exit status 3"}, "Error", ""),
			cond: batchv1.JobFailed, reason: "BackoffLimitExceeded", code: 3, errHas: "exit status 3"},
		{name: "staging failed", pod: failed(1, &pipeline.Outcome{ExitCode: -1, Error: "fetching input data (dataset:x@1): not found"}, "Error", ""),
			cond: batchv1.JobFailed, reason: "BackoffLimitExceeded", code: -1, errHas: "fetching input data"},
		{name: "oom", pod: failed(137, nil, "OOMKilled", ""), cond: batchv1.JobFailed, reason: "BackoffLimitExceeded",
			code: 137, errHas: "OOMKilled at the 4Gi memory limit"},
		{name: "deadline", pod: running, cond: batchv1.JobFailed, reason: "DeadlineExceeded", code: 1,
			errHas: "timed out after 1h30m0.5s (the Job's activeDeadlineSeconds)"},
		{name: "no outcome, log tail", pod: failed(127, nil, "Error", "line a\nexec: python: not found"), cond: batchv1.JobFailed,
			reason: "BackoffLimitExceeded", code: 127, errHas: "exit status 127: line a | exec: python: not found"},
		{name: "evicted", pod: func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
		}, cond: batchv1.JobFailed, reason: "BackoffLimitExceeded", code: -1, errHas: "pod evicted: The node was low"},
		{name: "init failed", pod: func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: InitContainer, State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 127, Message: "exec: kiln: not found"}}}}
		}, cond: batchv1.JobFailed, reason: "BackoffLimitExceeded", code: -1, errHas: "copying kiln into the pod failed"},
		{name: "invalid image", pod: func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: StepContainer, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName", Message: "bad ref"}}}}
		}, code: -1, errHas: "python:3.12-slim: InvalidImageName: bad ref", deleted: true},
		{name: "image pull", pod: func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: InitContainer, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		}, code: -1, errHas: "the kiln container's image ghcr.io/kiln-ml/kiln:1.0 could not be pulled: ImagePullBackOff", deleted: true,
			pullGrace: 30 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newCluster(t, "")
			e := newTestExecutor(t, Options{Client: clientset{k.c}, ImagePullGrace: tc.pullGrace})
			log := &recLog{}
			ch := runAsync(context.Background(), e, testTask(), log)
			job := k.job("ml")
			k.pod(job, tc.pod)
			if tc.cond != "" {
				k.finish(job, tc.cond, tc.reason, "")
			}
			r := await(t, ch)
			if r.err != nil || r.out.ExitCode != tc.code || !strings.Contains(r.out.Error, tc.errHas) {
				t.Errorf("Run = %+v, %v; want exit code %d, error with %q", r.out, r.err, tc.code, tc.errHas)
			}
			_, err := k.c.BatchV1().Jobs("ml").Get(context.Background(), job.Name, metav1.GetOptions{})
			if gone := apierrors.IsNotFound(err); gone != tc.deleted {
				t.Errorf("Job deleted: %v, want %v", gone, tc.deleted)
			}
		})
	}
}

func TestRunUnschedulableIsNoted(t *testing.T) {
	k := newCluster(t, "")
	e := newTestExecutor(t, Options{Client: clientset{k.c}})
	log := &recLog{}
	ctx, cancel := context.WithCancel(context.Background())
	ch := runAsync(ctx, e, testTask(), log)
	job := k.job("ml")
	k.pod(job, func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/3 nodes have nvidia.com/gpu"}}
	})
	time.Sleep(50 * time.Millisecond)
	cancel()
	await(t, ch)
	if got := log.String(); strings.Count(got, "Unschedulable: 0/3 nodes have nvidia.com/gpu") != 1 {
		t.Errorf("log %q: want the note once", got)
	}
}

func TestCancelDeletesTheJob(t *testing.T) {
	k := newCluster(t, "")
	e := newTestExecutor(t, Options{Client: clientset{k.c}})
	ctx, cancel := context.WithCancel(context.Background())
	ch := runAsync(ctx, e, testTask(), &recLog{})
	job := k.job("ml")
	k.pod(job, running)
	cancel()
	r := await(t, ch)
	if !errors.Is(r.err, context.Canceled) || r.out.Error != "cancelled" || r.out.Handle != "ml/"+job.Name {
		t.Errorf("Run = %+v, %v", r.out, r.err)
	}
	if _, err := k.c.BatchV1().Jobs("ml").Get(context.Background(), job.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Job is still there: %v", err)
	}
	var del *k8stesting.DeleteActionImpl
	for _, a := range k.c.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && d.GetResource().Resource == "jobs" {
			del = &d
		}
	}
	if del == nil || del.Name != job.Name || del.DeleteOptions.PropagationPolicy == nil ||
		*del.DeleteOptions.PropagationPolicy != metav1.DeletePropagationBackground {
		t.Errorf("delete action %+v, want %s with background propagation", del, job.Name)
	}
}

// TestAlreadyExists runs an attempt whose Job is there already (a server
// that created it and died before recording the handle): Run waits on it
// instead of creating another.
func TestAlreadyExists(t *testing.T) {
	k := newCluster(t, "")
	e := newTestExecutor(t, Options{Client: clientset{k.c}})
	task := testTask()
	job, err := e.BuildJob(task)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.c.BatchV1().Jobs("ml").Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	msg, _ := EncodeOutcome(pipeline.Outcome{Outputs: map[string]string{"auc": "0.5"}}, "")
	k.pod(job, terminated(0, "Completed", msg))
	k.finish(job, batchv1.JobComplete, "", "")
	log := &recLog{}
	out, err := e.Run(context.Background(), task, log)
	if err != nil || out.Outputs["auc"] != "0.5" || out.Handle != "ml/"+job.Name || log.handle != out.Handle {
		t.Fatalf("Run = %+v, %v (handle recorded %q)", out, err, log.handle)
	}
	if !strings.Contains(log.String(), "exists already") {
		t.Errorf("log %q", log.String())
	}
	jobs, _ := k.c.BatchV1().Jobs("ml").List(context.Background(), metav1.ListOptions{})
	if len(jobs.Items) != 1 {
		t.Errorf("%d Jobs", len(jobs.Items))
	}

	// A Job of that name that is another attempt's is not taken.
	other := *task
	other.RunID = "01JOTHERRUNOTHERRUNOTHERRU"
	j2, _ := e.BuildJob(&other)
	task2 := *task
	task2.Attempt = 7
	j2.Name = JobName(&task2)
	if _, err := k.c.BatchV1().Jobs("ml").Create(context.Background(), j2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.Run(context.Background(), &task2, &recLog{}); err == nil || !strings.Contains(out.Error, "is not this attempt's") {
		t.Errorf("Run over another attempt's Job = %+v, %v", out, err)
	}
}

func TestAttach(t *testing.T) {
	k := newCluster(t, "resumed output\n")
	other := newTestExecutor(t, Options{Client: clientset{k.c}})
	task := testTask()
	job, _ := other.BuildJob(task)
	if _, err := k.c.BatchV1().Jobs("ml").Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.pod(job, running)

	e := newTestExecutor(t, Options{Client: clientset{k.c}})
	log := &recLog{}
	ch := make(chan result, 1)
	go func() {
		out, err := e.Attach(context.Background(), task, "ml/"+job.Name, log)
		ch <- result{out, err}
	}()
	time.Sleep(20 * time.Millisecond)
	msg, _ := EncodeOutcome(pipeline.Outcome{ExitCode: 2, Error: "exit status 2"}, "")
	k.pod(job, terminated(2, "Error", msg))
	k.finish(job, batchv1.JobFailed, "BackoffLimitExceeded", "")
	r := await(t, ch)
	if r.err != nil || r.out.ExitCode != 2 || r.out.Error != "exit status 2" || r.out.Handle != "ml/"+job.Name {
		t.Errorf("Attach = %+v, %v", r.out, r.err)
	}
	if got := log.String(); !strings.Contains(got, "re-attached") || !strings.Contains(got, "resumed output\n") {
		t.Errorf("log %q", got)
	}
	creates := 0
	for _, a := range k.c.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "jobs" {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d Jobs created, want the one the other server made", creates)
	}

	for _, tc := range []struct {
		name, handle string
		task         *pipeline.Task
		wantErr      bool
		errHas       string
	}{
		{"gone", "ml/kiln-gone-1-0000000000", task, false, "no longer exists"},
		{"bad handle", "pid:123", task, true, "not a Kubernetes Job handle"},
		{"other attempt", "ml/" + job.Name, &pipeline.Task{Pipeline: "churn", RunID: task.RunID, Step: "train", Attempt: 3}, true, "not this attempt's"},
	} {
		out, err := e.Attach(context.Background(), tc.task, tc.handle, &recLog{})
		if (err != nil) != tc.wantErr || !strings.Contains(out.Error, tc.errHas) {
			t.Errorf("%s: Attach = %+v, %v", tc.name, out, err)
		}
	}
}

// mapStager serves Fetch from a map of URIs to contents.
type mapStager map[string]string

func (m mapStager) Fetch(_ context.Context, uri, dst string) error {
	v, ok := m[uri]
	if !ok {
		return errors.New("not found")
	}
	os.MkdirAll(filepath.Dir(dst), 0o755)
	return os.WriteFile(dst, []byte(v), 0o644)
}

func (m mapStager) Store(context.Context, string, string) error { return errors.New("read only") }

// TestLargeOutcome reads an outcome too large for the termination
// message from where kiln step exec stored it.
func TestLargeOutcome(t *testing.T) {
	task := testTask()
	big := pipeline.Outcome{Outputs: map[string]string{"notes": strings.Repeat("x", 5000), "auc": "0.7"}}
	uri := OutcomeURI(task)
	msg, full := EncodeOutcome(big, uri)
	if full || len(msg) > MaxMessage || !strings.Contains(msg, uri) {
		t.Fatalf("EncodeOutcome = %q, %v", msg, full)
	}
	if uri != task.OutputPrefix+".outcome.json" {
		t.Errorf("OutcomeURI = %q", uri)
	}
	for _, tc := range []struct {
		name   string
		stager pipeline.Stager
		ok     bool
	}{
		{"stored", mapStager{uri: string(OutcomeJSON(big))}, true},
		{"missing", mapStager{}, false},
		{"no stager", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newCluster(t, "")
			e := newTestExecutor(t, Options{Client: clientset{k.c}, Stager: tc.stager})
			ch := runAsync(context.Background(), e, task, &recLog{})
			job := k.job("ml")
			k.pod(job, terminated(0, "Completed", msg))
			k.finish(job, batchv1.JobComplete, "", "")
			r := await(t, ch)
			if tc.ok && (r.err != nil || r.out.ExitCode != 0 || len(r.out.Outputs["notes"]) != 5000 || r.out.Outputs["auc"] != "0.7") {
				t.Errorf("Run = %+v, %v", r.out.ExitCode, r.err)
			}
			if !tc.ok && (r.out.ExitCode == 0 || !strings.Contains(r.out.Error, "reading the step's outcome")) {
				t.Errorf("Run = %+v, %v", r.out, r.err)
			}
		})
	}
	// Without anywhere to store it, the message says the outputs are lost.
	msg, _ = EncodeOutcome(big, "")
	o, _, ok := DecodeOutcome(msg)
	if !ok || o.ExitCode == 0 || !strings.Contains(o.Error, "nowhere to store it") {
		t.Errorf("EncodeOutcome without a URI = %q", msg)
	}
}

func TestWireRoundTrip(t *testing.T) {
	task := testTask()
	s, err := EncodeTask(task)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTask(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Timeout != task.Timeout || got.Env["LR"] != "0.1" || got.Inputs[1] != task.Inputs[1] || got.Outputs[1] != task.Outputs[1] ||
		got.Resources["limits.cpu"] != "4" || strings.Join(got.Command, " ") != strings.Join(task.Command, " ") {
		t.Errorf("round trip: %+v", got)
	}
	for _, bad := range []string{"", "{", `{"step":"x","bogus":1}`, `{"timeout":"soon"}`} {
		if _, err := DecodeTask(bad); err == nil {
			t.Errorf("DecodeTask(%q) accepted it", bad)
		}
	}
	for _, msg := range []string{"", "exec: not found", `{"exit_code":0}`, `[1]`} {
		if _, _, ok := DecodeOutcome(msg); ok {
			t.Errorf("DecodeOutcome(%q) took it for an outcome", msg)
		}
	}
}

// cursorLog is a recLog that knows what the server before had stored.
type cursorLog struct {
	recLog
	until time.Time
}

func (l *cursorLog) StoredUntil() time.Time { return l.until }

// After a re-attach the pod's log is read with timestamps from the second
// of the last stored chunk, and only the lines after it are written.
func TestAttachResumesLog(t *testing.T) {
	until := time.Date(2026, 12, 3, 10, 0, 5, 500_000_000, time.UTC)
	logs := "2026-12-03T10:00:05.200000000Z stored before\n" +
		"2026-12-03T10:00:05.500000000Z stored at the cut\n" +
		"2026-12-03T10:00:05.700000000Z after the cut\n" +
		"not a timestamped line\n" +
		"2026-12-03T10:00:09Z last line without a newline"
	k := &cluster{t: t, c: fake.NewClientset()}
	var opts *corev1.PodLogOptions
	var mu sync.Mutex
	k.c.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		if g, ok := a.(k8stesting.GenericAction); ok {
			mu.Lock()
			opts, _ = g.GetValue().(*corev1.PodLogOptions)
			mu.Unlock()
		}
		return true, &runtime.Unknown{Raw: []byte(logs)}, nil
	})
	other := newTestExecutor(t, Options{Client: clientset{k.c}})
	task := testTask()
	job, _ := other.BuildJob(task)
	if _, err := k.c.BatchV1().Jobs("ml").Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.pod(job, running)
	e := newTestExecutor(t, Options{Client: clientset{k.c}})
	log := &cursorLog{until: until}
	ch := make(chan result, 1)
	go func() {
		out, err := e.Attach(context.Background(), task, "ml/"+job.Name, log)
		ch <- result{out, err}
	}()
	time.Sleep(20 * time.Millisecond)
	msg, _ := EncodeOutcome(pipeline.Outcome{ExitCode: 0}, "")
	k.pod(job, terminated(0, "Completed", msg))
	k.finish(job, batchv1.JobComplete, "", "")
	if r := await(t, ch); r.err != nil || r.out.ExitCode != 0 {
		t.Fatalf("Attach = %+v, %v", r.out, r.err)
	}
	got := log.String()
	want := "after the cut\nnot a timestamped line\nlast line without a newline\n"
	if !strings.HasSuffix(got, want) || strings.Contains(got, "stored before") || strings.Contains(got, "stored at the cut") {
		t.Errorf("log %q, want it to end with %q and hold no stored line", got, want)
	}
	if !strings.Contains(got, "after 2026-12-03T10:00:05.5Z") {
		t.Errorf("log %q does not name the cursor", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if opts == nil || !opts.Timestamps || opts.SinceTime == nil || !opts.SinceTime.Time.Equal(until.Truncate(time.Second)) {
		t.Errorf("PodLogOptions %+v, want Timestamps and SinceTime %s", opts, until.Truncate(time.Second))
	}
}
