package explain

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	kruntime "github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Limits of Kernel SHAP.
const (
	// MaxKernelFeatures bounds the features (input columns) of a model
	// explained with Kernel SHAP.
	MaxKernelFeatures = 512
	// kernelBatch is how many hybrid rows go into one Predict call.
	kernelBatch = 8192
)

// kernelExplainer is Kernel SHAP over a runtime.Model.
type kernelExplainer struct {
	m        kruntime.Model
	sig      kruntime.Signature
	widths   []int // columns per input
	ranks    []int
	features []featureRef
	bg       []*tensor.Tensor // the (summarised) background, in signature order
	bgRows   int
	weights  []float64 // per background row, summing to 1
	out      int       // the output explained
	outWidth int
	nsamples int
	seed     uint64
}

type featureRef struct{ input, col int }

func newKernelExplainer(ctx context.Context, m kruntime.Model, opts Options) (*Explainer, error) {
	sig := m.Signature()
	if len(opts.Background) == 0 {
		return nil, fmt.Errorf("explain: %w: Kernel SHAP explains a model against background data", ErrNoBackground)
	}
	bg, err := kruntime.MatchInputs(sig, opts.Background)
	if err != nil {
		return nil, fmt.Errorf("explain: background: %w: %w", ErrInvalidInput, err)
	}
	k := &kernelExplainer{m: m, sig: sig, nsamples: opts.NSamples, seed: opts.Seed}
	rows := -1
	var names []string
	for i, t := range bg {
		if len(t.Shape) < 1 || len(t.Shape) > 2 {
			return nil, fmt.Errorf("explain: %w: Kernel SHAP explains inputs of shape [N] or [N, C]; input %q has %v", ErrNotApplicable, t.Name, t.Shape)
		}
		if rows >= 0 && int(t.Shape[0]) != rows {
			return nil, fmt.Errorf("explain: background: %w: inputs have %d and %d rows", ErrInvalidInput, rows, t.Shape[0])
		}
		rows = int(t.Shape[0])
		w := 1
		if len(t.Shape) == 2 {
			w = int(t.Shape[1])
		}
		k.widths = append(k.widths, w)
		k.ranks = append(k.ranks, len(t.Shape))
		for j := range w {
			k.features = append(k.features, featureRef{i, j})
			name := sig.Inputs[i].Name
			if w > 1 {
				name = fmt.Sprintf("%s[%d]", name, j)
			}
			names = append(names, name)
		}
	}
	if rows < 1 {
		return nil, fmt.Errorf("explain: %w: the background has no rows", ErrNoBackground)
	}
	nf := len(k.features)
	if nf == 0 || nf > MaxKernelFeatures {
		return nil, fmt.Errorf("explain: %w: %d features (Kernel SHAP takes 1 to %d)", ErrNotApplicable, nf, MaxKernelFeatures)
	}
	e := &Explainer{method: MethodKernel, kernel: k, workers: opts.Workers, nf: nf}
	if len(bg) == 1 {
		e.features, e.named = featureNames(nf, opts.FeatureNames, sig.Inputs[0].Labels)
	} else {
		e.features, e.named = featureNames(nf, opts.FeatureNames, names)
	}

	maxBG := opts.MaxBackground
	if maxBG == 0 {
		maxBG = DefaultKernelBackground
	}
	k.bg, k.weights, err = summarise(bg, rows, maxBG, opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("explain: background: %w", err)
	}
	k.bgRows = len(k.weights)

	// The output explained, and the expected value: the weighted mean of
	// the model over the background.
	outs, err := m.Predict(ctx, k.bg)
	if err != nil {
		return nil, fmt.Errorf("explain: predicting the background: %w", err)
	}
	k.out = -1
	for i, o := range outs {
		name := o.Name
		if name == "" && i < len(sig.Outputs) {
			name = sig.Outputs[i].Name
		}
		if opts.Output != "" {
			if name == opts.Output {
				k.out = i
				break
			}
			continue
		}
		if o.DType.IsFloat() && k.out < 0 {
			k.out = i
		}
	}
	if k.out < 0 && opts.Output == "" {
		for i, o := range outs {
			if o.DType.IsInteger() || o.DType == tensor.Bool {
				k.out = i
				break
			}
		}
	}
	if k.out < 0 {
		if opts.Output != "" {
			return nil, fmt.Errorf("explain: %w: the model has no output %q", ErrInvalidInput, opts.Output)
		}
		return nil, fmt.Errorf("explain: %w: the model has no numeric output", ErrNotApplicable)
	}
	o := outs[k.out]
	switch {
	case len(o.Shape) == 1 && int(o.Shape[0]) == k.bgRows:
		k.outWidth = 1
	case len(o.Shape) == 2 && int(o.Shape[0]) == k.bgRows:
		k.outWidth = int(o.Shape[1])
	default:
		return nil, fmt.Errorf("explain: %w: output %q has shape %v for %d rows; Kernel SHAP explains [N] or [N, K] outputs", ErrNotApplicable, o.Name, o.Shape, k.bgRows)
	}
	if k.outWidth < 1 {
		return nil, fmt.Errorf("explain: %w: output %q is empty", ErrNotApplicable, o.Name)
	}
	vals, err := o.Float64s()
	if err != nil {
		return nil, fmt.Errorf("explain: output %q: %w", o.Name, err)
	}
	e.expected = make([]float64, k.outWidth)
	for b := range k.bgRows {
		for j := range k.outWidth {
			e.expected[j] += k.weights[b] * vals[b*k.outWidth+j]
		}
	}
	var labels []string
	if k.out < len(sig.Outputs) {
		labels = sig.Outputs[k.out].Labels
	}
	if len(labels) == k.outWidth && k.outWidth > 1 {
		e.outputs = labels
	} else {
		e.outputs = genericNames("", k.outWidth)
	}
	return e, nil
}

