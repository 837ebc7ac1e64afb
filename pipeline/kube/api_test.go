package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// apiServer answers the few paths of the Kubernetes API that NewAPI's
// client uses, the way the API server does (JSON bodies, Status errors),
// and records the requests.
type apiServer struct {
	mu   sync.Mutex
	jobs map[string][]byte // "ns/name" → the Job as created
	reqs []string          // "METHOD path?query"
	del  metav1.DeleteOptions
}

func status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg})
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r.Method+" "+r.URL.RequestURI())
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/apis/batch/v1/namespaces/steps/jobs":
		body, _ := io.ReadAll(r.Body)
		var j batchv1.Job
		if err := json.Unmarshal(body, &j); err != nil || j.Kind != "Job" || j.APIVersion != "batch/v1" {
			status(w, 400, metav1.StatusReasonBadRequest, fmt.Sprintf("not a batch/v1 Job: %v %s", err, body))
			return
		}
		key := "steps/" + j.Name
		if _, ok := s.jobs[key]; ok {
			status(w, 409, metav1.StatusReasonAlreadyExists, `jobs.batch "`+j.Name+`" already exists`)
			return
		}
		j.UID = "u-1"
		out, _ := json.Marshal(j)
		s.jobs[key] = out
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		w.Write(out)
	case strings.HasPrefix(p, "/apis/batch/v1/namespaces/steps/jobs/"):
		key := "steps/" + strings.TrimPrefix(p, "/apis/batch/v1/namespaces/steps/jobs/")
		j, ok := s.jobs[key]
		if !ok {
			status(w, 404, metav1.StatusReasonNotFound, `jobs.batch "`+key+`" not found`)
			return
		}
		if r.Method == http.MethodDelete {
			json.NewDecoder(r.Body).Decode(&s.del)
			delete(s.jobs, key)
			status(w, 200, "", "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(j)
	case r.Method == http.MethodGet && p == "/api/v1/namespaces/steps/pods":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
			Items: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "train-abc", Labels: map[string]string{LabelJob: "train"}}}}})
	case r.Method == http.MethodGet && p == "/api/v1/namespaces/steps/pods/train-abc/log":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "epoch 1\nepoch 2\n")
	default:
		status(w, 404, metav1.StatusReasonNotFound, "no route "+p)
	}
}

func TestRESTAPI(t *testing.T) {
	srv := &apiServer{jobs: map[string][]byte{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	api, err := NewAPI(&rest.Config{Host: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "train", Namespace: "steps"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: StepContainer, Image: "python:3.11"}}}}}}
	created, err := api.CreateJob(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if created.UID != "u-1" || created.Spec.Template.Spec.Containers[0].Image != "python:3.11" {
		t.Errorf("created Job = %+v", created)
	}
	if _, err := api.CreateJob(ctx, job); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	got, err := api.GetJob(ctx, "steps", "train")
	if err != nil || got.Name != "train" || got.UID != "u-1" {
		t.Errorf("GetJob = %+v, %v", got, err)
	}
	if _, err := api.GetJob(ctx, "steps", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("GetJob of a missing Job: %v, want NotFound", err)
	}

	pods, err := api.ListPods(ctx, "steps", LabelJob+"=train")
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Name != "train-abc" {
		t.Fatalf("ListPods = %+v, %v", pods, err)
	}
	since := metav1.NewTime(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	rc, err := api.PodLogs(ctx, "steps", "train-abc", &corev1.PodLogOptions{Container: StepContainer, Follow: true, SinceTime: &since, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(rc)
	rc.Close()
	if string(logs) != "epoch 1\nepoch 2\n" {
		t.Errorf("logs = %q", logs)
	}

	if err := api.DeleteJob(ctx, "steps", "train"); err != nil {
		t.Fatal(err)
	}
	if err := api.DeleteJob(ctx, "steps", "train"); !apierrors.IsNotFound(err) {
		t.Errorf("deleting twice: %v, want NotFound", err)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.del.PropagationPolicy == nil || *srv.del.PropagationPolicy != metav1.DeletePropagationBackground {
		t.Errorf("delete options = %+v, want background propagation", srv.del)
	}
	want := []string{
		"POST /apis/batch/v1/namespaces/steps/jobs",
		"POST /apis/batch/v1/namespaces/steps/jobs",
		"GET /apis/batch/v1/namespaces/steps/jobs/train",
		"GET /apis/batch/v1/namespaces/steps/jobs/nope",
		"GET /api/v1/namespaces/steps/pods?labelSelector=kiln.dev%2Fjob%3Dtrain",
		"GET /api/v1/namespaces/steps/pods/train-abc/log?container=step&follow=true&sinceTime=2026-12-06T10%3A00%3A00Z&timestamps=true",
		"DELETE /apis/batch/v1/namespaces/steps/jobs/train",
		"DELETE /apis/batch/v1/namespaces/steps/jobs/train",
	}
	if strings.Join(srv.reqs, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(srv.reqs, "\n"), strings.Join(want, "\n"))
	}
}
