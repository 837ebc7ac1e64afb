package onnx

import (
	"context"
	"math"
)

func init() {
	register(mlDomain, "SVMClassifier", newMLSVMClassifier)
	register(mlDomain, "SVMRegressor", newMLSVMRegressor)
}

type mlKernel uint8

const (
	mlKernelLinear mlKernel = iota
	mlKernelPoly
	mlKernelRBF
	mlKernelSigmoid
)

// mlSVMKernel is the kernel function shared by SVMClassifier and
// SVMRegressor, in onnxruntime's float32 arithmetic.
type mlSVMKernel struct {
	kind                 mlKernel
	gamma, coef0, degree float32
}

func mlParseKernel(n *Node) (mlSVMKernel, error) {
	s, err := n.String("kernel_type", "LINEAR")
	if err != nil {
		return mlSVMKernel{}, err
	}
	var k mlSVMKernel
	switch s {
	case "LINEAR":
		k.kind = mlKernelLinear
	case "POLY":
		k.kind = mlKernelPoly
	case "RBF":
		k.kind = mlKernelRBF
	case "SIGMOID":
		k.kind = mlKernelSigmoid
	default:
		return mlSVMKernel{}, n.Errorf("attribute kernel_type: unknown value %q (want LINEAR, POLY, RBF or SIGMOID)", s)
	}
	params, err := n.Floats("kernel_params")
	if err != nil {
		return mlSVMKernel{}, err
	}
	if len(params) != 0 && len(params) != 3 {
		return mlSVMKernel{}, n.Errorf("attribute \"kernel_params\" has %d values, want 3 (gamma, coef0, degree)", len(params))
	}
	if len(params) == 3 {
		k.gamma, k.coef0, k.degree = params[0], params[1], params[2]
	}
	return k, nil
}

// eval computes the kernel between x and the support vector sv.
func (k *mlSVMKernel) eval(x, sv []float32) float32 {
	if k.kind == mlKernelRBF {
		var sum float32
		for i, v := range x {
			d := v - sv[i]
			sum += d * d
		}
		return float32(math.Exp(float64(-k.gamma * sum)))
	}
	var dot float64
	for i, v := range x {
		dot += float64(v) * float64(sv[i])
	}
	switch k.kind {
	case mlKernelPoly:
		b := k.gamma*float32(dot) + k.coef0
		switch k.degree {
		case 2:
			return b * b
		case 3:
			return b * b * b
		}
		return float32(math.Pow(float64(b), float64(k.degree)))
	case mlKernelSigmoid:
		return float32(math.Tanh(float64(k.gamma*float32(dot) + k.coef0)))
	}
	return float32(dot)
}

// mlSVMClassifier is ai.onnx.ml.SVMClassifier as onnxruntime computes it:
// one-vs-one decisions with votes for the label, Platt-scaled pairwise
// probabilities coupled into class probabilities when prob_a/prob_b are
// given, or a liblinear model (no support vectors).
type mlSVMClassifier struct {
	node        *Node
	kernel      mlSVMKernel
	labels      mlLabels
	post        mlPost
	svc         bool // support vectors (libsvm) rather than liblinear
	classes     int
	features    int
	vectors     int
	perClass    []int
	start       []int
	coef        []float32
	rho         []float32
	probA       []float32
	probB       []float32
	sv          []float32
	allPositive bool
}