// summarise keeps at most maxRows background rows: k-means centroids for
// numeric data without missing values, else a sample. It returns the rows
// (in signature order) and their weights, summing to 1.
func summarise(bg []*tensor.Tensor, rows, maxRows int, seed uint64) ([]*tensor.Tensor, []float64, error) {
	if rows <= maxRows {
		w := make([]float64, rows)
		for i := range w {
			w[i] = 1 / float64(rows)
		}
		return bg, w, nil
	}
	numeric := true
	var cols []int
	var flat [][]float64
	for _, t := range bg {
		if t.DType == tensor.String || t.DType == tensor.Bool {
			numeric = false
			break
		}
		v, err := t.Float64s()
		if err != nil {
			return nil, nil, err
		}
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				numeric = false
			}
		}
		flat = append(flat, v)
		cols = append(cols, len(v)/rows)
	}
	if !numeric {
		idx := sampleIndices(rows, maxRows, seed)
		out := make([]*tensor.Tensor, len(bg))
		for i, t := range bg {
			var err error
			if out[i], err = gatherRows(t, idx); err != nil {
				return nil, nil, err
			}
		}
		w := make([]float64, maxRows)
		for i := range w {
			w[i] = 1 / float64(maxRows)
		}
		return out, w, nil
	}
	nf := 0
	for _, c := range cols {
		nf += c
	}
	x := make([]float64, 0, rows*nf)
	for r := range rows {
		for i, v := range flat {
			x = append(x, v[r*cols[i]:(r+1)*cols[i]]...)
		}
	}
	cent, counts := kmeans(x, rows, nf, maxRows, seed)
	k := len(counts)
	out := make([]*tensor.Tensor, len(bg))
	off := 0
	for i, t := range bg {
		d := make([]float64, 0, k*cols[i])
		for c := range k {
			d = append(d, cent[c*nf+off:c*nf+off+cols[i]]...)
		}
		off += cols[i]
		shape := append([]int64{int64(k)}, t.Shape[1:]...)
		ct, err := tensor.Cast(&tensor.Tensor{Name: t.Name, DType: tensor.Float64, Shape: shape, Data: d}, t.DType)
		if err != nil {
			return nil, nil, err
		}
		out[i] = ct
	}
	total := 0.0
	for _, c := range counts {
		total += c
	}
	for i := range counts {
		counts[i] /= total
	}
	return out, counts, nil
}

