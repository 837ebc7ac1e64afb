// Package xgboost is a pure-Go runtime for XGBoost models, registered with
// the runtime package as the "xgboost" backend. It reads the model files
// XGBoost 1.0 and later write with Booster.save_model: JSON (".json") and
// Universal Binary JSON (".ubj"; also what XGBoost ≥ 2.1 writes for other
// extensions, such as MLflow's "model.xgb"). The format is told by content.
// The legacy binary format is refused with runtime.ErrUnsupported and a
// hint to re-save the model.
//
// Supported: the gbtree, dart and gblinear boosters; every objective of
// XGBoost 3.x except custom ones; missing values (NaN) following each
// split's default direction; categorical splits (a categorical feature is
// given as its integer category code, NaN when missing, as XGBoost sees
// pandas category codes); multi-class and multi-target models (one output
// per tree). Multi-target trees (multi_strategy="multi_output_tree") are
// not supported yet.
//
// A model takes one input, "input" (FP32 [-1, num_feature]; FP64, integer,
// boolean and FP16 inputs are converted to float32 as XGBoost does). A
// classifier returns "label" (INT64 [N], the class XGBClassifier.predict
// returns, which is what MLflow's xgboost pyfunc flavor serves) and
// "probabilities" (FP32 [N, classes], XGBClassifier.predict_proba; [N, 2]
// for a binary classifier). Any other model returns "predictions" (FP32
// [N], or [N, outputs] for multi-output models; class indices for a
// multi:softmax Booster), what Booster.predict and XGBRegressor.predict
// return. Predictions match XGBoost's own: margins are accumulated in
// single precision in tree order, from base_score mapped through the
// objective's link.
//
// With Source.Options["output_margin"] set to true a model returns the raw
// margins as "predictions" instead, like Booster.predict(output_margin=True).
//
// Whether a model is a classifier comes from Source.Options["model_class"]
// (the MLflow flavor's, e.g. "xgboost.sklearn.XGBClassifier" or
// "xgboost.core.Booster"), else from the estimator type the scikit-learn
// wrapper saves in the model, else from the objective (binary:logistic,
// binary:hinge, multi:*). Models of the scikit-learn wrapper that were
// trained with early stopping predict with their best iteration, as the
// wrapper does; Boosters use every tree, as Booster.predict does.
package xgboost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

func init() { runtime.Register(Backend{}) }

// Backend loads XGBoost models; it is registered as "xgboost".
type Backend struct{}

// Name returns "xgboost".
func (Backend) Name() string { return "xgboost" }

// Load loads the model at src.Path: a model file, or a directory holding
// one (an MLflow xgboost flavor directory). In a directory the file is
// src.Options["data"] when set, else the first of model.xgb, model.json,
// model.ubj, model.bst. src.Options["model_class"] says which Python class
// saved the model (see the package documentation).
func (Backend) Load(ctx context.Context, src runtime.Source) (runtime.Model, error) {
	m, err := Load(ctx, src)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return m, nil
}

// Load is Backend.Load returning the concrete model.
func Load(ctx context.Context, src runtime.Source) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, name, err := readModel(src)
	if err != nil {
		return nil, err
	}
	m, err := Decode(data, src.Options)
	if err != nil {
		return nil, fmt.Errorf("xgboost: %s: %w", name, err)
	}
	return m, nil
}

// modelFiles are the names tried in a directory, in order.
var modelFiles = []string{"model.xgb", "model.json", "model.ubj", "model.bst"}

// maxModelSize bounds the model files read.
const maxModelSize = 2 << 30

func readModel(src runtime.Source) ([]byte, string, error) {
	info, err := stat(src, src.Path)
	if err != nil {
		return nil, src.Path, fmt.Errorf("xgboost: %w", err)
	}
	if !info.IsDir() {
		data, err := readFile(src, src.Path, info)
		return data, src.Path, err
	}
	names := modelFiles
	if d, ok := src.Options["data"].(string); ok && d != "" {
		if !filepath.IsLocal(d) || !fs.ValidPath(filepath.ToSlash(filepath.Clean(d))) {
			return nil, src.Path, fmt.Errorf("xgboost: %s: data %q is not a path inside the model directory", src.Path, d)
		}
		names = []string{d}
	}
	for _, n := range names {
		p := joinPath(src, n)
		info, err := stat(src, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, p, fmt.Errorf("xgboost: %w", err)
		}
		if info.IsDir() {
			continue
		}
		data, err := readFile(src, p, info)
		return data, p, err
	}
	return nil, src.Path, fmt.Errorf("xgboost: %s: %w: no model file in the directory (looked for %s)", src.Path, fs.ErrNotExist, strings.Join(names, ", "))
}

func joinPath(src runtime.Source, name string) string {
	if src.FS != nil {
		return path.Join(src.Path, filepath.ToSlash(name))
	}
	return filepath.Join(src.Path, name)
}

func stat(src runtime.Source, p string) (fs.FileInfo, error) {
	if src.FS != nil {
		return fs.Stat(src.FS, p)
	}
	return os.Stat(p)
}

