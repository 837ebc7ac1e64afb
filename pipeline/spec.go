package pipeline

import "github.com/kiln-ml/kiln/monitor/alert"

// The document type of this package.
const (
	APIVersion   = "kiln.dev/v1"
	KindPipeline = "Pipeline"
)

// Pipeline is a pipeline document:
//
//	apiVersion: kiln.dev/v1
//	kind: Pipeline
//	metadata: {name: churn-retrain}
//	spec:
//	  parameters:
//	    - {name: data, default: "churn@latest"}
//	    - {name: min_auc, type: float, default: 0.8}
//	  steps:
//	    - name: validate
//	      command: [kiln, data, validate, "{{params.data}}"]
//	    - name: train
//	      depends_on: [validate]
//	      command: [python, train.py]
//	      inputs:
//	        - {name: data, dataset: "{{params.data}}"}
//	      outputs:
//	        - {name: model, type: model}
//	        - {name: auc, type: metric}
//	      retry: {limit: 2, backoff: 5s}
//	      timeout: 30m
//	    - name: register
//	      depends_on: [train]
//	      when: "{{steps.train.outputs.auc}} >= {{params.min_auc}}"
//	      command: [kiln, models, register, "{{steps.train.outputs.model}}"]
//	  on_exit:
//	    name: notify
//	    command: [sh, -c, "echo pipeline {{pipeline.status}}"]
//	  schedules:
//	    - {name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, concurrency: forbid}
//	  triggers:
//	    - {name: drift, alert: {monitor: churn, rule: data-drift}, parameters: {reason: "{{trigger.rule}}"}}
type Pipeline struct {
	APIVersion string   `json:"apiVersion" yaml:"apiVersion"`
	Kind       string   `json:"kind" yaml:"kind"`
	Metadata   Metadata `json:"metadata" yaml:"metadata"`
	Spec       Spec     `json:"spec" yaml:"spec"`
}

// Metadata names a document.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Spec is what a pipeline runs and when.
type Spec struct {
	// Parameters are the run's inputs by name; a run request, a schedule
	// or a trigger sets them, else their defaults apply.
	Parameters []Parameter `json:"parameters,omitempty" yaml:"parameters,omitempty"`
	Steps      []Step      `json:"steps" yaml:"steps"`
	// OnExit runs after every other step has finished, whatever the
	// outcome (Argo's onExit, KFP's ExitHandler); {{pipeline.status}} is
	// Succeeded or Failed there.
	OnExit *Step `json:"on_exit,omitempty" yaml:"on_exit,omitempty"`
	// Executor is "local" (the default) or "kubernetes".
	Executor string `json:"executor,omitempty" yaml:"executor,omitempty"`
	// Parallelism bounds the steps of one run that run at once (0: the
	// executor's limit).
	Parallelism int `json:"parallelism,omitempty" yaml:"parallelism,omitempty"`
	// Experiment is the tracking experiment of the runs (default
	// "pipelines/<name>").
	Experiment string `json:"experiment,omitempty" yaml:"experiment,omitempty"`
	// Cache, false, turns the step cache off for every step.
	Cache     *bool      `json:"cache,omitempty" yaml:"cache,omitempty"`
	Schedules []Schedule `json:"schedules,omitempty" yaml:"schedules,omitempty"`
	Triggers  []Trigger  `json:"triggers,omitempty" yaml:"triggers,omitempty"`
}

// Parameter is one named input of a run.
type Parameter struct {
	Name string `json:"name" yaml:"name"`
	// Type is string (the default), int, float or bool.
	Type        string `json:"type,omitempty" yaml:"type,omitempty"`
	Default     any    `json:"default,omitempty" yaml:"default,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// Step is one node of the DAG.
type Step struct {
	Name string `json:"name" yaml:"name"`
	// Command is the argv to run (templates allowed in every element).
	Command []string `json:"command" yaml:"command"`
	// Image, if set, is the container image (Kubernetes executor; the local
	// executor refuses a step with an image unless told to ignore it).
	Image      string            `json:"image,omitempty" yaml:"image,omitempty"`
	Env        map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty" yaml:"working_dir,omitempty"`
	Inputs     []Input           `json:"inputs,omitempty" yaml:"inputs,omitempty"`
	Outputs    []Output          `json:"outputs,omitempty" yaml:"outputs,omitempty"`
	// DependsOn names the steps that must succeed (or be skipped) first;
	// references to upstream outputs add dependencies implicitly.
	DependsOn []string `json:"depends_on,omitempty" yaml:"depends_on,omitempty"`
	// When is a condition over templates ("{{steps.eval.outputs.auc}} > 0.8",
	// "{{params.deploy}} == true"); false skips the step (and so its
	// dependents that need its outputs).
	When    string       `json:"when,omitempty" yaml:"when,omitempty"`
	Retry   *RetryPolicy `json:"retry,omitempty" yaml:"retry,omitempty"`
	Timeout Duration     `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Cache   *CachePolicy `json:"cache,omitempty" yaml:"cache,omitempty"`
	// Resources are Kubernetes requests/limits ("cpu", "memory",
	// "nvidia.com/gpu"); the local executor ignores them.
	Resources map[string]string `json:"resources,omitempty" yaml:"resources,omitempty"`
}

// Input is one thing a step reads; exactly one of Dataset, Artifact, From
// and Value is set. Dataset and Artifact inputs are materialized under
// $KILN_INPUTS/<name>. {{inputs.<name>}} is the pinned "name@N" of a
// dataset input, the URI of an artifact input and the value of a scalar
// one; $KILN_INPUT_<NAME> is the local path (or the scalar).
type Input struct {
	Name string `json:"name" yaml:"name"`
	// Dataset is a dataset version, "name@version" or "name@latest".
	Dataset string `json:"dataset,omitempty" yaml:"dataset,omitempty"`
	// Artifact is an artifact URI (mlflow-artifacts:/…, runs:/…,
	// models:/…).
	Artifact string `json:"artifact,omitempty" yaml:"artifact,omitempty"`
	// From is an upstream output, "steps.<step>.outputs.<name>".
	From string `json:"from,omitempty" yaml:"from,omitempty"`
	// Value is a scalar (templates allowed).
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
}

// Output types.
const (
	OutputArtifact  = "artifact"  // a file or folder, uploaded
	OutputMetric    = "metric"    // a number, logged to the step's run
	OutputParameter = "parameter" // a short string
	OutputModel     = "model"     // a model URI (models:/name/version or runs:/…)
)

// Output is one thing a step produces: the step writes it to
// $KILN_OUTPUTS/<name> (a file holding the value for metric, parameter
// and model outputs; a file or folder for artifacts).
type Output struct {
	Name string `json:"name" yaml:"name"`
	// Type is artifact (the default), metric, parameter or model.
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
	// Path, if set, is where the step writes it instead, relative to its
	// working directory.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
}

// RetryPolicy retries a failed attempt (KFP's set_retry, Argo's
// retryStrategy): attempt n waits Backoff × Factor^(n-1), at most
// MaxBackoff.
type RetryPolicy struct {
	Limit      int      `json:"limit" yaml:"limit"`
	Backoff    Duration `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	Factor     float64  `json:"factor,omitempty" yaml:"factor,omitempty"`
	MaxBackoff Duration `json:"max_backoff,omitempty" yaml:"max_backoff,omitempty"`
}

