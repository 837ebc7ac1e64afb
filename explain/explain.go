// Package explain explains model predictions with SHAP values: per row,
// how much each input feature moved the model's output away from its
// expected value, so that expected value + Σ values = the output.
//
// Three methods, picked per model by New:
//
//   - "tree_path_dependent": exact path-dependent TreeSHAP over the trees
//     of an XGBoost or LightGBM model (see explain/tree), in the raw
//     margin space (log-odds for a binary classifier, per-class margins
//     for multi-class), what shap.TreeExplainer(model).shap_values(X)
//     returns. It needs no background data.
//   - "tree_interventional": exact interventional TreeSHAP over a tree
//     ensemble without covers (ONNX TreeEnsemble* from skl2onnx or
//     onnxmltools), against background data, in the ensemble's raw score
//     space, what shap.TreeExplainer(model, data,
//     feature_perturbation="interventional") returns.
//   - "kernel": Kernel SHAP for any runtime.Model (Lundberg and Lee, 2017)
//     against background data, on the model's output (probabilities for a
//     classifier), what shap.KernelExplainer(f, data) returns. Up to
//     ExactFeatures varying features every coalition is evaluated and the
//     values are exact Shapley values of the game v(S) = E_background[f(x_S,
//     z_rest)]; beyond, coalitions are sampled (with a seed) and the values
//     are the weighted least-squares solution with the efficiency
//     constraint.
//
// Importance averages |SHAP| over rows into a global feature importance,
// which StoreImportance records on a registered model version. NewHandler
// serves POST /endpoints/{endpoint}/explain.
package explain

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// The methods.
const (
	MethodTreePathDependent  = "tree_path_dependent"
	MethodTreeInterventional = "tree_interventional"
	MethodKernel             = "kernel"
)

// Forester is implemented by models whose trees can be explained exactly
// (the xgboost, lightgbm and onnx runtimes' models).
type Forester = tree.Forester

// Errors.
var (
	// ErrNoBackground: the method needs background data and none was
	// given.
	ErrNoBackground = errors.New("background data needed")
	// ErrInvalidInput: the rows to explain (or the background) do not fit
	// the model.
	ErrInvalidInput = errors.New("invalid input")
	// ErrTooLarge: the request would take more work than the limits allow.
	ErrTooLarge = errors.New("explanation too large")
	// ErrNotApplicable: the method asked for does not apply to the model.
	ErrNotApplicable = errors.New("method not applicable")
)

// Defaults.
const (
	// DefaultMaxBackground is how many background rows are kept (more are
	// summarised: sampled for trees, k-means for Kernel SHAP).
	DefaultMaxBackground = 100
	// DefaultKernelBackground is the default for Kernel SHAP, whose cost is
	// linear in the background rows (shap suggests summarising to ~10-100).
	DefaultKernelBackground = 20
	// ExactFeatures is the most varying features Kernel SHAP enumerates
	// every coalition of (2^12 = 4096 coalitions), when NSamples allows.
	ExactFeatures = 12
)

// Options configure New.
type Options struct {
	// Method forces a method: "tree" (path-dependent when the trees have
	// covers, else interventional), "kernel", or one of the Method
	// constants; "" picks: trees when the model is a tree ensemble, else
	// Kernel SHAP.
	Method string
	// Background are rows the model is explained against (inputs as for
	// Predict); needed by the interventional and kernel methods.
	Background []*tensor.Tensor
	// MaxBackground bounds the background rows kept (0: the defaults).
	MaxBackground int
	// NSamples is Kernel SHAP's budget of coalitions per row (0: shap's
	// default, 2·M + 2048 for M varying features).
	NSamples int
	// Seed makes sampling (background, coalitions) reproducible.
	Seed uint64
	// FeatureNames name the features (one per input column) when the
	// model does not, or better (from an MLflow column signature).
	FeatureNames []string
	// Output names the model output Kernel SHAP explains ("" picks the
	// first floating-point output: probabilities rather than labels).
	Output string
	// Workers bounds the goroutines (0: GOMAXPROCS).
	Workers int
}

// Explainer explains one model's predictions. It is safe for concurrent
// use.
type Explainer struct {
	method       string
	features     []string
	named        bool // the names come from the model or the options
	outputs      []string
	expected     []float64
	workers      int
	nf           int
	pathDep      *tree.PathDependent
	intervention *tree.Interventional
	kernel       *kernelExplainer
}