func readFile(src runtime.Source, p string, info fs.FileInfo) ([]byte, error) {
	if info.Size() > maxModelSize {
		return nil, fmt.Errorf("xgboost: %s: %w: %d bytes is more than the %d a model file may have", p, runtime.ErrInvalidModel, info.Size(), int64(maxModelSize))
	}
	var data []byte
	var err error
	if src.FS != nil {
		data, err = fs.ReadFile(src.FS, p)
	} else {
		data, err = os.ReadFile(p)
	}
	if err != nil {
		return nil, fmt.Errorf("xgboost: %w", err)
	}
	return data, nil
}

// Decode decodes a model file's content. options are the Source.Options of
// Load (nil is fine).
func Decode(data []byte, options map[string]any) (*Model, error) {
	doc, err := decode(data)
	if err != nil {
		return nil, err
	}
	l, err := parseLearner(&doc)
	if err != nil {
		return nil, err
	}
	return newModel(l, options)
}

// Model is a loaded XGBoost model. It is immutable and safe for concurrent
// use.
type Model struct {
	l      *learner
	out    outputs
	ntrees int
	sig    runtime.Signature
}

var _ runtime.Model = (*Model)(nil)

func newModel(l *learner, options map[string]any) (*Model, error) {
	m := &Model{l: l}
	modelClass, _ := options["model_class"].(string)
	margin, _ := options["output_margin"].(bool)
	sklearn := strings.Contains(modelClass, ".sklearn.")
	var estimator string
	if s, ok := l.attributes["scikit_learn"]; ok {
		sklearn = sklearn || modelClass == ""
		var meta struct {
			EstimatorType string `json:"_estimator_type"`
		}
		if json.Unmarshal([]byte(s), &meta) == nil {
			estimator = meta.EstimatorType
		}
	}
	classifier := l.obj.classifier
	switch {
	case modelClass != "":
		classifier = strings.Contains(modelClass, "Classifier")
	case estimator != "":
		classifier = estimator == "classifier"
	}
	switch {
	case margin:
		m.out = outMargins
	case !classifier:
		m.out = outPredictions
	case l.obj.transform == softprob || l.obj.transform == softmaxIndex:
		m.out = outMultiClass
	case l.numGroup > 1:
		m.out = outMultiLabel
	default:
		m.out = outBinary
	}

	if f := l.forest; f != nil {
		m.ntrees = len(f.roots)
		// The scikit-learn wrapper predicts with the best iteration of
		// early stopping.
		if s, ok := l.attributes["best_iteration"]; ok && sklearn {
			best, err := strconv.Atoi(s)
			if err != nil || best < 0 {
				return nil, fmt.Errorf("%w: attribute best_iteration %q is not an iteration", runtime.ErrInvalidModel, s)
			}
			if best+1 < len(f.indptr) {
				m.ntrees = f.indptr[best+1]
			}
		}
	}

	names := l.featureNames
	if len(names) != l.numFeature {
		names = nil
	}
	m.sig.Inputs = []runtime.TensorSpec{{
		Name: "input", DType: tensor.Float32, Shape: []int64{-1, int64(l.numFeature)}, Labels: names,
	}}
	g := int64(l.numGroup)
	switch m.out {
	case outPredictions, outMargins:
		shape := []int64{-1}
		if l.numGroup > 1 && (l.obj.transform != softmaxIndex || m.out == outMargins) {
			shape = []int64{-1, g}
		}
		m.sig.Outputs = []runtime.TensorSpec{{Name: "predictions", DType: tensor.Float32, Shape: shape}}
	case outBinary:
		m.sig.Outputs = []runtime.TensorSpec{
			{Name: "label", DType: tensor.Int64, Shape: []int64{-1}},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 2}, Labels: []string{"0", "1"}},
		}
	case outMultiClass:
		labels := make([]string, l.numGroup)
		for i := range labels {
			labels[i] = strconv.Itoa(i)
		}
		m.sig.Outputs = []runtime.TensorSpec{
			{Name: "label", DType: tensor.Int64, Shape: []int64{-1}},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{-1, g}, Labels: labels},
		}
	case outMultiLabel:
		m.sig.Outputs = []runtime.TensorSpec{
			{Name: "label", DType: tensor.Int64, Shape: []int64{-1, g}},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{-1, g}},
		}
	}
	return m, nil
}

// Signature returns the model's input and outputs.
func (m *Model) Signature() runtime.Signature { return m.sig }

// Close releases nothing; a Model holds only memory.
func (m *Model) Close() error { return nil }

// Objective is the model's objective, e.g. "binary:logistic".
func (m *Model) Objective() string { return m.l.obj.name }

// NumFeature is the width of the model's input.
func (m *Model) NumFeature() int { return m.l.numFeature }

// FeatureNames are the feature names saved with the model (nil when the
// model has none).
func (m *Model) FeatureNames() []string { return m.sig.Inputs[0].Labels }

// Categories are, for each feature trained on a pandas category column,
// its categories in code order (category code i is Categories()[f][i]);
// nil for other features, and nil altogether for models without XGBoost
// 3.1's category container. A caller with category values rather than
// codes maps them through it.
func (m *Model) Categories() [][]string { return m.l.categories }

// FeatureTypes are the feature types saved with the model ("q", "float",
// "int", "i" are numeric, "c" categorical; nil when the model has none).
func (m *Model) FeatureTypes() []string { return m.l.featureTypes }
