package pipeline

import (
	"maps"
	"time"
)

// Observer hears of pipeline runs and their steps starting and ending,
// after the change is stored (Kiln's OpenLineage emitter is one). Observe
// must not block: it is called on the engine's paths.
type Observer interface {
	Observe(ev Lifecycle)
}

// Lifecycle phases, OpenLineage's event types.
const (
	PhaseStart    = "START"
	PhaseComplete = "COMPLETE"
	PhaseFail     = "FAIL"
	PhaseAbort    = "ABORT"
)

// Lifecycle is one start or end of a pipeline run (Step "") or of a step
// attempt.
type Lifecycle struct {
	Phase    string
	Time     time.Time
	Pipeline string
	RunID    string
	Step     string
	Attempt  int
	// State is the run's or step's state after the change.
	State string
	// TrackingRunID is the run's parent tracking run, or the step's child.
	TrackingRunID string
	// Inputs are a starting step's resolved inputs (a dataset input's
	// URI is "dataset:NAME@N"); Outputs an ended step's outputs.
	Inputs     []TaskInput
	Outputs    map[string]string
	Parameters map[string]string
	Error      string
}

// phaseOf maps a terminal state to its lifecycle phase.
func phaseOf(state string) string {
	switch state {
	case StateFailed, StateUpstreamFailed:
		return PhaseFail
	case StateCancelled:
		return PhaseAbort
	}
	return PhaseComplete
}

func (s *Service) observe(ev Lifecycle) {
	if s.o.Observer == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ev.Outputs = maps.Clone(ev.Outputs)
	ev.Parameters = maps.Clone(ev.Parameters)
	s.o.Observer.Observe(ev)
}
