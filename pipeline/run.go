package pipeline

import "encoding/json"

// StoredPipeline is a pipeline document as the server holds it.
type StoredPipeline struct {
	Pipeline
	// Generation counts the changes of the spec (1 when created).
	Generation     int64  `json:"generation"`
	UpdatedBy      string `json:"updated_by,omitempty"`
	CreationTime   int64  `json:"creation_time"`
	LastUpdateTime int64  `json:"last_update_time"`
}

// Run states (a pipeline run's and a step's).
const (
	StatePending        = "pending"         // run: created, no step started; step: waiting on its upstream
	StateQueued         = "queued"          // step: ready, waiting for a lease or a backoff to pass
	StateRunning        = "running"         //
	StateSucceeded      = "succeeded"       //
	StateFailed         = "failed"          //
	StateSkipped        = "skipped"         // step: its when was false, or an upstream it needs was skipped
	StateCached         = "cached"          // step: outputs reused from the cache
	StateCancelled      = "cancelled"       //
	StateUpstreamFailed = "upstream_failed" // step: never ran, an upstream failed
)

// Terminal reports whether a run or step state is final.
func Terminal(state string) bool {
	switch state {
	case StateSucceeded, StateFailed, StateSkipped, StateCached, StateCancelled, StateUpstreamFailed:
		return true
	}
	return false
}

// RunRequest asks for a pipeline run.
type RunRequest struct {
	Pipeline   string            `json:"pipeline"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// NoCache runs every step even when its cache key has a hit.
	NoCache bool `json:"no_cache,omitempty"`
	// Actor is who asked (a user, or "schedule/<name>", "trigger/<name>").
	Actor string `json:"actor,omitempty"`
	// Cause says what started it: manual, schedule, trigger or resume,
	// with the event (schedule tick time, dataset version, alert…).
	Cause *Cause `json:"cause,omitempty"`
	// DedupKey, if set, makes the request idempotent across servers: a
	// second request with the same pipeline and key returns the first run
	// (Created false) instead of starting another. Schedules use
	// "schedule/<name>/<tick unix ms>", triggers "trigger/<name>/<event id>".
	DedupKey string `json:"dedup_key,omitempty"`
	// ResumeFrom, if set, is a failed or cancelled run of the same
	// pipeline: its succeeded and cached steps are reused (state cached,
	// outputs copied), and the rest run again (Metaflow's resume).
	ResumeFrom string `json:"resume_from,omitempty"`
}

// Cause is what started a run.
type Cause struct {
	// Type is manual, schedule, trigger or resume.
	Type string `json:"type"`
	// Name is the schedule's or trigger's name.
	Name string `json:"name,omitempty"`
	// Event holds the trigger's payload ({{trigger.*}}) or the schedule's
	// tick ("time").
	Event map[string]string `json:"event,omitempty"`
}

// Run is a pipeline run.
type Run struct {
	ID          string            `json:"run_id"`
	Pipeline    string            `json:"pipeline"`
	Generation  int64             `json:"generation"`
	State       string            `json:"state"`
	Parameters  map[string]string `json:"parameters"`
	NoCache     bool              `json:"no_cache,omitempty"`
	Cause       *Cause            `json:"cause,omitempty"`
	CreatedBy   string            `json:"created_by,omitempty"`
	ResumedFrom string            `json:"resumed_from,omitempty"`
	// TrackingRunID is the parent run in the tracking store;
	// ExperimentID its experiment.
	TrackingRunID string `json:"tracking_run_id"`
	ExperimentID  string `json:"experiment_id"`
	Error         string `json:"error,omitempty"`
	CreationTime  int64  `json:"creation_time"`
	StartTime     int64  `json:"start_time,omitempty"`
	EndTime       int64  `json:"end_time,omitempty"`
	// Steps are filled by GetRun (in the spec's order, the exit handler
	// last), not by ListRuns.
	Steps []*StepRun `json:"steps,omitempty"`
	// Spec is the pipeline spec the run was started with (GetRun only).
	Spec json.RawMessage `json:"spec,omitempty"`
}

// StepRun is one step of a run.
type StepRun struct {
	Step    string `json:"step"`
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	// CacheKey is the step's cache key (hex SHA-256); CachedFrom the run
	// whose outputs a cache hit (or a resume) reused.
	CacheKey      string            `json:"cache_key,omitempty"`
	CachedFrom    string            `json:"cached_from,omitempty"`
	TrackingRunID string            `json:"tracking_run_id,omitempty"`
	Outputs       map[string]string `json:"outputs,omitempty"`
	ExitCode      int               `json:"exit_code,omitempty"`
	Error         string            `json:"error,omitempty"`
	// Executor and Handle say where the current attempt runs (a Job
	// name); Owner is the server holding the step's lease.
	Executor  string `json:"executor,omitempty"`
	Handle    string `json:"handle,omitempty"`
	Owner     string `json:"owner,omitempty"`
	StartTime int64  `json:"start_time,omitempty"`
	EndTime   int64  `json:"end_time,omitempty"`
	// NextAttemptTime is when a retry may start (backoff).
	NextAttemptTime int64 `json:"next_attempt_time,omitempty"`
}

// RunQuery selects runs for ListRuns.
type RunQuery struct {
	Pipeline  string // "" for every pipeline
	State     string // "" for every state; "active" for non-terminal
	PageToken string
	Limit     int // default 50, at most 1000
}

// LogChunk is a piece of a step attempt's log (GET …/logs?follow).
type LogChunk struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
	Seq     int64  `json:"seq"`
	Time    int64  `json:"time"`
	Data    string `json:"data"`
}
