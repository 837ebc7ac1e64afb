package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// Defaults of Options.
const (
	DefaultNamespace        = "default"
	DefaultTTLAfterFinished = time.Hour
	DefaultPoll             = 2 * time.Second
	DefaultImagePullGrace   = 2 * time.Minute
)

// Options configure the Executor.
type Options struct {
	// Client talks to the cluster (required; NewAPI).
	Client API
	// Namespace holds the Jobs (default DefaultNamespace).
	Namespace string
	// KilnImage is the image whose kiln binary the init container copies
	// into the pod (required); KilnCommand is that binary in it (default
	// "kiln", looked up on the image's PATH).
	KilnImage   string
	KilnCommand string
	// DefaultImage runs a step that names no image (default KilnImage).
	DefaultImage string
	// ServerURL, if set, is the server as the pods reach it: the step's
	// KILN_URL and MLFLOW_TRACKING_URI (else the engine's, the server's
	// external URL).
	ServerURL string
	// ServiceAccount runs the pods ("": the namespace's default, with no
	// API token mounted).
	ServiceAccount string
	// TokenSecret, if set, names a Secret whose "token" key is given to
	// the step as KILN_TOKEN (the API token kiln step exec sends).
	TokenSecret string
	// TTLAfterFinished is how long a finished Job is kept (default
	// DefaultTTLAfterFinished).
	TTLAfterFinished time.Duration
	// Poll is how often the Job and its pod are read (default
	// DefaultPoll).
	Poll time.Duration
	// ImagePullGrace is how long an image may fail to pull
	// (ErrImagePull, ImagePullBackOff) before the attempt fails (default
	// DefaultImagePullGrace). An invalid image name fails at once.
	ImagePullGrace time.Duration
	// Stager reads an outcome stored because it was too large for the
	// termination message (the server's bucket stager).
	Stager pipeline.Stager
	Logger *slog.Logger
}

// Executor runs step attempts as Kubernetes Jobs. It implements
// pipeline.Executor and pipeline.Attacher and is safe for concurrent use.
type Executor struct {
	o Options
}

var (
	_ pipeline.Executor = (*Executor)(nil)
	_ pipeline.Attacher = (*Executor)(nil)
)

