package model_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// recorder is a stand-in backend that records what it was asked to load.
type recorder struct {
	name string
	last runtime.Source
	fail error
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Load(_ context.Context, src runtime.Source) (runtime.Model, error) {
	r.last = src
	if r.fail != nil {
		return nil, r.fail
	}
	return fakeModel{}, nil
}

type fakeModel struct{}

func (fakeModel) Signature() runtime.Signature { return runtime.Signature{} }
func (fakeModel) Predict(context.Context, []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, nil
}
func (fakeModel) Close() error { return nil }

var backends = map[string]*recorder{}

func init() {
	// Stand-ins under names no real backend of this test binary uses.
	for _, n := range []string{"python", "xgboost", "onnx", "ort"} {
		backends[n] = &recorder{name: n}
		runtime.Register(backends[n])
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		uri, force, backend, path string
		options                   map[string]any
	}{
		{uri: filepath.Join("testdata", "xgboost_clf"), backend: "xgboost", path: "model.ubj",
			options: map[string]any{"model_class": "xgboost.sklearn.XGBClassifier", "model_format": "ubj", "flavor": "xgboost"}},
		{uri: "file://" + filepath.Join("testdata", "onnx_logreg"), backend: "onnx", path: "model.onnx"},
		{uri: filepath.Join("testdata", "onnx_logreg", "MLmodel"), force: "ort", backend: "ort", path: "model.onnx"},
		{uri: filepath.Join("testdata", "sklearn_logreg"), backend: "python", path: ".",
			options: map[string]any{"loader_module": "mlflow.sklearn", "workers": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.backend, func(t *testing.T) {
			m, err := model.Open(ctx, tc.uri, model.OpenOptions{Backend: tc.force, Options: map[string]any{"workers": 2}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			b := m.Bundle
			if b.Backend != tc.backend || b.Resolved == nil || b.MLmodel == nil {
				t.Fatalf("bundle %+v", b)
			}
			src := backends[tc.backend].last
			if want := filepath.Join(b.Dir, tc.path); src.Path != want {
				t.Errorf("loaded %q, want %q", src.Path, want)
			}
			if src.Options["model_dir"] != b.Dir || src.Options["workers"] != 2 {
				t.Errorf("options %v", src.Options)
			}
			for k, v := range tc.options {
				if src.Options[k] != v {
					t.Errorf("option %s = %v, want %v", k, src.Options[k], v)
				}
			}
		})
	}
	// Load errors name the URI and the backend.
	backends["python"].fail = errors.New("worker did not start")
	defer func() { backends["python"].fail = nil }()
	_, err := model.Open(ctx, filepath.Join("testdata", "pyfunc_echo"), model.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), `load with runtime "python": worker did not start`) {
		t.Errorf("load error %v", err)
	}
	// Registry URIs need a resolver that can reach a registry.
	_, err = model.Open(ctx, "models:/iris/1", model.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "needs a tracking server") {
		t.Errorf("models:/ without a resolver: %v", err)
	}
	_, err = model.Open(ctx, filepath.Join("testdata", "sklearn_logreg"), model.OpenOptions{Backend: "nosuch"})
	if !errors.Is(err, runtime.ErrNoBackend) {
		t.Errorf("unknown backend: %v", err)
	}
}
