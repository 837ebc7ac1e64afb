package deploy

import (
	"context"
	"encoding/json"
	"time"
)

// State is an endpoint as stored and served: the desired document and the
// observed status.
type State struct {
	Endpoint Endpoint `json:"endpoint"`
	Status   Status   `json:"status"`
}

// Status is what an endpoint is doing now.
type Status struct {
	// Revision counts the stored changes of the endpoint (spec or status).
	Revision  int64  `json:"revision"`
	CreatedAt int64  `json:"created_at"` // ms since the epoch
	UpdatedAt int64  `json:"updated_at"` // ms since the epoch
	UpdatedBy string `json:"updated_by,omitempty"`
	// Routes are the live routes: what traffic reaches now. During a
	// rollout they are the stable and the canary route; after one, a
	// weight-0 "previous" route keeps the old version loaded for an
	// instant rollback until keep_previous passes.
	Routes []LiveRoute `json:"routes"`
	// Shadow is the live shadow target, if any.
	Shadow *LiveShadow `json:"shadow,omitempty"`
	// Rollout is the last (or current) change of version of an endpoint
	// with a rollout strategy.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
	// Previous are the live routes before the last change of an endpoint
	// without a rollout strategy, for Rollback.
	Previous []LiveRoute `json:"previous,omitempty"`
	// Applied fingerprints the resolved routes (model versions and
	// weights) the endpoint last acted on; the controller starts a change
	// when the resolved spec differs from it.
	Applied string `json:"applied,omitempty"`
	// Message says what is wrong, if anything (a failed change, a bound
	// that cannot be checked).
	Message string `json:"message,omitempty"`
	// Paused holds the rollout controller for this endpoint.
	Paused bool `json:"paused,omitempty"`
	// Pending says which aliases moved since the controller last acted
	// ("alias churn@champion moved to version 2 (route main served 1)"):
	// the change starts at its next tick. It is worked out when the
	// endpoint is read through the API (Manager.Pending), never stored.
	Pending string `json:"pending,omitempty"`
}

// Route states.
const (
	RouteLoading  = "loading"
	RouteReady    = "ready"
	RouteFailed   = "failed"
	RouteUnloaded = "unloaded" // evicted from the model cache; reloads on the next request
)

// LiveRoute is one route traffic reaches now.
type LiveRoute struct {
	Name    string  `json:"name"`
	Model   string  `json:"model"`
	Version int64   `json:"version"`
	Weight  float64 `json:"weight"`
	// State is loading, ready, failed or unloaded (filled when read).
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// LiveShadow is the shadow target traffic is mirrored to now.
type LiveShadow struct {
	Model   string  `json:"model"`
	Version int64   `json:"version"`
	Percent float64 `json:"percent"`
	State   string  `json:"state,omitempty"`
	Reason  string  `json:"reason,omitempty"`
}

// Rollout phases.
const (
	PhaseProgressing = "progressing"
	PhasePaused      = "paused"
	PhaseSucceeded   = "succeeded"
	PhaseRolledBack  = "rolled_back"
	PhaseFailed      = "failed"
)

// ModelVersion names one registered model version.
type ModelVersion struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
}

// RolloutStatus is the state of a change of version.
type RolloutStatus struct {
	Strategy string `json:"strategy"`
	// Phase is progressing, paused, succeeded, rolled_back or failed.
	Phase string `json:"phase"`
	// Step is the index of the current canary step (into spec.rollout.steps).
	Step int `json:"step"`
	// Stable is the version that had all the traffic when the rollout
	// started (after a rollback: the version traffic is back on).
	Stable ModelVersion `json:"stable"`
	// Candidate is the new version.
	Candidate ModelVersion `json:"candidate"`
	// Message explains the phase (figures of a failed analysis, a gate's
	// refusal, a bound that cannot be checked).
	Message       string `json:"message,omitempty"`
	StartedAt     int64  `json:"started_at"`      // ms
	StepStartedAt int64  `json:"step_started_at"` // ms
	FinishedAt    int64  `json:"finished_at,omitempty"`
	// Analysis is the last analysis of the candidate's live metrics.
	Analysis *AnalysisResult `json:"analysis,omitempty"`
}