// New returns an Executor.
func New(o Options) (*Executor, error) {
	if o.Client == nil {
		return nil, errors.New("kubernetes executor: no client")
	}
	if o.KilnImage == "" {
		return nil, errors.New("kubernetes executor: no kiln image (the image the init container copies kiln from)")
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.KilnCommand == "" {
		o.KilnCommand = "kiln"
	}
	if o.DefaultImage == "" {
		o.DefaultImage = o.KilnImage
	}
	if o.TTLAfterFinished <= 0 {
		o.TTLAfterFinished = DefaultTTLAfterFinished
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.ImagePullGrace <= 0 {
		o.ImagePullGrace = DefaultImagePullGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{o: o}, nil
}

// Handle is the handle of a Job: "namespace/name".
func Handle(namespace, name string) string { return namespace + "/" + name }

// ParseHandle splits a handle.
func ParseHandle(h string) (namespace, name string, err error) {
	ns, name, ok := strings.Cut(h, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", errdefs.Invalid("%q is not a Kubernetes Job handle (namespace/name)", h)
	}
	return ns, name, nil
}

// Run creates the attempt's Job (or finds it, when it exists already) and
// waits for it to end.
func (e *Executor) Run(ctx context.Context, t *pipeline.Task, log io.Writer) (pipeline.Outcome, error) {
	if log == nil {
		log = io.Discard
	}
	job, err := e.BuildJob(t)
	if err != nil {
		return notRun(errdefs.Message(err)), err
	}
	created, err := e.o.Client.CreateJob(ctx, job)
	switch {
	case apierrors.IsAlreadyExists(err):
		existing, gerr := e.o.Client.GetJob(ctx, job.Namespace, job.Name)
		if gerr != nil {
			return e.stopped(ctx, job.Namespace, job.Name, fmt.Errorf("kubernetes executor: reading the existing Job %s: %w", job.Name, gerr))
		}
		if err := matches(existing, t); err != nil {
			return notRun(err.Error()), fmt.Errorf("kubernetes executor: %w", err)
		}
		e.o.Logger.Info("the step's Job exists already; attaching", "job", Handle(job.Namespace, job.Name))
		fmt.Fprintf(log, "kiln: the Job %s exists already; waiting on it\n", Handle(job.Namespace, job.Name))
	case err != nil:
		if ctx.Err() != nil {
			return cancelled(""), ctx.Err()
		}
		return notRun(fmt.Sprintf("creating the Job %s failed: %v", job.Name, err)), fmt.Errorf("kubernetes executor: creating the Job %s: %w", job.Name, err)
	default:
		job = created
	}
	h := Handle(job.Namespace, job.Name)
	if hs, ok := log.(pipeline.HandleSetter); ok {
		hs.SetHandle(h)
	}
	return e.wait(ctx, t, job.Namespace, job.Name, log, time.Time{})
}

// Attach waits on the Job of handle, which another server created.
func (e *Executor) Attach(ctx context.Context, t *pipeline.Task, handle string, log io.Writer) (pipeline.Outcome, error) {
	if log == nil {
		log = io.Discard
	}
	ns, name, err := ParseHandle(handle)
	if err != nil {
		return notRun(errdefs.Message(err)), err
	}
	job, err := e.o.Client.GetJob(ctx, ns, name)
	switch {
	case apierrors.IsNotFound(err):
		return pipeline.Outcome{ExitCode: -1, Handle: handle,
			Error: fmt.Sprintf("the Job %s no longer exists (deleted, or removed after it finished)", handle)}, nil
	case err != nil:
		if ctx.Err() != nil {
			return cancelled(handle), ctx.Err()
		}
		return notRun(fmt.Sprintf("reading the Job %s failed: %v", handle, err)), fmt.Errorf("kubernetes executor: reading the Job %s: %w", handle, err)
	}
	if err := matches(job, t); err != nil {
		return notRun(err.Error()), fmt.Errorf("kubernetes executor: %w", err)
	}
	var since time.Time
	if c, ok := log.(pipeline.LogCursor); ok {
		since = c.StoredUntil()
	}
	if since.IsZero() {
		fmt.Fprintf(log, "kiln: re-attached to the Job %s; its pod's log follows from the start\n", handle)
	} else {
		fmt.Fprintf(log, "kiln: re-attached to the Job %s; its pod's log follows from the lines after %s (the last stored)\n",
			handle, since.UTC().Format(time.RFC3339Nano))
	}
	return e.wait(ctx, t, ns, name, log, since)
}

// stopped deletes the Job after a failure to follow it and reports err.
func (e *Executor) stopped(ctx context.Context, ns, name string, err error) (pipeline.Outcome, error) {
	if ctx.Err() != nil {
		e.delete(ns, name)
		return cancelled(Handle(ns, name)), ctx.Err()
	}
	return pipeline.Outcome{ExitCode: -1, Error: err.Error(), Handle: Handle(ns, name)}, err
}

// delete removes a Job and, in the background, its pods.
func (e *Executor) delete(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.o.Client.DeleteJob(ctx, ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		e.o.Logger.Warn("deleting a step's Job failed", "job", Handle(ns, name), "err", err)
	}
}

// watcher follows one Job.
type watcher struct {
	e         *Executor
	t         *pipeline.Task
	ns, name  string
	log       *syncWriter
	pullSince time.Time       // when the pod was first seen failing to pull
	notes     map[string]bool // pending-pod notes already logged
	streaming map[string]bool // pods whose log is being streamed
	wg        sync.WaitGroup
	streamCtx context.Context
	since     time.Time // skip log lines up to this time (a re-attach)
}

// wait polls the Job until it ends or ctx does.
// A non-zero since (a re-attach) skips the pod's log lines written
// until then.
func (e *Executor) wait(ctx context.Context, t *pipeline.Task, ns, name string, log io.Writer, since time.Time) (pipeline.Outcome, error) {
	streamCtx, stopStreams := context.WithCancel(context.Background())
	w := &watcher{e: e, t: t, ns: ns, name: name, since: since, log: &syncWriter{w: log}, notes: map[string]bool{},
		streaming: map[string]bool{}, streamCtx: streamCtx}
	defer func() {
		stopStreams()
		w.wg.Wait()
	}()
	h := Handle(ns, name)
	tick := time.NewTicker(e.o.Poll)
	defer tick.Stop()
	for {
		out, done, err := w.poll(ctx)
		if done {
			// Let the log stream of a finished container end by itself.
			w.drain(5 * time.Second)
			out.Handle = h
			return out, err
		}
		select {
		case <-ctx.Done():
			e.delete(ns, name)
			fmt.Fprintf(w.log, "kiln: cancelled; deleted the Job %s\n", h)
			return cancelled(h), ctx.Err()
		case <-tick.C:
		}
	}
}

// drain waits up to d for the log streams to end.
func (w *watcher) drain(d time.Duration) {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
	}
}

// poll reads the Job and its pods once; done is true when the attempt has
// ended (out says how).
func (w *watcher) poll(ctx context.Context) (out pipeline.Outcome, done bool, err error) {
	c := w.e.o.Client
	job, err := c.GetJob(ctx, w.ns, w.name)
	switch {
	case apierrors.IsNotFound(err):
		return pipeline.Outcome{ExitCode: -1, Error: fmt.Sprintf("the Job %s was deleted while it ran", Handle(w.ns, w.name))}, true, nil
	case err != nil:
		if ctx.Err() != nil {
			return pipeline.Outcome{}, false, nil
		}
		// A passing API server error: try again at the next tick.
		w.e.o.Logger.Warn("reading a step's Job failed", "job", Handle(w.ns, w.name), "err", err)
		return pipeline.Outcome{}, false, nil
	}
	pods, err := c.ListPods(ctx, w.ns, labels.SelectorFromSet(labels.Set{LabelJob: w.name}).String())
	if err != nil {
		if ctx.Err() == nil {
			w.e.o.Logger.Warn("listing a step's pods failed", "job", Handle(w.ns, w.name), "err", err)
		}
		pods = &corev1.PodList{}
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	var pod *corev1.Pod
	if n := len(pods.Items); n > 0 {
		pod = &pods.Items[n-1]
	}
	if pod != nil {
		w.follow(pod)
	}
	if cond, ok := finished(job); ok {
		out, err := w.outcome(ctx, job, cond, pod)
		return out, true, err
	}
	if pod != nil {
		if out, failed := w.pending(pod); failed {
			w.e.delete(w.ns, w.name)
			return out, true, nil
		}
	}
	return pipeline.Outcome{}, false, nil
}

// finished returns the Job's terminal condition (Complete or Failed).
func finished(job *batchv1.Job) (batchv1.JobCondition, bool) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c, true
		}
	}
	return batchv1.JobCondition{}, false
}