func newMLSVMClassifier(n *Node, _ int64) (Kernel, error) {
	kernel, err := mlParseKernel(n)
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
	k := &mlSVMClassifier{node: n, kernel: kernel, labels: labels, post: post, classes: labels.len()}
	for _, a := range []struct {
		name string
		dst  *[]float32
	}{{"coefficients", &k.coef}, {"rho", &k.rho}, {"prob_a", &k.probA}, {"prob_b", &k.probB}, {"support_vectors", &k.sv}} {
		if *a.dst, err = n.Floats(a.name); err != nil {
			return nil, err
		}
	}
	if len(k.coef) == 0 {
		return nil, n.Errorf("attribute \"coefficients\" is required")
	}
	if len(k.rho) == 0 {
		return nil, n.Errorf("attribute \"rho\" is required")
	}
	if len(k.probA) != len(k.probB) {
		return nil, n.Errorf("attributes \"prob_a\" (%d values) and \"prob_b\" (%d values) differ in length", len(k.probA), len(k.probB))
	}
	perClass, err := n.Ints("vectors_per_class")
	if err != nil {
		return nil, err
	}
	for _, c := range perClass {
		if c < 0 || c > math.MaxInt32 {
			return nil, n.Errorf("attribute \"vectors_per_class\" holds %d", c)
		}
		k.start = append(k.start, k.vectors)
		k.perClass = append(k.perClass, int(c))
		k.vectors += int(c)
	}
	k.allPositive = true
	for _, c := range k.coef {
		if c < 0 {
			k.allPositive = false
		}
	}
	nc := k.classes
	if k.vectors > 0 {
		k.svc = true
		if nc < 2 {
			return nil, n.Errorf("%d class label(s); a support vector classifier needs at least 2", nc)
		}
		if len(perClass) != nc {
			return nil, n.Errorf("attribute \"vectors_per_class\" has %d values for %d class labels", len(perClass), nc)
		}
		if len(k.sv)%k.vectors != 0 || len(k.sv) == 0 {
			return nil, n.Errorf("attribute \"support_vectors\" has %d values, not a multiple of the %d support vectors", len(k.sv), k.vectors)
		}
		k.features = len(k.sv) / k.vectors
		pairs := nc * (nc - 1) / 2
		if len(k.coef) < (nc-1)*k.vectors {
			return nil, n.Errorf("attribute \"coefficients\" has %d values, want %d ((classes-1) × support vectors)", len(k.coef), (nc-1)*k.vectors)
		}
		if len(k.rho) < pairs {
			return nil, n.Errorf("attribute \"rho\" has %d values, want one per class pair (%d)", len(k.rho), pairs)
		}
		if len(k.probA) > 0 && len(k.probA) < pairs {
			return nil, n.Errorf("attribute \"prob_a\" has %d values, want one per class pair (%d)", len(k.probA), pairs)
		}
	} else {
		if len(k.coef)%nc != 0 {
			return nil, n.Errorf("attribute \"coefficients\" has %d values, not a multiple of the %d classes", len(k.coef), nc)
		}
		k.features = len(k.coef) / nc
		k.kernel = mlSVMKernel{kind: mlKernelLinear}
	}
	return k, nil
}

