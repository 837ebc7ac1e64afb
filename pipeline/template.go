package pipeline

import "github.com/kiln-ml/kiln/errdefs"

// Scope holds the values templates refer to.
type Scope struct {
	Params  map[string]string
	Steps   map[string]StepScope // by step name
	Inputs  map[string]string    // the step's own inputs: path or value
	Trigger map[string]string
	Run     RunScope
	// PipelineStatus is "Succeeded" or "Failed" in on_exit, "" elsewhere.
	PipelineStatus string
}

// StepScope is what templates see of a step.
type StepScope struct {
	State   string
	Outputs map[string]string
}

// RunScope is what templates see of the run.
type RunScope struct {
	ID, Pipeline, TrackingRunID string
}

// Ref is one template reference: {{steps.train.outputs.auc}} is
// Ref{Scope: "steps", Name: "train", Field: "outputs.auc"}.
type Ref struct {
	Scope string
	Name  string
	Field string
}

// Expand substitutes the templates of s.
func Expand(s string, sc *Scope) (string, error) {
	return "", errdefs.NotImplemented("Expand is not implemented yet")
}

// References lists the templates of s.
func References(s string) ([]Ref, error) {
	return nil, errdefs.NotImplemented("References is not implemented yet")
}