// follow starts streaming the step container's log once it has started.
func (w *watcher) follow(pod *corev1.Pod) {
	if w.streaming[pod.Name] {
		return
	}
	cs := containerStatus(pod, StepContainer)
	if cs == nil || (cs.State.Running == nil && cs.State.Terminated == nil) {
		return
	}
	w.streaming[pod.Name] = true
	opts := &corev1.PodLogOptions{Container: StepContainer, Follow: true}
	if !w.since.IsZero() {
		// The kubelet's times are exact; SinceTime has second precision,
		// so the lines of that second are filtered here.
		st := metav1.NewTime(w.since.Truncate(time.Second))
		opts.SinceTime, opts.Timestamps = &st, true
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		rc, err := w.e.o.Client.PodLogs(w.streamCtx, w.ns, pod.Name, opts)
		if err != nil {
			if w.streamCtx.Err() == nil {
				fmt.Fprintf(w.log, "kiln: reading the pod %s's log failed: %v\n", pod.Name, err)
			}
			return
		}
		defer rc.Close()
		if opts.Timestamps {
			copyLinesAfter(rc, w.log, w.since)
		} else {
			copyLines(rc, w.log)
		}
	}()
}

// copyLinesAfter copies the lines of a log read with timestamps (each
// line "RFC3339Nano-time SP text") whose time is after since, without the
// time. A line whose time does not parse is kept whole.
func copyLinesAfter(r io.Reader, w io.Writer, since time.Time) {
	copyLinesFunc(r, w, func(line []byte) []byte {
		ts, text, ok := bytes.Cut(line, []byte(" "))
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		switch {
		case !ok || err != nil:
			return line
		case t.After(since):
			return text
		}
		return nil
	})
}