func (k *mlSVMClassifier) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	rows, cols, err := mlRowsCols(n, x)
	if err != nil {
		return nil, err
	}
	if cols != k.features {
		return nil, n.Errorf("input has %d features, model expects %d", cols, k.features)
	}
	xs, err := mlFloat32s(n, x)
	if err != nil {
		return nil, err
	}
	nc := k.classes
	pairs := nc * (nc - 1) / 2
	haveProba := len(k.probA) > 0
	width := nc
	if k.svc && !haveProba {
		width = 2
		if nc > 2 {
			width = pairs
		}
	}
	scores := make([]float32, rows*width)
	labels := k.labels.newOutput(rows)
	var kern, dec, probs2 []float32
	var votes []int
	if k.svc {
		kern = make([]float32, k.vectors)
		dec = make([]float32, pairs)
		votes = make([]int, nc)
		if haveProba {
			probs2 = make([]float32, nc*nc)
		}
	}
	for i := 0; i < rows; i++ {
		xr := xs[i*cols : (i+1)*cols]
		z := scores[i*width : (i+1)*width]
		if !k.svc {
			for c := 0; c < nc; c++ {
				w := k.coef[c*cols : (c+1)*cols]
				s := float64(k.rho[0])
				for f, v := range xr {
					s += float64(v) * float64(w[f])
				}
				z[c] = float32(s)
			}
			best := 0
			for c := 1; c < nc; c++ {
				if z[c] > z[best] {
					best = c
				}
			}
			k.chooseClass(labels, i, z[best], best, pairs == 1, false)
			if nc > 1 {
				mlTransform(k.post, z)
			} else if k.post == mlPostProbit {
				z[0] = mlProbit(z[0])
			}
			continue
		}
		for v := 0; v < k.vectors; v++ {
			kern[v] = k.kernel.eval(xr, k.sv[v*cols:(v+1)*cols])
		}
		clear(votes)
		idx := 0
		for a := 0; a < nc-1; a++ {
			for b := a + 1; b < nc; b++ {
				var sum float64
				ca := k.coef[(b-1)*k.vectors+k.start[a]:]
				for m := 0; m < k.perClass[a]; m++ {
					sum += float64(ca[m] * kern[k.start[a]+m])
				}
				cb := k.coef[a*k.vectors+k.start[b]:]
				for m := 0; m < k.perClass[b]; m++ {
					sum += float64(cb[m] * kern[k.start[b]+m])
				}
				sum += float64(k.rho[idx])
				dec[idx] = float32(sum)
				if sum > 0 {
					votes[a]++
				} else {
					votes[b]++
				}
				idx++
			}
		}
		best := 0
		for c := 1; c < nc; c++ {
			if votes[c] > votes[best] {
				best = c
			}
		}
		k.chooseClass(labels, i, 0, best, pairs == 1, haveProba)
		switch {
		case haveProba:
			clear(probs2)
			idx := 0
			for a := 0; a < nc-1; a++ {
				for b := a + 1; b < nc; b++ {
					v := 1 - mlLogistic(dec[idx]*k.probA[idx]+k.probB[idx])
					v = min(max(v, 1e-7), 1-1e-7)
					probs2[a*nc+b] = v
					probs2[b*nc+a] = 1 - v
					idx++
				}
			}
			mlCoupleProbabilities(nc, probs2, z)
			mlTransform(k.post, z)
		case nc <= 2:
			s := dec[0]
			if k.post == mlPostProbit {
				z[0], z[1] = mlProbit(s), 0
			} else if k.post == mlPostNone {
				mlSecondClass(2, k.post, s, z)
			} else {
				mlSecondClass(0, k.post, s, z)
			}
		default:
			copy(z, dec)
			mlTransform(k.post, z)
		}
	}
	return []Value{labels.tensor(rows), mlFloatTensor(scores, int64(rows), int64(width))}, nil
}

// chooseClass is onnxruntime's ChooseClass for binary models and the
// plain argmax otherwise.
func (k *mlSVMClassifier) chooseClass(out mlLabelOutput, i int, maxWeight float32, best int, binary, haveProba bool) {
	if !binary {
		out.setIndex(k.labels, i, best)
		return
	}
	if k.labels.len() != 2 {
		v := int64(0)
		if maxWeight > 0 {
			v = 1
		}
		out.setRaw(i, v)
		return
	}
	switch {
	case haveProba:
		out.setIndex(k.labels, i, best)
	case k.allPositive && maxWeight >= 0.5, !k.allPositive && maxWeight > 0:
		out.setIndex(k.labels, i, 1)
	default:
		out.setIndex(k.labels, i, best)
	}
}

// mlCoupleProbabilities turns the pairwise probabilities r (an nc × nc
// matrix, r[i][j] = P(i | i or j)) into class probabilities p, by the
// iterative method of Wu, Lin and Weng (libsvm's multiclass_probability),
// in float32 as onnxruntime computes it.
func mlCoupleProbabilities(nc int, r, p []float32) {
	q := make([]float32, nc*nc)
	qp := make([]float32, nc)
	for i := 0; i < nc; i++ {
		p[i] = 1 / float32(nc)
		for j := 0; j < i; j++ {
			q[i*nc+i] += r[j*nc+i] * r[j*nc+i]
			q[i*nc+j] = q[j*nc+i]
		}
		for j := i + 1; j < nc; j++ {
			q[i*nc+i] += r[j*nc+i] * r[j*nc+i]
			q[i*nc+j] = -r[j*nc+i] * r[i*nc+j]
		}
	}
	eps := 0.005 / float32(nc)
	for iter := 0; iter < 100; iter++ {
		var pqp float32
		for i := 0; i < nc; i++ {
			qp[i] = 0
			for j := 0; j < nc; j++ {
				qp[i] += q[i*nc+j] * p[j]
			}
			pqp += p[i] * qp[i]
		}
		var maxErr float32
		for i := 0; i < nc; i++ {
			e := qp[i] - pqp
			if e < 0 {
				e = -e
			}
			if e > maxErr {
				maxErr = e
			}
		}
		if maxErr < eps {
			break
		}
		for i := 0; i < nc; i++ {
			diff := (-qp[i] + pqp) / q[i*nc+i]
			p[i] += diff
			pqp = (pqp + diff*(diff*q[i*nc+i]+2*qp[i])) / (1 + diff) / (1 + diff)
			for j := 0; j < nc; j++ {
				qp[j] = (qp[j] + diff*q[i*nc+j]) / (1 + diff)
				p[j] /= 1 + diff
			}
		}
	}
}