// AnalysisResult is one health check of a canary step.
type AnalysisResult struct {
	Time      int64   `json:"time"` // ms
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P99Ms     float64 `json:"p99_ms"`
	// Quality is the labelled quality metric, when a source gave one.
	Quality *float64 `json:"quality,omitempty"`
	Passed  bool     `json:"passed"`
	Reason  string   `json:"reason,omitempty"`
}

// Event is one recorded change of an endpoint: who, when, why, what.
type Event struct {
	ID       int64           `json:"id"`
	Endpoint string          `json:"endpoint"`
	Time     int64           `json:"time"` // ms since the epoch
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Reason   string          `json:"reason,omitempty"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// Event actions.
const (
	ActionCreate          = "create"
	ActionUpdate          = "update"
	ActionDelete          = "delete"
	ActionPromote         = "promote"
	ActionPause           = "pause"
	ActionResume          = "resume"
	ActionRollback        = "rollback"
	ActionRolloutStart    = "rollout-start"
	ActionStep            = "rollout-step"
	ActionRolloutSucceed  = "rollout-succeeded"
	ActionAutoRollback    = "auto-rollback"
	ActionSwitch          = "switch"
	ActionAliasMoved      = "alias-moved"
	ActionChangeFailed    = "change-failed"
	ActionPreviousRelease = "previous-released"
)

// ApplyResult is what Apply did.
type ApplyResult struct {
	Created bool   `json:"created"`
	Changed bool   `json:"changed"`
	State   *State `json:"state"`
}

// RouteGuard decides whether a model version may receive an endpoint's
// traffic (promotion gates implement it). A non-nil error refuses.
type RouteGuard interface {
	AllowRoute(ctx context.Context, endpoint, model string, version int64) error
}

// QualitySource reports a labelled quality metric of the requests an
// endpoint route served since a time (monitoring implements it). ok is
// false when there are not enough labels yet.
type QualitySource interface {
	Quality(ctx context.Context, endpoint, route, metric string, since time.Time) (value float64, ok bool, err error)
}

// Stats kinds.
const (
	StatsEndpoint = "endpoint"
	StatsRoute    = "route"
	StatsVariant  = "variant"
	StatsShadow   = "shadow"
)

// RouteStats are the live figures of one route, experiment variant or
// shadow target of an endpoint; the first entry of Stats is the whole
// endpoint (kind "endpoint"), with its capacity.
type RouteStats struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Model   string  `json:"model,omitempty"`
	Version int64   `json:"version,omitempty"`
	Weight  float64 `json:"weight"`
	// Total counts since the route went live in this process.
	Total Counts `json:"total"`
	// Window covers the last WindowSeconds.
	Window        Counts  `json:"window"`
	WindowSeconds float64 `json:"window_seconds"`
	// RPS is Window.Requests / WindowSeconds.
	RPS      float64        `json:"rps"`
	Shadow   *ShadowStats   `json:"shadow,omitempty"`
	Capacity *CapacityStats `json:"capacity,omitempty"`
}

// Counts are request figures over a span.
type Counts struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// ShadowStats are a shadow target's mirroring figures.
type ShadowStats struct {
	// Mirrored copies were predicted by the shadow; Dropped were not
	// (its queue was full).
	Mirrored int64 `json:"mirrored"`
	Dropped  int64 `json:"dropped"`
	// Compared answers had a primary answer to compare with; Agreement is
	// the share of them whose first output was equal (labels) or within
	// 1e-6 (numbers); MeanAbsDiff the mean absolute difference of numeric
	// first outputs.
	Compared    int64   `json:"compared"`
	Agreement   float64 `json:"agreement"`
	MeanAbsDiff float64 `json:"mean_abs_diff"`
}

// CapacityStats are an endpoint's admission figures.
type CapacityStats struct {
	Workers    int   `json:"workers"`
	MinWorkers int   `json:"min_workers"`
	MaxWorkers int   `json:"max_workers"`
	InFlight   int   `json:"in_flight"`
	Queued     int   `json:"queued"`
	QueueSize  int   `json:"queue_size"`
	Shed       int64 `json:"shed"`
	ScaleUps   int64 `json:"scale_ups"`
	ScaleDowns int64 `json:"scale_downs"`
}