// copyLines copies r to w a line at a time (a last line without a newline
// gets one).
func copyLines(r io.Reader, w io.Writer) {
	copyLinesFunc(r, w, func(line []byte) []byte { return line })
}

// copyLinesFunc copies what keep returns of each line of r (newline
// included; a last line without one gets one) to w.
func copyLinesFunc(r io.Reader, w io.Writer, keep func([]byte) []byte) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			if out := keep(line); len(out) > 0 {
				w.Write(out)
			}
		}
		if err != nil {
			return
		}
	}
}

// Reasons a container waits that fail the attempt.
var (
	pullReasons  = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true}
	fatalReasons = map[string]bool{"InvalidImageName": true, "CreateContainerConfigError": true, "CreateContainerError": true, "ErrImageNeverPull": true}
)

// pending checks a pod that has not finished: an image that cannot be
// pulled fails the attempt; being unschedulable is noted in the log.
func (w *watcher) pending(pod *corev1.Pod) (pipeline.Outcome, bool) {
	if pod.Status.Phase == corev1.PodFailed {
		// The Job's Failed condition follows; nothing to do yet.
		return pipeline.Outcome{}, false
	}
	pulling := false
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		wt := cs.State.Waiting
		if wt == nil {
			continue
		}
		what := fmt.Sprintf("the %s container's image %s", cs.Name, imageOf(pod, cs.Name))
		switch {
		case fatalReasons[wt.Reason]:
			msg := fmt.Sprintf("%s: %s: %s", what, wt.Reason, wt.Message)
			if strings.HasPrefix(wt.Reason, "Create") {
				msg = fmt.Sprintf("the %s container could not be created: %s: %s", cs.Name, wt.Reason, wt.Message)
			}
			fmt.Fprintf(w.log, "kiln: %s\n", msg)
			return pipeline.Outcome{ExitCode: -1, Error: msg}, true
		case pullReasons[wt.Reason]:
			pulling = true
			if w.pullSince.IsZero() {
				w.pullSince = time.Now()
				fmt.Fprintf(w.log, "kiln: %s cannot be pulled (%s: %s); giving it %v\n", what, wt.Reason, wt.Message, w.e.o.ImagePullGrace)
			}
			if time.Since(w.pullSince) >= w.e.o.ImagePullGrace {
				msg := fmt.Sprintf("%s could not be pulled: %s: %s", what, wt.Reason, wt.Message)
				return pipeline.Outcome{ExitCode: -1, Error: msg}, true
			}
		}
	}
	if !pulling {
		w.pullSince = time.Time{}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			note := fmt.Sprintf("kiln: the pod %s is not scheduled: %s: %s\n", pod.Name, c.Reason, c.Message)
			if !w.notes[note] {
				w.notes[note] = true
				w.log.Write([]byte(note))
			}
		}
	}
	return pipeline.Outcome{}, false
}

func imageOf(pod *corev1.Pod, container string) string {
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == container {
			return c.Image
		}
	}
	return "?"
}

