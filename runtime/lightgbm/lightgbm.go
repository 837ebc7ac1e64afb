// Package lightgbm is Kiln's pure-Go runtime for LightGBM text models (the
// format Booster.save_model and model_to_string write, LightGBM 2.x to
// 4.x): gradient-boosted and random-forest tree ensembles with numerical,
// categorical and linear-leaf trees, LightGBM's missing-value rules and the
// objectives' output transforms. It registers the runtime backend
// "lightgbm"; Parse gives direct access to a compiled Booster.
//
// A model's signature has one input, "input", of shape [-1, features] and
// type FP32 (FP64, integer and boolean inputs are accepted and converted;
// categorical features are given as their integer codes). The outputs
// mirror MLflow's lightgbm pyfunc: "predictions" for boosters, regressors
// and rankers (FP32 [N], or [N, classes] for a multiclass booster), and
// "label" (INT64 [N], the class index) with "probabilities" (FP32 [N,
// classes], two columns for a binary classifier) when Source.Options
// carries model_class lightgbm.sklearn.LGBMClassifier.
package lightgbm

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

func init() { runtime.Register(Backend{}) }

// DefaultFile is the model file inside an MLflow lightgbm flavor directory.
const DefaultFile = "model.lgb"

// Backend is the "lightgbm" runtime backend. Source.Path is a LightGBM text
// model file, or a directory holding one (an MLflow lightgbm flavor
// directory). Source.Options may carry the flavor's settings:
//
//   - "data" (string): the model file's name inside the directory
//     (default model.lgb);
//   - "model_class" (string): lightgbm.basic.Booster (the default),
//     lightgbm.sklearn.LGBMClassifier, LGBMRegressor, LGBMRanker or LGBMModel.
type Backend struct{}

// Name returns "lightgbm".
func (Backend) Name() string { return "lightgbm" }

// Load reads, parses and compiles the model.
func (Backend) Load(ctx context.Context, src runtime.Source) (runtime.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := optString(src.Options, "data")
	if err != nil {
		return nil, err
	}
	class, err := optString(src.Options, "model_class")
	if err != nil {
		return nil, err
	}
	classifier, err := isClassifier(class)
	if err != nil {
		return nil, err
	}
	dir, err := isDir(src)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	name := ""
	where := src.Path
	if dir {
		name = DefaultFile
		if data != "" {
			name = data
		}
		where = joinPath(src, name)
	}
	if strings.HasSuffix(name, ".pkl") || strings.HasSuffix(src.Path, ".pkl") {
		return nil, fmt.Errorf("lightgbm: %s: %w: a pickled scikit-learn model; this runtime reads LightGBM text models (save the booster with booster_.save_model, or serve the pickle with the python runtime)", where, runtime.ErrUnsupported)
	}
	raw, err := src.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	b, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %s: %w", where, err)
	}
	return newModel(b, classifier, class)
}

func optString(opts map[string]any, key string) (string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("lightgbm: option %q is a %T, want a string", key, v)
	}
	return s, nil
}

// isClassifier tells the scikit-learn classifier wrapper from the classes
// whose pyfunc returns the booster's predictions.
func isClassifier(class string) (bool, error) {
	short := class[strings.LastIndexByte(class, '.')+1:]
	switch short {
	case "LGBMClassifier":
		return true, nil
	case "", "Booster", "LGBMRegressor", "LGBMRanker", "LGBMModel":
		return false, nil
	}
	return false, fmt.Errorf("lightgbm: %w: model_class %q", runtime.ErrUnsupported, class)
}