// explain computes Kernel SHAP values for the rows of inputs.
func (k *kernelExplainer) explain(ctx context.Context, e *Explainer, inputs []*tensor.Tensor, progress func(int)) (*Explanation, error) {
	in, err := kruntime.MatchInputs(k.sig, inputs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	rows := -1
	for i, t := range in {
		if len(t.Shape) != k.ranks[i] || (k.ranks[i] == 2 && int(t.Shape[1]) != k.widths[i]) {
			return nil, fmt.Errorf("%w: input %q has shape %v, the background %v", ErrInvalidInput, t.Name, t.Shape, k.bg[i].Shape)
		}
		if t.DType != k.bg[i].DType {
			return nil, fmt.Errorf("%w: input %q has datatype %v, the background %v", ErrInvalidInput, t.Name, t.DType, k.bg[i].DType)
		}
		if rows >= 0 && int(t.Shape[0]) != rows {
			return nil, fmt.Errorf("%w: inputs have %d and %d rows", ErrInvalidInput, rows, t.Shape[0])
		}
		rows = int(t.Shape[0])
	}
	nf, K := len(k.features), k.outWidth
	out := &Explanation{
		Method:       MethodKernel,
		FeatureNames: e.features,
		OutputNames:  e.outputs,
		Expected:     e.expected,
		Values:       make([]float64, rows*nf*K),
		Rows:         rows,
	}
	if rows == 0 {
		return out, nil
	}
	fx, err := k.predictOutput(ctx, in)
	if err != nil {
		return nil, err
	}
	cols := make([]columns, len(in))
	for i := range in {
		if cols[i], err = bindColumns(in[i], k.bg[i], k.widths[i]); err != nil {
			return nil, err
		}
	}
	workers := e.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, rows))
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kw := newKernelWorker(k, cols, e.expected)
			for {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				r := int(next.Add(1) - 1)
				if r >= rows {
					return
				}
				if err := kw.row(ctx, r, fx[r*K:(r+1)*K], out.Values[r*nf*K:(r+1)*nf*K]); err != nil {
					errs[w] = err
					return
				}
				if progress != nil {
					progress(int(done.Add(1)))
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// budget is the coalitions evaluated per row for m features at most.
func (k *kernelExplainer) budget(m int) int {
	ns := k.nsamples
	if ns == 0 {
		ns = 2*m + 2048
	}
	if m <= ExactFeatures && (1<<m)-2 <= ns {
		return 1 << m
	}
	return ns
}

// predictOutput predicts inputs and returns the explained output as
// float64, [rows × outWidth].
func (k *kernelExplainer) predictOutput(ctx context.Context, in []*tensor.Tensor) ([]float64, error) {
	outs, err := k.m.Predict(ctx, in)
	if err != nil {
		return nil, err
	}
	if k.out >= len(outs) {
		return nil, fmt.Errorf("explain: the model returned %d outputs, want at least %d", len(outs), k.out+1)
	}
	o := outs[k.out]
	rows := 0
	if len(in) > 0 && len(in[0].Shape) > 0 {
		rows = int(in[0].Shape[0])
	}
	if o.Len() != rows*k.outWidth {
		return nil, fmt.Errorf("explain: output %q has %d values for %d rows, want %d per row", o.Name, o.Len(), rows, k.outWidth)
	}
	return o.Float64s()
}

// columns binds one input's explained rows and background rows.
type columns struct {
	newData func(rows int) any
	// fill writes row d of dst from explained row xr where take[j], else
	// from background row b.
	fill func(dst any, d, xr, b int, take []bool)
	// differs reports whether explained row xr differs from background row
	// b in column j (NaN equals NaN).
	differs func(xr, b, j int) bool
}

func bindColumns(x, bg *tensor.Tensor, width int) (columns, error) {
	switch xd := x.Data.(type) {
	case []bool:
		return bindTyped(xd, bg.Data.([]bool), width), nil
	case []uint8:
		return bindTyped(xd, bg.Data.([]uint8), width), nil
	case []uint16:
		return bindTyped(xd, bg.Data.([]uint16), width), nil
	case []uint32:
		return bindTyped(xd, bg.Data.([]uint32), width), nil
	case []uint64:
		return bindTyped(xd, bg.Data.([]uint64), width), nil
	case []int8:
		return bindTyped(xd, bg.Data.([]int8), width), nil
	case []int16:
		return bindTyped(xd, bg.Data.([]int16), width), nil
	case []int32:
		return bindTyped(xd, bg.Data.([]int32), width), nil
	case []int64:
		return bindTyped(xd, bg.Data.([]int64), width), nil
	case []float32:
		return bindTyped(xd, bg.Data.([]float32), width), nil
	case []float64:
		return bindTyped(xd, bg.Data.([]float64), width), nil
	case []string:
		return bindTyped(xd, bg.Data.([]string), width), nil
	}
	return columns{}, fmt.Errorf("%w: input %q: datatype %v", ErrInvalidInput, x.Name, x.DType)
}

func bindTyped[T comparable](x, bg []T, width int) columns {
	return columns{
		newData: func(rows int) any { return make([]T, rows*width) },
		fill: func(dst any, d, xr, b int, take []bool) {
			row := dst.([]T)[d*width : (d+1)*width]
			xs, bs := x[xr*width:(xr+1)*width], bg[b*width:(b+1)*width]
			for j := range row {
				if take[j] {
					row[j] = xs[j]
				} else {
					row[j] = bs[j]
				}
			}
		},
		differs: func(xr, b, j int) bool {
			v, w := x[xr*width+j], bg[b*width+j]
			return v != w && !(v != v && w != w) // NaN equals NaN
		},
	}
}

// kernelWorker is one goroutine's scratch space.
type kernelWorker struct {
	k        *kernelExplainer
	cols     []columns
	expected []float64
	batch    []*tensor.Tensor // hybrid rows, one tensor per input
	take     [][]bool         // per input, the columns taken from x
	src      *rand.PCG
	rng      *rand.Rand
}

func newKernelWorker(k *kernelExplainer, cols []columns, expected []float64) *kernelWorker {
	w := &kernelWorker{k: k, cols: cols, expected: expected}
	w.take = make([][]bool, len(cols))
	for i := range cols {
		w.take[i] = make([]bool, k.widths[i])
	}
	return w
}

// row explains explained row r, whose output is fx, into phi
// ([feature][output]).
func (w *kernelWorker) row(ctx context.Context, r int, fx, phi []float64) error {
	k := w.k
	K := k.outWidth
	// The varying features: those where x differs from some background
	// row. The others get 0.
	var varying []int
	for f, ref := range k.features {
		for b := range k.bgRows {
			if w.cols[ref.input].differs(r, b, ref.col) {
				varying = append(varying, f)
				break
			}
		}
	}
	m := len(varying)
	switch m {
	case 0:
		return nil
	case 1:
		for j := range K {
			phi[varying[0]*K+j] = fx[j] - w.expected[j]
		}
		return nil
	}
	ns := k.nsamples
	if ns == 0 {
		ns = 2*m + 2048
	}
	if m <= ExactFeatures && (1<<m)-2 <= ns {
		return w.exact(ctx, r, varying, fx, phi)
	}
	if w.rng == nil {
		w.src = rand.NewPCG(k.seed, 0)
		w.rng = rand.New(w.src)
	}
	w.src.Seed(k.seed, uint64(r)) // reproducible: row r's coalitions follow from the seed and r
	return w.sampled(ctx, r, varying, fx, phi, ns)
}

// exact evaluates every coalition of the m varying features and computes
// their Shapley values: φ_i = Σ_{S ∌ i} |S|!(m-|S|-1)!/m! (v(S∪i) - v(S)),
// with v(∅) the expected value and v(all) the row's output.
func (w *kernelWorker) exact(ctx context.Context, r int, varying []int, fx, phi []float64) error {
	k := w.k
	K := k.outWidth
	m := len(varying)
	n := 1 << m
	masks := make([]bool, (n-2)*m)
	for s := 1; s < n-1; s++ {
		for i := range m {
			masks[(s-1)*m+i] = s&(1<<i) != 0
		}
	}
	v := make([]float64, n*K)
	copy(v[:K], w.expected)
	copy(v[(n-1)*K:], fx)
	if err := w.evaluate(ctx, r, varying, masks, v[K:(n-1)*K]); err != nil {
		return err
	}
	// Shapley weights by coalition size.
	weight := make([]float64, m)
	for s := range m {
		weight[s] = 1 / (float64(m) * binomial(m-1, s))
	}
	for s := range n {
		size := bits.OnesCount(uint(s))
		for i := range m {
			if s&(1<<i) != 0 {
				continue
			}
			with := s | 1<<i
			c := weight[size]
			f := varying[i]
			for j := range K {
				phi[f*K+j] += c * (v[with*K+j] - v[s*K+j])
			}
		}
	}
	return nil
}

func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// sampled is Kernel SHAP with a budget of ns coalitions: whole coalition
// sizes (smallest and largest first, where the kernel puts its weight)
// while the budget allows, the rest sampled in complementary pairs; then
// the weighted least-squares fit of v(S) - E = Σ_{i∈S} φ_i under the
// constraint Σφ = f(x) - E.
func (w *kernelWorker) sampled(ctx context.Context, r int, varying []int, fx, phi []float64, ns int) error {
	k := w.k
	K := k.outWidth
	m := len(varying)
	// The kernel's weight of each size s (1..m-1), normalised.
	mass := make([]float64, m)
	total := 0.0
	for s := 1; s < m; s++ {
		mass[s] = float64(m-1) / (float64(s) * float64(m-s))
		total += mass[s]
	}
	for s := range mass {
		mass[s] /= total
	}
	var masks []bool
	var cw []float64 // coalition weights
	index := map[string]int{}
	add := func(mask []bool, wt float64) {
		key := string(boolBytes(mask))
		if i, ok := index[key]; ok {
			cw[i] += wt
			return
		}
		index[key] = len(cw)
		masks = append(masks, mask...)
		cw = append(cw, wt)
	}
	left, leftMass := ns, 1.0
	s := 1
	for ; s <= m/2; s++ {
		pair := m-s != s
		count := binomial(m, s)
		if pair {
			count *= 2
		}
		if count > float64(left) {
			break
		}
		per := mass[s] / binomial(m, s)
		mask := make([]bool, m)
		forEachSubset(m, s, mask, func() {
			add(mask, per)
			if pair {
				comp := make([]bool, m)
				for i := range mask {
					comp[i] = !mask[i]
				}
				add(comp, per)
			}
		})
		left -= int(count)
		leftMass -= mass[s]
		if pair {
			leftMass -= mass[m-s]
		}
	}
	if left > 0 && s <= m/2 && leftMass > 1e-12 {
		// Sample the remaining sizes s..m-s in complementary pairs.
		var sizes []int
		var cum []float64
		acc := 0.0
		for t := s; t <= m-s; t++ {
			acc += mass[t]
			sizes = append(sizes, t)
			cum = append(cum, acc)
		}
		pairs := max(1, left/2)
		per := leftMass / float64(2*pairs)
		perm := make([]int, m)
		for range pairs {
			u := w.rng.Float64() * acc
			t := sizes[len(sizes)-1]
			for i, c := range cum {
				if u < c {
					t = sizes[i]
					break
				}
			}
			for i := range perm {
				perm[i] = i
			}
			mask := make([]bool, m)
			for i := range t {
				j := i + w.rng.IntN(m-i)
				perm[i], perm[j] = perm[j], perm[i]
				mask[perm[i]] = true
			}
			add(mask, per)
			comp := make([]bool, m)
			for i := range mask {
				comp[i] = !mask[i]
			}
			add(comp, per)
		}
	}
	c := len(cw)
	v := make([]float64, c*K)
	if err := w.evaluate(ctx, r, varying, masks, v); err != nil {
		return err
	}
	// Eliminate the last variable with the constraint and solve the normal
	// equations of the remaining m-1.
	n := m - 1
	a := make([]float64, n*n)
	rhs := make([]float64, n*K)
	xrow := make([]float64, n)
	for ci := range c {
		z := masks[ci*m : (ci+1)*m]
		zl := b2f(z[m-1])
		for i := range n {
			xrow[i] = b2f(z[i]) - zl
		}
		wt := cw[ci]
		for i := range n {
			if xrow[i] == 0 {
				continue
			}
			wx := wt * xrow[i]
			for j := range n {
				a[i*n+j] += wx * xrow[j]
			}
			for o := range K {
				y := v[ci*K+o] - w.expected[o] - zl*(fx[o]-w.expected[o])
				rhs[i*K+o] += wx * y
			}
		}
	}
	sol, err := solve(a, rhs, n, K)
	if err != nil {
		return fmt.Errorf("explain: Kernel SHAP with %d coalitions for %d features: %w (raise NSamples)", c, m, err)
	}
	for o := range K {
		sum := 0.0
		for i := range n {
			phi[varying[i]*K+o] = sol[i*K+o]
			sum += sol[i*K+o]
		}
		phi[varying[n]*K+o] = fx[o] - w.expected[o] - sum
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func boolBytes(m []bool) []byte {
	out := make([]byte, (len(m)+7)/8)
	for i, b := range m {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

// forEachSubset calls fn with mask set to each subset of size s of m
// items, in lexicographic order.
func forEachSubset(m, s int, mask []bool, fn func()) {
	idx := make([]int, s)
	for i := range idx {
		idx[i] = i
	}
	for {
		clear(mask)
		for _, i := range idx {
			mask[i] = true
		}
		fn()
		i := s - 1
		for i >= 0 && idx[i] == m-s+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < s; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// solve solves the symmetric system a·x = b for K right-hand sides by
// Gaussian elimination with partial pivoting (a and b are overwritten).
func solve(a, b []float64, n, K int) ([]float64, error) {
	scale := 0.0
	for _, v := range a {
		scale = max(scale, math.Abs(v))
	}
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r*n+col]) > math.Abs(a[p*n+col]) {
				p = r
			}
		}
		if math.Abs(a[p*n+col]) <= 1e-12*scale {
			return nil, fmt.Errorf("the weighted least-squares system is singular")
		}
		if p != col {
			for j := range n {
				a[col*n+j], a[p*n+j] = a[p*n+j], a[col*n+j]
			}
			for o := range K {
				b[col*K+o], b[p*K+o] = b[p*K+o], b[col*K+o]
			}
		}
		piv := a[col*n+col]
		for r := col + 1; r < n; r++ {
			f := a[r*n+col] / piv
			if f == 0 {
				continue
			}
			for j := col; j < n; j++ {
				a[r*n+j] -= f * a[col*n+j]
			}
			for o := range K {
				b[r*K+o] -= f * b[col*K+o]
			}
		}
	}
	x := make([]float64, n*K)
	for r := n - 1; r >= 0; r-- {
		for o := range K {
			s := b[r*K+o]
			for j := r + 1; j < n; j++ {
				s -= a[r*n+j] * x[j*K+o]
			}
			x[r*K+o] = s / a[r*n+r]
		}
	}
	return x, nil
}

// evaluate computes v(S) = Σ_b weight_b · f(x on S, background row b
// elsewhere) for each coalition (masks: len(v)/K rows of m flags over the
// varying features) into v.
func (w *kernelWorker) evaluate(ctx context.Context, r int, varying []int, masks []bool, v []float64) error {
	k := w.k
	K := k.outWidth
	m := len(varying)
	nc := len(v) / K
	clear(v)
	perBatch := max(1, kernelBatch/k.bgRows)
	for c0 := 0; c0 < nc; c0 += perBatch {
		c1 := min(nc, c0+perBatch)
		n := (c1 - c0) * k.bgRows
		if err := w.ensureBatch(n); err != nil {
			return err
		}
		for c := c0; c < c1; c++ {
			mask := masks[c*m : (c+1)*m]
			for i := range w.take {
				clear(w.take[i])
			}
			for vi, f := range varying {
				if mask[vi] {
					ref := k.features[f]
					w.take[ref.input][ref.col] = true
				}
			}
			for b := range k.bgRows {
				d := (c-c0)*k.bgRows + b
				for i, col := range w.cols {
					col.fill(w.batch[i].Data, d, r, b, w.take[i])
				}
			}
		}
		in := w.batch
		if n != int(in[0].Shape[0]) {
			in = make([]*tensor.Tensor, len(w.batch))
			for i, t := range w.batch {
				in[i] = sliceRows(t, n, k.widths[i])
			}
		}
		out, err := k.predictOutput(ctx, in)
		if err != nil {
			return err
		}
		for c := c0; c < c1; c++ {
			for b := range k.bgRows {
				d := (c-c0)*k.bgRows + b
				wb := k.weights[b]
				for j := range K {
					v[c*K+j] += wb * out[d*K+j]
				}
			}
		}
	}
	return nil
}

// ensureBatch makes the hybrid batch hold at least n rows.
func (w *kernelWorker) ensureBatch(n int) error {
	if w.batch != nil && int(w.batch[0].Shape[0]) >= n {
		return nil
	}
	k := w.k
	w.batch = make([]*tensor.Tensor, len(w.cols))
	for i, col := range w.cols {
		shape := []int64{int64(n)}
		if k.ranks[i] == 2 {
			shape = append(shape, int64(k.widths[i]))
		}
		w.batch[i] = &tensor.Tensor{Name: k.bg[i].Name, DType: k.bg[i].DType, Shape: shape, Data: col.newData(n)}
	}
	return nil
}

// sliceRows returns the first n rows of t, sharing its data.
func sliceRows(t *tensor.Tensor, n, width int) *tensor.Tensor {
	shape := append([]int64{int64(n)}, t.Shape[1:]...)
	var data any
	switch d := t.Data.(type) {
	case []bool:
		data = d[:n*width]
	case []uint8:
		data = d[:n*width]
	case []uint16:
		data = d[:n*width]
	case []uint32:
		data = d[:n*width]
	case []uint64:
		data = d[:n*width]
	case []int8:
		data = d[:n*width]
	case []int16:
		data = d[:n*width]
	case []int32:
		data = d[:n*width]
	case []int64:
		data = d[:n*width]
	case []float32:
		data = d[:n*width]
	case []float64:
		data = d[:n*width]
	case []string:
		data = d[:n*width]
	}
	return &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: shape, Data: data}
}