func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == name {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	for i := range pod.Status.InitContainerStatuses {
		if pod.Status.InitContainerStatuses[i].Name == name {
			return &pod.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

// outcome reads how a finished Job's attempt ended: the Outcome that
// kiln step exec left in the termination message, or what Kubernetes
// says when there is none.
func (w *watcher) outcome(ctx context.Context, job *batchv1.Job, cond batchv1.JobCondition, pod *corev1.Pod) (pipeline.Outcome, error) {
	var term *corev1.ContainerStateTerminated
	if pod != nil {
		if cs := containerStatus(pod, StepContainer); cs != nil {
			term = cs.State.Terminated
		}
	}
	var out pipeline.Outcome
	haveOutcome := false
	if term != nil {
		o, uri, ok := DecodeOutcome(term.Message)
		if ok && uri != "" {
			o, ok = w.stored(ctx, uri, o)
		}
		out, haveOutcome = o, ok
	}
	timeout := w.t.Timeout
	switch {
	case cond.Type == batchv1.JobComplete:
		if haveOutcome {
			return out, nil
		}
		fmt.Fprintf(w.log, "kiln: the Job %s completed but its pod left no outcome (scalar outputs are lost)\n", Handle(w.ns, w.name))
		return pipeline.Outcome{}, nil
	case cond.Reason == batchv1.JobReasonDeadlineExceeded:
		code := 1
		if term != nil && term.ExitCode > 0 {
			code = int(term.ExitCode)
		}
		if haveOutcome && out.ExitCode != 0 {
			return out, nil
		}
		return pipeline.Outcome{ExitCode: code, Error: fmt.Sprintf("timed out after %v (the Job's activeDeadlineSeconds)", timeout)}, nil
	}
	// Failed.
	if term != nil && term.Reason == "OOMKilled" {
		msg := "killed: out of memory (OOMKilled)"
		if lim, ok := job.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; ok {
			msg = fmt.Sprintf("killed: out of memory (OOMKilled at the %s memory limit)", lim.String())
		}
		return pipeline.Outcome{ExitCode: max(int(term.ExitCode), 1), Error: msg}, nil
	}
	if haveOutcome {
		if out.ExitCode == 0 && out.Error == "" {
			out.ExitCode, out.Error = 1, "the Job failed: "+condText(cond)
		}
		return out, nil
	}
	if pod != nil && pod.Status.Reason == "Evicted" {
		return pipeline.Outcome{ExitCode: -1, Error: "pod evicted: " + pod.Status.Message}, nil
	}
	if pod != nil {
		if ics := containerStatus(pod, InitContainer); ics != nil && ics.State.Terminated != nil && ics.State.Terminated.ExitCode != 0 {
			it := ics.State.Terminated
			return pipeline.Outcome{ExitCode: -1, Error: fmt.Sprintf("copying kiln into the pod failed (init container %s, exit status %d): %s",
				InitContainer, it.ExitCode, abbrev(strings.TrimSpace(it.Message), 500))}, nil
		}
	}
	if term != nil {
		msg := fmt.Sprintf("exit status %d", term.ExitCode)
		if tail := strings.TrimSpace(term.Message); tail != "" {
			msg += ": " + abbrev(lastLines(tail, 5), 1000)
		} else if term.Reason != "" && term.Reason != "Error" {
			msg += " (" + term.Reason + ")"
		}
		return pipeline.Outcome{ExitCode: max(int(term.ExitCode), 1), Error: msg}, nil
	}
	return pipeline.Outcome{ExitCode: -1, Error: "the Job failed: " + condText(cond)}, nil
}

// stored reads the outcome stored at uri because it was too large for
// the termination message.
func (w *watcher) stored(ctx context.Context, uri string, short pipeline.Outcome) (pipeline.Outcome, bool) {
	fail := func(err error) (pipeline.Outcome, bool) {
		code := short.ExitCode
		if code == 0 {
			code = 1
		}
		return pipeline.Outcome{ExitCode: code, Error: fmt.Sprintf("reading the step's outcome from %s failed: %v", uri, err)}, true
	}
	if w.e.o.Stager == nil {
		return fail(errors.New("the executor has no stager"))
	}
	dir, err := os.MkdirTemp("", "kiln-outcome-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "outcome.json")
	if err := w.e.o.Stager.Fetch(ctx, uri, p); err != nil {
		return fail(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return fail(err)
	}
	o, _, ok := DecodeOutcome(string(data))
	if !ok {
		return fail(errors.New("not an outcome"))
	}
	return o, true
}

func condText(c batchv1.JobCondition) string {
	switch {
	case c.Reason != "" && c.Message != "":
		return c.Reason + ": " + c.Message
	case c.Reason != "":
		return c.Reason
	}
	return c.Message
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func notRun(msg string) pipeline.Outcome { return pipeline.Outcome{ExitCode: -1, Error: msg} }

func cancelled(handle string) pipeline.Outcome {
	return pipeline.Outcome{ExitCode: -1, Error: "cancelled", Handle: handle}
}

// syncWriter serialises the log writes of the poll loop and the log
// stream.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
