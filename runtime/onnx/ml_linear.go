package onnx

import "context"

func init() {
	register(mlDomain, "LinearClassifier", newMLLinearClassifier)
	register(mlDomain, "LinearRegressor", newMLLinearRegressor)
}

// mlLinearClassifier is ai.onnx.ml.LinearClassifier: scores = X·Wᵀ + b,
// labels from the raw scores, then the post-transform, as onnxruntime
// computes them (a single coefficient row with two labels is a binary
// model whose scores are written as [1-s, s]).
type mlLinearClassifier struct {
	node    *Node
	coef    []float32
	bias    []float32 // nil: no intercepts, zero bias
	targets int       // 0: derived from the input width
	labels  mlLabels
	post    mlPost
}

func newMLLinearClassifier(n *Node, _ int64) (Kernel, error) {
	coef, err := n.Floats("coefficients")
	if err != nil {
		return nil, err
	}
	if len(coef) == 0 {
		return nil, n.Errorf("attribute \"coefficients\" is required")
	}
	bias, err := n.Floats("intercepts")
	if err != nil {
		return nil, err
	}
	labels, err := mlReadLabels(n, "classlabels_ints", "classlabels_strings")
	if err != nil {
		return nil, err
	}
	post, err := mlParsePost(n)
	if err != nil {
		return nil, err
	}
	if _, err := n.Int("multi_class", 0); err != nil {
		return nil, err
	}
	k := &mlLinearClassifier{node: n, coef: coef, labels: labels, post: post}
	if len(bias) > 0 {
		k.bias = bias
		k.targets = len(bias)
		if len(coef)%k.targets != 0 {
			return nil, n.Errorf("attribute \"coefficients\" has %d values, not a multiple of the %d intercepts", len(coef), k.targets)
		}
		if k.targets == 1 && labels.len() != 2 {
			return nil, n.Errorf("one coefficient row (a binary model) needs exactly 2 class labels, got %d", labels.len())
		}
		if k.targets > 1 && labels.len() < k.targets {
			return nil, n.Errorf("%d class labels for %d score columns", labels.len(), k.targets)
		}
	}
	return k, nil
}

