package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/runtime"
)

// Backend names chosen by flavor.
const (
	BackendONNX     = "onnx"
	BackendXGBoost  = "xgboost"
	BackendLightGBM = "lightgbm"
	BackendPython   = "python"
	BackendORT      = "ort"
)

// ErrNoFlavor reports a model that no runtime backend can serve.
var ErrNoFlavor = errors.New("no servable flavor")

// Bundle is a model directory, read: its MLmodel file, signature, input
// example, and the runtime backend and source it loads with.
type Bundle struct {
	Dir          string
	MLmodel      *MLmodel
	Signature    *Signature // MLmodel.Signature; nil when the model has none
	InputExample []byte     // a serving request body (see ReadInputExample); nil when none
	Backend      string     // the runtime backend: "onnx", "xgboost", "lightgbm", "python", "ort", ...
	Source       runtime.Source
	Resolved     *Resolved // where the URI led; nil for ReadBundle
}

// Loaded is a model ready to predict, with the bundle it came from.
type Loaded struct {
	runtime.Model
	Bundle *Bundle
}

// OpenOptions configure Open.
type OpenOptions struct {
	// Resolver finds the model's files; nil resolves local paths only.
	Resolver Resolver
	// Backend forces a runtime backend instead of the one the flavors
	// pick: "ort" for any ONNX model, "python" for any pyfunc model, or
	// the name of any registered backend whose flavor the model has.
	Backend string
	// Options are merged over the flavor's runtime.Source.Options (e.g.
	// "python" for the interpreter of the python backend, "workers").
	Options map[string]any
}

// Open resolves uri, reads its MLmodel file, picks a runtime backend and
// loads the model with it. The backends must be registered (import
// their packages, e.g. _ "github.com/kiln-ml/kiln/runtime/onnx").
//
//	m, err := model.Open(ctx, "models:/churn@champion", model.OpenOptions{Resolver: r})
//	defer m.Close()
//	out, err := m.Predict(ctx, inputs)
func Open(ctx context.Context, uri string, opts OpenOptions) (*Loaded, error) {
	r := opts.Resolver
	if r == nil {
		r = LocalResolver()
	}
	res, err := r.Resolve(ctx, uri)
	if err != nil {
		return nil, err
	}
	b, err := readBundle(res.Dir, opts)
	if err != nil {
		return nil, err
	}
	b.Resolved = res
	m, err := runtime.Load(ctx, b.Backend, b.Source)
	if err != nil {
		return nil, fmt.Errorf("model %s: load with runtime %q: %w", uri, b.Backend, err)
	}
	return &Loaded{Model: m, Bundle: b}, nil
}

// ReadBundle reads the model directory dir and picks its backend (forced
// by backend when not empty) without loading it.
func ReadBundle(dir, backend string) (*Bundle, error) {
	return readBundle(dir, OpenOptions{Backend: backend})
}