// CachePolicy controls the step cache for one step.
type CachePolicy struct {
	// Disabled never reuses or stores this step's outputs.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// Version is the declared code version: part of the cache key, bump
	// it when the step's code changes in a way its inputs do not show.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// Concurrency policies of a schedule (Kubernetes CronJob's and Argo's).
const (
	ConcurrencyAllow   = "allow"
	ConcurrencyForbid  = "forbid"
	ConcurrencyReplace = "replace"
)

// Schedule starts runs on a cron schedule.
type Schedule struct {
	Name string `json:"name" yaml:"name"`
	// Cron is a standard five-field cron expression or a descriptor
	// (@hourly, @daily, @every 10m).
	Cron string `json:"cron" yaml:"cron"`
	// Timezone is an IANA zone (default UTC).
	Timezone string `json:"timezone,omitempty" yaml:"timezone,omitempty"`
	// Concurrency is forbid (the default), allow or replace.
	Concurrency string `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// StartingDeadline: a tick missed by more than this (the server was
	// down) is skipped; with catch-up off (the default) at most the latest
	// missed tick runs, and only within the deadline (default 1m).
	StartingDeadline Duration `json:"starting_deadline,omitempty" yaml:"starting_deadline,omitempty"`
	// CatchUp runs every missed tick (Airflow's catchup); default false.
	CatchUp    bool              `json:"catch_up,omitempty" yaml:"catch_up,omitempty"`
	Suspend    bool              `json:"suspend,omitempty" yaml:"suspend,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty" yaml:"parameters,omitempty"`
}

// Trigger starts a run on an event; exactly one of Dataset, Model, Alert
// and Webhook is set. The event's fields are {{trigger.<field>}} in
// Parameters.
type Trigger struct {
	Name string `json:"name" yaml:"name"`
	// Dataset fires on every new version of the named dataset
	// ({{trigger.dataset}}, {{trigger.version}}, {{trigger.ref}}).
	Dataset string `json:"dataset,omitempty" yaml:"dataset,omitempty"`
	// Model fires on every new version of the registered model
	// ({{trigger.model}}, {{trigger.version}}, {{trigger.uri}}).
	Model string `json:"model,omitempty" yaml:"model,omitempty"`
	// Alert fires when a monitor's alert rule starts firing
	// ({{trigger.monitor}}, {{trigger.rule}}, {{trigger.endpoint}},
	// {{trigger.value}}, {{trigger.fingerprint}}).
	Alert *AlertTrigger `json:"alert,omitempty" yaml:"alert,omitempty"`
	// Webhook fires on POST /api/v1/pipelines/{name}/triggers/{trigger}
	// (signed with the secret, if set: X-Kiln-Signature: sha256=<hmac>);
	// the JSON body's top-level fields are {{trigger.<field>}}.
	Webhook *WebhookTrigger `json:"webhook,omitempty" yaml:"webhook,omitempty"`
	// Concurrency is allow (the default for triggers), forbid or replace.
	Concurrency string            `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	Parameters  map[string]string `json:"parameters,omitempty" yaml:"parameters,omitempty"`
}

// AlertTrigger selects alerts; an empty Rule matches every rule of the
// monitor.
type AlertTrigger struct {
	Monitor string `json:"monitor" yaml:"monitor"`
	Rule    string `json:"rule,omitempty" yaml:"rule,omitempty"`
}

// WebhookTrigger is an HTTP trigger.
type WebhookTrigger struct {
	// SecretEnv names the server's environment variable holding the HMAC
	// secret (never the secret itself in the document).
	SecretEnv string `json:"secret_env,omitempty" yaml:"secret_env,omitempty"`
}

// Duration is a duration written as a Go duration string ("30s", "10m")
// or a number of seconds; the same type as the alert rules' "for".
type Duration = alert.Duration
