package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
)

// ErrModelNotFound is returned by a Repository for a model name or version
// it does not serve. Each protocol answers it as "not found" (HTTP 404,
// gRPC NotFound).
var ErrModelNotFound = errors.New("model not found")

// ErrModelNotReady is returned by a Repository for a model it knows but
// cannot serve yet (still loading, failed to load). Protocols answer it as
// "unavailable" (HTTP 503, gRPC Unavailable).
var ErrModelNotReady = errors.New("model not ready")

// Model is one loaded model as the server sees it.
type Model struct {
	// Name is the name clients address the model by.
	Name string
	// Version is the version this Model is; empty for unversioned models.
	Version string
	// Versions lists the versions of Name that may be requested
	// explicitly (reported in the model metadata); nil means just Version.
	Versions []string
	// Route names the endpoint route or variant this Model serves for,
	// when a routing repository (package deploy) hands it out; Observers
	// see it. Empty otherwise.
	Route string
	// Source names what the Model was loaded from, for logs and the
	// prediction log: a registered model version ("fraud/3") when a
	// routing repository hands it out, else the model URI, or empty.
	Source string
	// Platform is the OIP platform string, e.g. "onnx_onnxv1".
	Platform string
	// Runtime predicts.
	Runtime runtime.Model
	// Signature is the MLflow signature of the model, when it has one. A
	// column-based input schema drives /invocations: column order and
	// the required/type checks.
	Signature *model.Signature
	// InputExample is the MLflow input example (the JSON of
	// serving_input_example.json or input_example.json), when there is
	// one; it is informational.
	InputExample json.RawMessage
	// Features, if set, completes the model's requests with features
	// looked up by entity key (an endpoint with spec.features): see
	// FeatureSet.
	Features FeatureFiller
}

// ModelInfo is one entry of a repository index.
type ModelInfo struct {
	Name    string
	Version string
	// State is "READY", "UNAVAILABLE" or "LOADING" (the model repository
	// extension's states).
	State string
	// Reason says why a model is not ready.
	Reason string
}

// Repository is where the server gets its models.
type Repository interface {
	// Model returns the named model; version "" picks the repository's
	// default version. It returns an error wrapping ErrModelNotFound for
	// an unknown name or version, or ErrModelNotReady for a model that
	// cannot serve now. It is called on every request and must be fast;
	// it must return the same *Model for as long as that model stays
	// loaded, because the server keeps per-model state keyed by it (see
	// Server.Release).
	Model(ctx context.Context, name, version string) (*Model, error)
	// Models lists the models the repository knows, for the repository
	// index and readiness.
	Models(ctx context.Context) []ModelInfo
}

// Static is a Repository of models fixed at construction, such as the one
// model of `kiln serve`.
type Static struct {
	models []*Model
}

// NewStatic returns a repository serving models. Names must be non-empty;
// a name may repeat only with different versions, and the first model of a
// name is its default version.
func NewStatic(models ...*Model) (*Static, error) {
	s := &Static{}
	for _, m := range models {
		if m == nil || m.Runtime == nil {
			return nil, errors.New("serving: static repository: model without a runtime")
		}
		if m.Name == "" {
			return nil, errors.New("serving: static repository: model without a name")
		}
		for _, o := range s.models {
			if o.Name == m.Name && o.Version == m.Version {
				return nil, fmt.Errorf("serving: static repository: model %q version %q given twice", m.Name, m.Version)
			}
		}
		s.models = append(s.models, m)
	}
	return s, nil
}

// Model implements Repository.
func (s *Static) Model(_ context.Context, name, version string) (*Model, error) {
	for _, m := range s.models {
		if m.Name != name {
			continue
		}
		if version == "" || version == m.Version {
			return m, nil
		}
	}
	if version != "" {
		for _, m := range s.models {
			if m.Name == name {
				return nil, fmt.Errorf("%w: model %q has no version %q", ErrModelNotFound, name, version)
			}
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrModelNotFound, name)
}

// Models implements Repository.
func (s *Static) Models(context.Context) []ModelInfo {
	out := make([]ModelInfo, len(s.models))
	for i, m := range s.models {
		out[i] = ModelInfo{Name: m.Name, Version: m.Version, State: "READY"}
	}
	return out
}

// DefaultModel returns the repository's model when it has exactly one
// (what /invocations scores).
func (s *Static) DefaultModel() (*Model, bool) {
	if len(s.models) != 1 {
		return nil, false
	}
	return s.models[0], true
}

// versions is what the model metadata reports as the model's versions.
func (m *Model) versions() []string {
	if m.Versions != nil {
		return m.Versions
	}
	if m.Version != "" {
		return []string{m.Version}
	}
	return nil
}