func readBundle(dir string, opts OpenOptions) (*Bundle, error) {
	m, err := ReadMLmodel(nil, dir)
	if err != nil {
		return nil, err
	}
	ex, err := m.ReadInputExample(nil, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	backend, src, err := SelectBackend(m, dir, opts.Backend)
	if err != nil {
		return nil, err
	}
	if len(opts.Options) > 0 {
		if src.Options == nil {
			src.Options = map[string]any{}
		}
		maps.Copy(src.Options, opts.Options)
	}
	return &Bundle{Dir: dir, MLmodel: m, Signature: m.Signature, InputExample: ex, Backend: backend, Source: src}, nil
}

// SelectBackend picks the runtime backend of a model in dir and the
// source it loads: onnx, xgboost and lightgbm flavors go to the pure-Go
// backends (Path is the model file, Options carry the flavor's
// model_class and model_format); anything else with a python_function
// flavor goes to the python worker (Path is the model directory). Files
// the Go backends cannot read (a pickled LightGBM model, XGBoost's legacy
// binary format) go to python too. force names a backend to use instead.
//
// Every source's Options also carry "model_dir" (the directory) and
// "flavor" (the flavor used).
func SelectBackend(m *MLmodel, dir, force string) (string, runtime.Source, error) {
	f := m.Flavors
	file := func(data string) (string, error) {
		c, err := cleanRel(data)
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, filepath.FromSlash(c)), nil
	}
	onnx := func(name string) (string, runtime.Source, error) {
		p, err := file(f.ONNX.Data)
		if err != nil {
			return "", runtime.Source{}, fmt.Errorf("%s: onnx flavor: %w", dir, err)
		}
		return name, runtime.Source{Path: p, Options: map[string]any{"model_dir": dir, "flavor": "onnx", "onnx_version": f.ONNX.ONNXVersion}}, nil
	}
	xgb := func() (string, runtime.Source, error) {
		p, err := file(f.XGBoost.Data)
		if err != nil {
			return "", runtime.Source{}, fmt.Errorf("%s: xgboost flavor: %w", dir, err)
		}
		return BackendXGBoost, runtime.Source{Path: p, Options: map[string]any{
			"model_dir": dir, "flavor": "xgboost", "model_class": f.XGBoost.ModelClass, "model_format": xgbFormat(f.XGBoost),
		}}, nil
	}
	lgb := func() (string, runtime.Source, error) {
		p, err := file(f.LightGBM.Data)
		if err != nil {
			return "", runtime.Source{}, fmt.Errorf("%s: lightgbm flavor: %w", dir, err)
		}
		return BackendLightGBM, runtime.Source{Path: p, Options: map[string]any{"model_dir": dir, "flavor": "lightgbm", "model_class": f.LightGBM.ModelClass}}, nil
	}
	python := func() (string, runtime.Source, error) {
		return BackendPython, runtime.Source{Path: dir, Options: map[string]any{
			"model_dir": dir, "flavor": "python_function", "loader_module": f.PythonFunction.LoaderModule,
		}}, nil
	}
	switch force {
	case "":
	case BackendONNX, BackendORT:
		if f.ONNX == nil {
			return "", runtime.Source{}, fmt.Errorf("%w: runtime %q needs an onnx flavor; %s has %v", ErrNoFlavor, force, dir, f.Names())
		}
		return onnx(force)
	case BackendXGBoost:
		if f.XGBoost == nil {
			return "", runtime.Source{}, fmt.Errorf("%w: runtime %q needs an xgboost flavor; %s has %v", ErrNoFlavor, force, dir, f.Names())
		}
		return xgb()
	case BackendLightGBM:
		if f.LightGBM == nil {
			return "", runtime.Source{}, fmt.Errorf("%w: runtime %q needs a lightgbm flavor; %s has %v", ErrNoFlavor, force, dir, f.Names())
		}
		return lgb()
	case BackendPython:
		if f.PythonFunction == nil {
			return "", runtime.Source{}, fmt.Errorf("%w: runtime %q needs a python_function flavor; %s has %v", ErrNoFlavor, force, dir, f.Names())
		}
		return python()
	default:
		// Another registered backend: give it the model directory.
		return force, runtime.Source{Path: dir, Options: map[string]any{"model_dir": dir}}, nil
	}
	switch {
	case f.ONNX != nil && f.ONNX.Data != "":
		return onnx(BackendONNX)
	case f.XGBoost != nil && f.XGBoost.Data != "" && (goXGBoostFormat(dir, f.XGBoost) || f.PythonFunction == nil):
		return xgb()
	case f.LightGBM != nil && f.LightGBM.Data != "" && (!isPickle(f.LightGBM.Data) || f.PythonFunction == nil):
		return lgb()
	case f.PythonFunction != nil:
		return python()
	}
	return "", runtime.Source{}, fmt.Errorf("%w: %s has flavors %v; Kiln serves onnx, xgboost, lightgbm and python_function", ErrNoFlavor, dir, f.Names())
}

// xgbFormat is the flavor's model format, from the file name when the
// flavor (older MLflow) does not say.
func xgbFormat(x *XGBoostFlavor) string {
	if x.ModelFormat != "" {
		return x.ModelFormat
	}
	switch strings.ToLower(filepath.Ext(x.Data)) {
	case ".json":
		return "json"
	case ".ubj":
		return "ubj"
	}
	return "xgb"
}

// goXGBoostFormat reports whether the pure-Go backend reads the file:
// JSON and UBJSON, and MLflow's default "xgb" format when the file is one
// of those (XGBoost 2.1 and later write UBJSON there; both start with '{'),
// not the legacy binary format, which goes to the Python worker.
func goXGBoostFormat(dir string, x *XGBoostFlavor) bool {
	switch xgbFormat(x) {
	case "json", "ubj":
		return true
	case "xgb":
		c, err := cleanRel(x.Data)
		if err != nil {
			return false
		}
		fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(c)))
		if err != nil {
			return false
		}
		defer fh.Close()
		b := make([]byte, 1)
		_, err = io.ReadFull(fh, b)
		return err == nil && b[0] == '{'
	}
	return false
}

func isPickle(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".pkl", ".pickle", ".joblib":
		return true
	}
	return false
}