func isDir(src runtime.Source) (bool, error) {
	var fi fs.FileInfo
	var err error
	if src.FS != nil {
		fi, err = fs.Stat(src.FS, src.Path)
	} else {
		fi, err = os.Stat(src.Path)
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

func joinPath(src runtime.Source, name string) string {
	if src.FS != nil {
		return path.Join(src.Path, name)
	}
	return filepath.Join(src.Path, name)
}

// model is a loaded LightGBM model behind the runtime.Model interface.
type model struct {
	b          *Booster
	sig        runtime.Signature
	accept     runtime.Signature // sig with the input type left open, for MatchInputs
	classifier bool
	width      int // columns of the probabilities/predictions output
}

func newModel(b *Booster, classifier bool, class string) (*model, error) {
	m := &model{b: b, classifier: classifier, width: b.treesPerIter}
	nf := int64(b.numFeatures)
	in := runtime.TensorSpec{Name: "input", DType: tensor.Float32, Shape: []int64{-1, nf}, Labels: b.FeatureNames()}
	m.sig.Inputs = []runtime.TensorSpec{in}
	in.DType = tensor.Invalid
	m.accept.Inputs = []runtime.TensorSpec{in}
	if classifier {
		switch b.objective.name {
		case "binary":
			m.width = 2
		case "multiclass", "multiclassova":
		default:
			return nil, fmt.Errorf("lightgbm: %w: model_class %s with objective %q (a classifier needs binary, multiclass or multiclassova)", runtime.ErrUnsupported, class, b.objective.name)
		}
		m.sig.Outputs = []runtime.TensorSpec{
			{Name: "label", DType: tensor.Int64, Shape: []int64{-1}},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{-1, int64(m.width)}},
		}
		return m, nil
	}
	shape := []int64{-1}
	if m.width > 1 {
		shape = []int64{-1, int64(m.width)}
	}
	m.sig.Outputs = []runtime.TensorSpec{{Name: "predictions", DType: tensor.Float32, Shape: shape}}
	return m, nil
}

func (m *model) Signature() runtime.Signature { return m.sig }

func (m *model) Close() error { return nil }

// Booster returns the compiled model.
func (m *model) Booster() *Booster { return m.b }

// stackFloats is the scratch size Predict keeps on the stack.
const stackFloats = 256

func (m *model) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in, err := runtime.MatchInputs(m.accept, inputs)
	if err != nil {
		return nil, err
	}
	x := in[0]
	if x.DType == tensor.Bool || x.DType == tensor.Float16 {
		if x, err = tensor.Cast(x, tensor.Float64); err != nil {
			return nil, fmt.Errorf("%w: %w", runtime.ErrInvalidInput, err)
		}
	}
	rows := int(x.Shape[0])
	nf, k := m.b.numFeatures, m.b.treesPerIter

	var label []int64
	values := make([]float32, rows*m.width)
	if m.classifier {
		label = make([]int64, rows)
	}

	var stack [stackFloats]float64
	var buf []float64
	if nf+k <= stackFloats {
		buf = stack[:nf+k]
	} else {
		buf = make([]float64, nf+k)
	}
	e := evaluator{m: m, row: buf[:nf], score: buf[nf:], values: values, label: label}
	switch d := x.Data.(type) {
	case []float32:
		err = evalRows(ctx, &e, d, rows)
	case []float64:
		err = evalRows(ctx, &e, d, rows)
	case []int64:
		err = evalRows(ctx, &e, d, rows)
	case []int32:
		err = evalRows(ctx, &e, d, rows)
	case []int16:
		err = evalRows(ctx, &e, d, rows)
	case []int8:
		err = evalRows(ctx, &e, d, rows)
	case []uint64:
		err = evalRows(ctx, &e, d, rows)
	case []uint32:
		err = evalRows(ctx, &e, d, rows)
	case []uint16:
		err = evalRows(ctx, &e, d, rows)
	case []uint8:
		err = evalRows(ctx, &e, d, rows)
	default:
		return nil, fmt.Errorf("%w: input %q has datatype %v, model expects numbers", runtime.ErrInvalidInput, m.sig.Inputs[0].Name, x.DType)
	}
	if err != nil {
		return nil, err
	}
	if m.classifier {
		return []*tensor.Tensor{
			{Name: "label", DType: tensor.Int64, Shape: []int64{int64(rows)}, Data: label},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{int64(rows), int64(m.width)}, Data: values},
		}, nil
	}
	shape := []int64{int64(rows)}
	if m.width > 1 {
		shape = append(shape, int64(m.width))
	}
	return []*tensor.Tensor{{Name: "predictions", DType: tensor.Float32, Shape: shape, Data: values}}, nil
}

// evaluator carries one Predict call's scratch space and outputs.
type evaluator struct {
	m          *model
	row, score []float64
	values     []float32
	label      []int64
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// ctxCheckRows is how many rows Predict evaluates between context checks.
const ctxCheckRows = 1024

func evalRows[T number](ctx context.Context, e *evaluator, data []T, rows int) error {
	nf := len(e.row)
	for r := 0; r < rows; r++ {
		if r%ctxCheckRows == ctxCheckRows-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		src := data[r*nf : (r+1)*nf]
		for j, v := range src {
			e.row[j] = clampZero(float64(v))
		}
		e.emit(r)
	}
	return nil
}

// emit predicts the row in e.row and writes output row r.
func (e *evaluator) emit(r int) {
	b := e.m.b
	b.Predict(e.row, e.score)
	w := e.m.width
	out := e.values[r*w : (r+1)*w]
	if !e.m.classifier {
		for i, s := range e.score {
			out[i] = float32(s)
		}
		return
	}
	if len(e.score) == 1 { // binary: [1-p, p], label 1 when p is the larger
		p := e.score[0]
		out[0], out[1] = float32(1-p), float32(p)
		if p > 1-p {
			e.label[r] = 1
		} else {
			e.label[r] = 0
		}
		return
	}
	best := 0
	for i, s := range e.score {
		out[i] = float32(s)
		if s > e.score[best] {
			best = i
		}
	}
	e.label[r] = int64(best)
}

var _ runtime.Model = (*model)(nil)