// Run implements Kernel.
func (k *mlLinearClassifier) Run(ctx context.Context, in []Value) ([]Value, error) {
	out := make([]Value, 2)
	if err := k.RunInto(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto writes the outputs into out (the executor's allocation-free
// form of Run).
func (k *mlLinearClassifier) RunInto(_ context.Context, in, res []Value) error {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return err
	}
	rows, cols, err := mlRowsCols(n, x)
	if err != nil {
		return err
	}
	xs, err := mlFloat32s(n, x)
	if err != nil {
		return err
	}
	targets := k.targets
	if targets == 0 {
		if cols == 0 || len(k.coef)%cols != 0 {
			return n.Errorf("input has %d features, which does not divide the %d coefficients", cols, len(k.coef))
		}
		targets = len(k.coef) / cols
		if targets > 1 && k.labels.len() < targets {
			return n.Errorf("%d class labels for %d score columns", k.labels.len(), targets)
		}
	} else if len(k.coef) != targets*cols {
		return n.Errorf("input has %d features, model expects %d", cols, len(k.coef)/targets)
	}
	secondClass := targets == 1 && k.labels.len() == 2
	width := targets
	if secondClass {
		width = 2
	}
	scores := make([]float32, rows*width)
	raw := scores[:rows*targets] // raw scores, packed [rows, targets]
	for i := 0; i < rows; i++ {
		xr := xs[i*cols : (i+1)*cols]
		for j := 0; j < targets; j++ {
			w := k.coef[j*cols : (j+1)*cols]
			var s float64
			if k.bias != nil {
				s = float64(k.bias[j])
			}
			for f, v := range xr {
				s += float64(v) * float64(w[f])
			}
			raw[i*targets+j] = float32(s)
		}
	}
	labels := k.labels.newOutput(rows)
	for i := 0; i < rows; i++ {
		r := raw[i*targets : (i+1)*targets]
		if targets == 1 {
			pos := r[0] > 0
			switch {
			case k.labels.len() == 2 && pos:
				labels.setIndex(k.labels, i, 1)
			case k.labels.len() == 2:
				labels.setIndex(k.labels, i, 0)
			case pos:
				labels.setRaw(i, 1)
			default:
				labels.setRaw(i, 0)
			}
			continue
		}
		best := 0
		for j := 1; j < targets; j++ {
			if r[j] > r[best] {
				best = j
			}
		}
		labels.setIndex(k.labels, i, best)
	}
	switch {
	case targets > 1:
		if k.post != mlPostNone {
			for i := 0; i < rows; i++ {
				mlTransform(k.post, scores[i*targets:(i+1)*targets])
			}
		}
	case k.post == mlPostProbit:
		// onnxruntime transforms the packed raw scores in place and, for a
		// binary model, leaves the second half of the [N, 2] buffer unset.
		for i := range raw {
			raw[i] = mlProbit(raw[i])
		}
	case secondClass:
		for i := rows - 1; i >= 0; i-- {
			mlSecondClass(1, k.post, scores[i], scores[2*i:2*i+2])
		}
	}
	return mlPut(res, labels.tensor(rows), mlFloatTensor(scores, int64(rows), int64(width)))
}

// mlLinearRegressor is ai.onnx.ml.LinearRegressor: Y = X·Wᵀ + b, [N,
// targets] float32.
type mlLinearRegressor struct {
	node    *Node
	coef    []float32
	bias    []float32
	targets int
	post    mlPost
}

func newMLLinearRegressor(n *Node, _ int64) (Kernel, error) {
	coef, err := n.Floats("coefficients")
	if err != nil {
		return nil, err
	}
	if len(coef) == 0 {
		return nil, n.Errorf("attribute \"coefficients\" is required")
	}
	bias, err := n.Floats("intercepts")
	if err != nil {
		return nil, err
	}
	targets, err := n.Int("targets", 1)
	if err != nil {
		return nil, err
	}
	if targets < 1 || int(targets) > len(coef) || len(coef)%int(targets) != 0 {
		return nil, n.Errorf("attribute \"targets\" (%d) does not divide the %d coefficients", targets, len(coef))
	}
	post, err := mlParsePost(n)
	if err != nil {
		return nil, err
	}
	k := &mlLinearRegressor{node: n, coef: coef, targets: int(targets), post: post}
	// onnxruntime uses the intercepts only when there is one per target.
	if len(bias) == int(targets) {
		k.bias = bias
	}
	return k, nil
}

// Run implements Kernel.
func (k *mlLinearRegressor) Run(ctx context.Context, in []Value) ([]Value, error) {
	out := make([]Value, 1)
	if err := k.RunInto(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto writes the outputs into out (the executor's allocation-free
// form of Run).
func (k *mlLinearRegressor) RunInto(_ context.Context, in, res []Value) error {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return err
	}
	rows, cols, err := mlRowsCols(n, x)
	if err != nil {
		return err
	}
	if cols*k.targets != len(k.coef) {
		return n.Errorf("input has %d features, model expects %d", cols, len(k.coef)/k.targets)
	}
	xs, err := mlFloat32s(n, x)
	if err != nil {
		return err
	}
	out := make([]float32, rows*k.targets)
	for i := 0; i < rows; i++ {
		xr := xs[i*cols : (i+1)*cols]
		for j := 0; j < k.targets; j++ {
			w := k.coef[j*cols : (j+1)*cols]
			var s float64
			if k.bias != nil {
				s = float64(k.bias[j])
			}
			for f, v := range xr {
				s += float64(v) * float64(w[f])
			}
			out[i*k.targets+j] = float32(s)
		}
	}
	switch {
	case k.targets > 1 && k.post != mlPostNone:
		for i := 0; i < rows; i++ {
			mlTransform(k.post, out[i*k.targets:(i+1)*k.targets])
		}
	case k.targets == 1 && k.post == mlPostProbit:
		// With one target onnxruntime applies PROBIT only.
		for i, v := range out {
			out[i] = mlProbit(v)
		}
	}
	return mlPut(res, mlFloatTensor(out, int64(rows), int64(k.targets)))
}