// mlSVMRegressor is ai.onnx.ml.SVMRegressor: Σ coef·K(x, sv) + rho, or a
// linear model without support vectors; one_class gives ±1.
type mlSVMRegressor struct {
	node     *Node
	kernel   mlSVMKernel
	vectors  int
	features int
	coef     []float32
	rho      float32
	sv       []float32
	oneClass bool
}

func newMLSVMRegressor(n *Node, _ int64) (Kernel, error) {
	kernel, err := mlParseKernel(n)
	if err != nil {
		return nil, err
	}
	if _, err := mlParsePost(n); err != nil {
		return nil, err
	}
	k := &mlSVMRegressor{node: n, kernel: kernel}
	vc, err := n.Int("n_supports", 0)
	if err != nil {
		return nil, err
	}
	if vc < 0 || vc > math.MaxInt32 {
		return nil, n.Errorf("attribute \"n_supports\" is %d", vc)
	}
	k.vectors = int(vc)
	if k.coef, err = n.Floats("coefficients"); err != nil {
		return nil, err
	}
	if len(k.coef) == 0 {
		return nil, n.Errorf("attribute \"coefficients\" is required")
	}
	rho, err := n.Floats("rho")
	if err != nil {
		return nil, err
	}
	if len(rho) == 0 {
		return nil, n.Errorf("attribute \"rho\" is required")
	}
	k.rho = rho[0]
	if k.sv, err = n.Floats("support_vectors"); err != nil {
		return nil, err
	}
	one, err := n.Int("one_class", 0)
	if err != nil {
		return nil, err
	}
	k.oneClass = one != 0
	if k.vectors > 0 {
		if len(k.sv) == 0 || len(k.sv)%k.vectors != 0 {
			return nil, n.Errorf("attribute \"support_vectors\" has %d values, not a multiple of n_supports (%d)", len(k.sv), k.vectors)
		}
		if len(k.coef) < k.vectors {
			return nil, n.Errorf("attribute \"coefficients\" has %d values for %d support vectors", len(k.coef), k.vectors)
		}
		k.features = len(k.sv) / k.vectors
	} else {
		k.features = len(k.coef)
		k.kernel = mlSVMKernel{kind: mlKernelLinear}
	}
	return k, nil
}

func (k *mlSVMRegressor) Run(_ context.Context, in []Value) ([]Value, error) {
	n := k.node
	x, err := n.Tensor(in, 0)
	if err != nil {
		return nil, err
	}
	rows, cols, err := mlRowsCols(n, x)
	if err != nil {
		return nil, err
	}
	if cols != k.features {
		return nil, n.Errorf("input has %d features, model expects %d", cols, k.features)
	}
	xs, err := mlFloat32s(n, x)
	if err != nil {
		return nil, err
	}
	out := make([]float32, rows)
	for i := range out {
		xr := xs[i*cols : (i+1)*cols]
		var y float32
		if k.vectors > 0 {
			s := float64(k.rho)
			for v := 0; v < k.vectors; v++ {
				s += float64(k.coef[v]) * float64(k.kernel.eval(xr, k.sv[v*cols:(v+1)*cols]))
			}
			y = float32(s)
		} else {
			s := float64(k.rho)
			for f, v := range xr {
				s += float64(v) * float64(k.coef[f])
			}
			y = float32(s)
		}
		if k.oneClass {
			if y > 0 {
				y = 1
			} else {
				y = -1
			}
		}
		out[i] = y
	}
	return []Value{mlFloatTensor(out, int64(rows), 1)}, nil
}
