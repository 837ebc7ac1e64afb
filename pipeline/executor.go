package pipeline

import (
	"context"
	"io"
	"time"
)

// Task is one attempt of one step, fully resolved: every template in its
// command, env and inputs has been substituted.
type Task struct {
	Pipeline string
	RunID    string // the pipeline run (a ULID)
	Step     string
	Attempt  int // 1, 2, …
	// TrackingRunID is the step's child run; the executor exports it as
	// MLFLOW_RUN_ID so that mlflow.start_run() in the step logs to it.
	TrackingRunID string
	Image         string
	Command       []string
	// Env is the step's environment on top of the executor's own:
	// the spec's env, KILN_URL, MLFLOW_TRACKING_URI, MLFLOW_RUN_ID,
	// KILN_PIPELINE, KILN_PIPELINE_RUN, KILN_STEP, KILN_ATTEMPT,
	// KILN_PARAM_<NAME>, KILN_INPUT_<NAME>.
	Env        map[string]string
	WorkingDir string
	Inputs     []TaskInput
	Outputs    []Output
	// OutputPrefix is the artifact URI under which the executor stores the
	// attempt's outputs, one object (or folder) per output name:
	// mlflow-artifacts:/pipelines/<pipeline>/<run>/<step>/<attempt>/outputs.
	OutputPrefix string
	Timeout      time.Duration
	Resources    map[string]string
}

// TaskInput is one resolved input of a Task.
type TaskInput struct {
	Name string
	// URI is what to materialize under $KILN_INPUTS/<name>: an artifact
	// URI (mlflow-artifacts:/…, runs:/…, models:/…) or a dataset version
	// "dataset:<name>@<version>". Empty for a scalar input.
	URI string
	// Value is a scalar input's value.
	Value string
}

// Outcome is how an attempt ended. An Executor reports a failed command
// as an Outcome with a non-zero ExitCode (and Error saying what), not as
// an error; errors are for failures to run at all.
type Outcome struct {
	ExitCode int
	// Error says why the attempt failed ("exit status 2", "timed out
	// after 30m0s", "pod evicted"); empty on success.
	Error string
	// Outputs are the scalar outputs' values (metric, parameter, model),
	// read from the files the step wrote.
	Outputs map[string]string
	// Handle identifies the attempt's process or Kubernetes Job, so that
	// a server taking over a lapsed lease can re-attach (Attacher).
	Handle string
}

// Executor runs one attempt of a step to its end. Run blocks; cancelling
// ctx stops the attempt (the local executor kills the process tree, the
// Kubernetes one deletes the Job) and Run returns ctx's error. Log lines
// are written to log as they come.
type Executor interface {
	Run(ctx context.Context, t *Task, log io.Writer) (Outcome, error)
}

// Attacher is an Executor that can wait on an attempt another server
// started (a Kubernetes Job survives its server), given its Handle.
type Attacher interface {
	Attach(ctx context.Context, t *Task, handle string, log io.Writer) (Outcome, error)
}

// LogCursor is implemented by the log writer a Service gives Attach:
// StoredUntil is when the last chunk of the attempt's log was stored by
// the server that started it (zero when nothing was). An executor that
// can read the attempt's output from a point in time resumes after it,
// so the stored lines are not written twice.
type LogCursor interface {
	StoredUntil() time.Time
}

// Stager moves a step's inputs and outputs between the artifact store and
// a local folder: the local executor uses the server's blob bucket, and
// `kiln step exec` inside a Kubernetes pod uses the server's HTTP API.
type Stager interface {
	// Fetch materializes uri (see TaskInput.URI) at dst, a file or a
	// folder.
	Fetch(ctx context.Context, uri, dst string) error
	// Store uploads src, a file or a folder, to uri.
	Store(ctx context.Context, src, uri string) error
}
