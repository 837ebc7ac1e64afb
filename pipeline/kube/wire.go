package kube

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// TaskEnv is the environment variable of the step container that holds
// the task (EncodeTask).
const TaskEnv = "KILN_TASK"

// MaxMessage is the most a termination message holds (Kubernetes cuts
// what is longer); EncodeOutcome's result fits in it.
const MaxMessage = 4096

// wireTask is a pipeline.Task as KILN_TASK holds it.
type wireTask struct {
	Pipeline      string            `json:"pipeline"`
	RunID         string            `json:"run_id"`
	Step          string            `json:"step"`
	Attempt       int               `json:"attempt"`
	TrackingRunID string            `json:"tracking_run_id,omitempty"`
	Image         string            `json:"image,omitempty"`
	Command       []string          `json:"command"`
	Env           map[string]string `json:"env,omitempty"`
	WorkingDir    string            `json:"working_dir,omitempty"`
	Inputs        []wireInput       `json:"inputs,omitempty"`
	Outputs       []pipeline.Output `json:"outputs,omitempty"`
	OutputPrefix  string            `json:"output_prefix,omitempty"`
	// Timeout is a Go duration ("30m0s"); "" for none.
	Timeout   string            `json:"timeout,omitempty"`
	Resources map[string]string `json:"resources,omitempty"`
}

// wireInput is a pipeline.TaskInput in KILN_TASK.
type wireInput struct {
	Name  string `json:"name"`
	URI   string `json:"uri,omitempty"`
	Value string `json:"value,omitempty"`
}

// EncodeTask writes t as the JSON that KILN_TASK holds.
func EncodeTask(t *pipeline.Task) (string, error) {
	w := wireTask{Pipeline: t.Pipeline, RunID: t.RunID, Step: t.Step, Attempt: t.Attempt, TrackingRunID: t.TrackingRunID,
		Image: t.Image, Command: t.Command, Env: t.Env, WorkingDir: t.WorkingDir, Outputs: t.Outputs,
		OutputPrefix: t.OutputPrefix, Resources: t.Resources}
	for _, in := range t.Inputs {
		w.Inputs = append(w.Inputs, wireInput(in))
	}
	if t.Timeout > 0 {
		w.Timeout = t.Timeout.String()
	}
	data, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("kubernetes executor: encoding the task: %w", err)
	}
	return string(data), nil
}

// DecodeTask reads what EncodeTask wrote.
func DecodeTask(s string) (*pipeline.Task, error) {
	var w wireTask
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, errdefs.Invalid("$%s is not a kiln task: %v", TaskEnv, err)
	}
	t := &pipeline.Task{Pipeline: w.Pipeline, RunID: w.RunID, Step: w.Step, Attempt: w.Attempt, TrackingRunID: w.TrackingRunID,
		Image: w.Image, Command: w.Command, Env: w.Env, WorkingDir: w.WorkingDir, Outputs: w.Outputs,
		OutputPrefix: w.OutputPrefix, Resources: w.Resources}
	for _, in := range w.Inputs {
		t.Inputs = append(t.Inputs, pipeline.TaskInput(in))
	}
	if w.Timeout != "" {
		d, err := time.ParseDuration(w.Timeout)
		if err != nil || d < 0 {
			return nil, errdefs.Invalid("$%s: timeout %q is not a duration", TaskEnv, w.Timeout)
		}
		t.Timeout = d
	}
	if t.Env == nil {
		t.Env = map[string]string{}
	}
	return t, nil
}

// wireOutcome is an Outcome as a termination message holds it. Kiln is
// always 1, which tells it from other text (the log tail Kubernetes puts
// there when the container wrote no message); OutcomeURI, when set, is
// where the whole outcome was stored because it was too large.
type wireOutcome struct {
	Kiln       int               `json:"kiln"`
	ExitCode   int               `json:"exit_code"`
	Error      string            `json:"error,omitempty"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	OutcomeURI string            `json:"outcome_uri,omitempty"`
}

// EncodeOutcome writes o as a termination message. It returns full=false
// when o does not fit in MaxMessage: the message then carries the exit
// code and uri (where the caller stores OutcomeJSON(o)); with uri empty
// it says the outputs were lost.
func EncodeOutcome(o pipeline.Outcome, uri string) (msg string, full bool) {
	w := wireOutcome{Kiln: 1, ExitCode: o.ExitCode, Error: o.Error, Outputs: o.Outputs}
	data, _ := json.Marshal(w)
	if len(data) <= MaxMessage {
		return string(data), true
	}
	w.Outputs = nil
	if len(w.Error) > 1024 {
		w.Error = w.Error[:1024] + "…"
	}
	if uri != "" {
		w.OutcomeURI = uri
	} else {
		if w.ExitCode == 0 {
			w.ExitCode = 1
		}
		w.Error = "the outcome is larger than a termination message and there was nowhere to store it"
	}
	data, _ = json.Marshal(w)
	return string(data), false
}

// OutcomeJSON is the whole outcome, as stored at the URI of a message
// that EncodeOutcome could not fit.
func OutcomeJSON(o pipeline.Outcome) []byte {
	data, _ := json.Marshal(wireOutcome{Kiln: 1, ExitCode: o.ExitCode, Error: o.Error, Outputs: o.Outputs})
	return data
}

// DecodeOutcome reads a termination message (or stored OutcomeJSON). ok
// is false when msg is not one (a log tail, or nothing); uri is set when
// the outcome was stored elsewhere.
func DecodeOutcome(msg string) (o pipeline.Outcome, uri string, ok bool) {
	var w wireOutcome
	if err := json.Unmarshal([]byte(strings.TrimSpace(msg)), &w); err != nil || w.Kiln != 1 {
		return pipeline.Outcome{}, "", false
	}
	return pipeline.Outcome{ExitCode: w.ExitCode, Error: w.Error, Outputs: w.Outputs}, w.OutcomeURI, true
}

// OutcomeURI is where an attempt's outcome is stored when it is too large
// for the termination message: next to the outputs folder, never inside
// it ("" without an output prefix).
func OutcomeURI(t *pipeline.Task) string {
	if t.OutputPrefix == "" {
		return ""
	}
	return strings.TrimRight(t.OutputPrefix, "/") + ".outcome.json"
}