// Explanation is the SHAP values of some rows.
type Explanation struct {
	Method       string
	FeatureNames []string
	// OutputNames names the outputs explained (classes, targets); one
	// name, possibly "", for a single output.
	OutputNames []string
	// Expected is the expected output (shap's expected_value), per output.
	Expected []float64
	// Values are laid out [row][feature][output].
	Values []float64
	Rows   int
}

// NumFeatures and NumOutputs are the explanation's dimensions.
func (e *Explanation) NumFeatures() int { return len(e.FeatureNames) }

// NumOutputs is the number of outputs explained.
func (e *Explanation) NumOutputs() int { return len(e.Expected) }

// At returns the SHAP value of a row's feature for an output.
func (e *Explanation) At(row, feature, output int) float64 {
	return e.Values[(row*len(e.FeatureNames)+feature)*len(e.Expected)+output]
}

// New builds the explainer of m: see Options and the package
// documentation for how the method is picked.
func New(ctx context.Context, m runtime.Model, opts Options) (*Explainer, error) {
	if opts.MaxBackground < 0 || opts.NSamples < 0 || opts.Workers < 0 {
		return nil, fmt.Errorf("explain: negative MaxBackground, NSamples or Workers")
	}
	var forest *tree.Forest
	var forestErr error
	switch opts.Method {
	case "", "tree", MethodTreePathDependent, MethodTreeInterventional:
		if fm, ok := m.(Forester); ok {
			forest, forestErr = fm.Forest()
		} else {
			forestErr = fmt.Errorf("%w: the model is not a tree ensemble", runtime.ErrUnsupported)
		}
		if forestErr != nil && opts.Method != "" {
			return nil, fmt.Errorf("explain: %w: %s: %w", ErrNotApplicable, opts.Method, forestErr)
		}
	case MethodKernel:
	default:
		return nil, fmt.Errorf("explain: unknown method %q (want tree, %s, %s or %s)", opts.Method, MethodTreePathDependent, MethodTreeInterventional, MethodKernel)
	}
	if forest != nil {
		e, err := newTreeExplainer(ctx, m, forest, opts)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	if forestErr != nil && !errors.Is(forestErr, runtime.ErrUnsupported) {
		return nil, fmt.Errorf("explain: %w", forestErr)
	}
	return newKernelExplainer(ctx, m, opts)
}

func newTreeExplainer(ctx context.Context, m runtime.Model, f *tree.Forest, opts Options) (*Explainer, error) {
	e := &Explainer{workers: opts.Workers, nf: f.NumFeatures}
	sig := m.Signature()
	if len(sig.Inputs) != 1 {
		return nil, fmt.Errorf("explain: %w: a tree ensemble over %d inputs", ErrNotApplicable, len(sig.Inputs))
	}
	e.features, e.named = featureNames(f.NumFeatures, opts.FeatureNames, f.FeatureNames, sig.Inputs[0].Labels)
	e.outputs = f.OutputNames
	if len(e.outputs) != f.NumOutputs {
		e.outputs = genericNames("", f.NumOutputs)
	}
	pathDep := opts.Method != MethodTreeInterventional && f.HasCover()
	if opts.Method == MethodTreePathDependent && !f.HasCover() {
		return nil, fmt.Errorf("explain: %w: %s: %w (explain it with %s and background data)", ErrNotApplicable, opts.Method, tree.ErrNoCover, MethodTreeInterventional)
	}
	if pathDep {
		p, err := tree.NewPathDependent(f)
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		e.method, e.pathDep, e.expected = MethodTreePathDependent, p, p.Expected()
		return e, nil
	}
	if len(opts.Background) == 0 {
		return nil, fmt.Errorf("explain: %w: the %s model's trees carry no covers, so they are explained against background data (interventional TreeSHAP)", ErrNoBackground, f.Source)
	}
	bg, _, err := rowsOf(opts.Background, f.NumFeatures)
	if err != nil {
		return nil, fmt.Errorf("explain: background: %w", err)
	}
	maxBG := opts.MaxBackground
	if maxBG == 0 {
		maxBG = DefaultMaxBackground
	}
	rows := len(bg) / max(f.NumFeatures, 1)
	if f.NumFeatures == 0 {
		rows = 0
	}
	if rows > maxBG {
		bg = sampleRows(bg, rows, f.NumFeatures, maxBG, opts.Seed)
		rows = maxBG
	}
	iv, err := tree.NewInterventional(f, bg, rows, nil)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	e.method, e.intervention, e.expected = MethodTreeInterventional, iv, iv.Expected()
	return e, nil
}

// Method is the method the explainer uses (a Method constant).
func (e *Explainer) Method() string { return e.method }

// FeatureNames names the features explained.
func (e *Explainer) FeatureNames() []string { return e.features }

// NamedByModel reports whether the feature names come from the model (or
// the options) rather than being generic (f0, f1, ...).
func (e *Explainer) NamedByModel() bool { return e.named }

// OutputNames names the outputs explained.
func (e *Explainer) OutputNames() []string { return e.outputs }

// Expected is the expected output per output (shap's expected_value).
func (e *Explainer) Expected() []float64 { return e.expected }

// Evaluations is how many model rows explaining rows rows predicts: 0 for
// the tree methods, which walk the trees instead; rows × coalitions ×
// background rows (at most) for Kernel SHAP. Servers bound it per request.
func (e *Explainer) Evaluations(rows int) float64 {
	if e.kernel == nil {
		return 0
	}
	k := e.kernel
	return float64(rows) * float64(k.budget(len(k.features))) * float64(k.bgRows)
}

// Explain computes the SHAP values of the rows of inputs (as for the
// model's Predict).
func (e *Explainer) Explain(ctx context.Context, inputs []*tensor.Tensor) (*Explanation, error) {
	return e.ExplainProgress(ctx, inputs, nil)
}

// ExplainProgress is Explain calling progress (when not nil, from any
// goroutine) with the number of rows done so far, as Kernel SHAP finishes
// rows; the tree methods report nothing.
func (e *Explainer) ExplainProgress(ctx context.Context, inputs []*tensor.Tensor, progress func(done int)) (*Explanation, error) {
	if e.kernel != nil {
		return e.kernel.explain(ctx, e, inputs, progress)
	}
	x, rows, err := rowsOf(inputs, e.nf)
	if err != nil {
		return nil, err
	}
	k := len(e.expected)
	out := &Explanation{
		Method:       e.method,
		FeatureNames: e.features,
		OutputNames:  e.outputs,
		Expected:     e.expected,
		Values:       make([]float64, rows*e.nf*k),
		Rows:         rows,
	}
	if e.pathDep != nil {
		err = e.pathDep.Values(ctx, x, rows, out.Values, e.workers)
	} else {
		err = e.intervention.Values(ctx, x, rows, out.Values, e.workers)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rowsOf reads the one input of a tree model as float64 rows of nf
// features: [N, nf], or [nf] for one row.
func rowsOf(inputs []*tensor.Tensor, nf int) ([]float64, int, error) {
	if len(inputs) != 1 {
		return nil, 0, fmt.Errorf("%w: the model takes one input, got %d", ErrInvalidInput, len(inputs))
	}
	x := inputs[0]
	if err := x.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	rows := 0
	switch {
	case len(x.Shape) == 2 && x.Shape[1] == int64(nf):
		rows = int(x.Shape[0])
	case len(x.Shape) == 1 && x.Shape[0] == int64(nf):
		rows = 1
	default:
		return nil, 0, fmt.Errorf("%w: input %q has shape %v, the model takes [N, %d]", ErrInvalidInput, x.Name, x.Shape, nf)
	}
	if x.DType == tensor.String {
		return nil, 0, fmt.Errorf("%w: input %q holds strings, the trees take numbers", ErrInvalidInput, x.Name)
	}
	v, err := x.Float64s()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return v, rows, nil
}

// featureNames picks the first list of names of the right length, else
// generic names.
func featureNames(n int, lists ...[]string) ([]string, bool) {
	for _, l := range lists {
		if len(l) == n && n > 0 {
			return l, true
		}
	}
	return genericNames("f", n), false
}

func genericNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	if prefix == "" && n == 1 {
		out[0] = ""
	}
	return out
}
