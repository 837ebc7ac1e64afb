package explain_test

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// funcModel is a runtime.Model over one FP64 [N, F] input "x" computing
// one output "y" [N] row by row.
type funcModel struct {
	nf int
	f  func(row []float64) float64
}

func (m funcModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs:  []runtime.TensorSpec{{Name: "x", DType: tensor.Float64, Shape: []int64{-1, int64(m.nf)}}},
		Outputs: []runtime.TensorSpec{{Name: "y", DType: tensor.Float64, Shape: []int64{-1}}},
	}
}

func (m funcModel) Predict(_ context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	d := x[0].Data.([]float64)
	rows := int(x[0].Shape[0])
	out := make([]float64, rows)
	for r := range rows {
		out[r] = m.f(d[r*m.nf : (r+1)*m.nf])
	}
	return []*tensor.Tensor{{Name: "y", DType: tensor.Float64, Shape: []int64{int64(rows)}, Data: out}}, nil
}

func (funcModel) Close() error { return nil }

func randMatrix(rng *rand.Rand, rows, nf int) *tensor.Tensor {
	d := make([]float64, rows*nf)
	for i := range d {
		d[i] = math.Round(rng.NormFloat64()*100) / 100
	}
	return &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{int64(rows), int64(nf)}, Data: d}
}

// bruteShapley is the Shapley value of v(S) = mean_b f(x_S, bg_b rest).
func bruteShapley(m funcModel, x []float64, bg []float64, bgRows int) []float64 {
	nf := m.nf
	v := make([]float64, 1<<nf)
	h := make([]float64, nf)
	for s := range v {
		for b := range bgRows {
			for j := range nf {
				if s&(1<<j) != 0 {
					h[j] = x[j]
				} else {
					h[j] = bg[b*nf+j]
				}
			}
			v[s] += m.f(h) / float64(bgRows)
		}
	}
	phi := make([]float64, nf)
	fact := func(n int) float64 { return math.Gamma(float64(n + 1)) }
	for i := range nf {
		for s := range v {
			if s&(1<<i) != 0 {
				continue
			}
			k := bits.OnesCount(uint(s))
			phi[i] += fact(k) * fact(nf-k-1) / fact(nf) * (v[s|1<<i] - v[s])
		}
	}
	return phi
}

func TestKernelSHAP(t *testing.T) {
	ctx := context.Background()
	interact := func(r []float64) float64 {
		s := r[0]*r[1] + math.Sin(r[2]) + r[3]*r[4]*r[5]
		for j, v := range r[6:] {
			s += float64(j+1) * 0.1 * v * v
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		nf       int
		nsamples int
		f        func([]float64) float64
		linear   []float64 // the weights, for the closed form
	}{
		{name: "linear exact", nf: 6, linear: []float64{1, -2, 0.5, 3, 0, 1.5}},
		{name: "linear sampled", nf: 24, nsamples: 400, linear: []float64{1, -2, 0.5, 3, 0, 1.5, 2, -1, 0.25, 4, 1, 1, -3, 2, 0.5, 0.5, 1, -1, 2, 2, 1, -0.5, 0.1, 5}},
		{name: "interactions exact", nf: 8, f: interact},
		{name: "interactions, every coalition through the least squares", nf: 13, nsamples: 1 << 13, f: interact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, uint64(tc.nf)))
			f := tc.f
			if tc.linear != nil {
				w := tc.linear
				f = func(r []float64) float64 {
					s := 0.5
					for j, v := range r {
						s += w[j] * v
					}
					return s
				}
			}
			m := funcModel{nf: tc.nf, f: f}
			const bgRows = 5
			bg := randMatrix(rng, bgRows, tc.nf)
			e, err := explain.New(ctx, m, explain.Options{Background: []*tensor.Tensor{bg}, NSamples: tc.nsamples, Seed: 1, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if e.Method() != explain.MethodKernel {
				t.Fatalf("method %q", e.Method())
			}
			const rows = 6
			x := randMatrix(rng, rows, tc.nf)
			x.Data.([]float64)[3] = bg.Data.([]float64)[3] // equal to one background row, not all
			ex, err := e.Explain(ctx, []*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			xs, bs := x.Data.([]float64), bg.Data.([]float64)
			for r := range rows {
				row := xs[r*tc.nf : (r+1)*tc.nf]
				var want []float64
				if tc.linear != nil {
					want = make([]float64, tc.nf)
					for j := range want {
						mean := 0.0
						for b := range bgRows {
							mean += bs[b*tc.nf+j] / bgRows
						}
						want[j] = tc.linear[j] * (row[j] - mean)
					}
				} else {
					want = bruteShapley(m, row, bs, bgRows)
				}
				sum := ex.Expected[0]
				for j := range tc.nf {
					got := ex.At(r, j, 0)
					sum += got
					if math.Abs(got-want[j]) > 1e-9*(1+math.Abs(want[j])) {
						t.Fatalf("row %d feature %d: %v, want %v", r, j, got, want[j])
					}
				}
				if fx := f(row); math.Abs(sum-fx) > 1e-9*(1+math.Abs(fx)) {
					t.Errorf("row %d: expected + Σφ = %v, f(x) = %v", r, sum, fx)
				}
			}
		})
	}
}

func TestKernelConstantFeature(t *testing.T) {
	ctx := context.Background()
	m := funcModel{nf: 3, f: func(r []float64) float64 { return r[0]*r[1] + r[2] }}
	bg := &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{2, 3}, Data: []float64{1, 7, 3, 2, 7, 4}}
	e, err := explain.New(ctx, m, explain.Options{Background: []*tensor.Tensor{bg}})
	if err != nil {
		t.Fatal(err)
	}
	x := &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{1, 3}, Data: []float64{5, 7, 1}}
	ex, err := e.Explain(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if v := ex.At(0, 1, 0); v != 0 {
		t.Errorf("a feature equal to every background row's has φ = %v, want 0", v)
	}
	// φ0 = 7·(5 - 1.5), φ2 = 1 - 3.5.
	if v := ex.At(0, 0, 0); math.Abs(v-24.5) > 1e-12 {
		t.Errorf("φ0 = %v, want 24.5", v)
	}
	if v := ex.At(0, 2, 0); math.Abs(v+2.5) > 1e-12 {
		t.Errorf("φ2 = %v, want -2.5", v)
	}
}

func TestKernelSummarisesBackground(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	w := []float64{2, -1, 0.5}
	m := funcModel{nf: 3, f: func(r []float64) float64 { return w[0]*r[0] + w[1]*r[1] + w[2]*r[2] }}
	bg := randMatrix(rng, 200, 3)
	e, err := explain.New(ctx, m, explain.Options{Background: []*tensor.Tensor{bg}, MaxBackground: 8, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.Evaluations(1); n != 8*8 {
		t.Errorf("Evaluations(1) = %v, want 8 coalitions × 8 centroids", n)
	}
	x := randMatrix(rng, 3, 3)
	ex, err := e.Explain(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	// Additive: expected + Σφ = f(x), whatever the summary.
	xs := x.Data.([]float64)
	for r := range 3 {
		sum := ex.Expected[0]
		for j := range 3 {
			sum += ex.At(r, j, 0)
		}
		if fx := m.f(xs[r*3 : r*3+3]); math.Abs(sum-fx) > 1e-9 {
			t.Errorf("row %d: expected + Σφ = %v, f(x) = %v", r, sum, fx)
		}
	}
	// The weighted centroids keep the mean near the data's (k-means
	// preserves it before rounding to column values).
	mean := 0.0
	bs := bg.Data.([]float64)
	for i := range 200 {
		mean += m.f(bs[i*3:i*3+3]) / 200
	}
	if math.Abs(ex.Expected[0]-mean) > 0.3 {
		t.Errorf("expected value %v over the centroids, %v over the data", ex.Expected[0], mean)
	}
}

// mixedModel takes a string column and a number column as two inputs.
type mixedModel struct{}

func (mixedModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs: []runtime.TensorSpec{
			{Name: "city", DType: tensor.String, Shape: []int64{-1, 1}},
			{Name: "size", DType: tensor.Float32, Shape: []int64{-1, 1}},
		},
		Outputs: []runtime.TensorSpec{
			{Name: "label", DType: tensor.Int64, Shape: []int64{-1}},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 2}, Labels: []string{"no", "yes"}},
		},
	}
}

func (m mixedModel) Predict(_ context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	city, size := x[0].Data.([]string), x[1].Data.([]float32)
	rows := len(city)
	label, prob := make([]int64, rows), make([]float32, 2*rows)
	for r := range rows {
		p := float32(0.1) * size[r]
		if city[r] == "paris" {
			p += 0.5
		}
		prob[2*r], prob[2*r+1] = 1-p, p
	}
	return []*tensor.Tensor{
		{Name: "label", DType: tensor.Int64, Shape: []int64{int64(rows)}, Data: label},
		{Name: "probabilities", DType: tensor.Float32, Shape: []int64{int64(rows), 2}, Data: prob},
	}, nil
}

func (mixedModel) Close() error { return nil }

func TestKernelMixedInputs(t *testing.T) {
	ctx := context.Background()
	bg := []*tensor.Tensor{
		{Name: "city", DType: tensor.String, Shape: []int64{4, 1}, Data: []string{"paris", "oslo", "rome", "oslo"}},
		{Name: "size", DType: tensor.Float32, Shape: []int64{4, 1}, Data: []float32{1, 2, 3, 2}},
	}
	e, err := explain.New(ctx, mixedModel{}, explain.Options{Background: bg, MaxBackground: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.FeatureNames(); !slices.Equal(got, []string{"city", "size"}) {
		t.Errorf("feature names %q", got)
	}
	if got := e.OutputNames(); !slices.Equal(got, []string{"no", "yes"}) {
		t.Errorf("output names %q, want the probabilities' labels", got)
	}
	x := []*tensor.Tensor{
		{Name: "size", DType: tensor.Float32, Shape: []int64{1, 1}, Data: []float32{4}},
		{Name: "city", DType: tensor.String, Shape: []int64{1, 1}, Data: []string{"paris"}},
	}
	ex, err := e.Explain(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	// Additive model: φ_city = 0.5·(1 - P(paris in the background)),
	// φ_size = 0.1·(4 - mean size); the output "yes" is +, "no" is -.
	sum := ex.Expected[1] + ex.At(0, 0, 1) + ex.At(0, 1, 1)
	if math.Abs(sum-0.9) > 1e-6 {
		t.Errorf("expected + Σφ = %v, want the model's 0.9", sum)
	}
	if math.Abs(ex.At(0, 0, 0)+ex.At(0, 0, 1)) > 1e-6 {
		t.Errorf("φ_city for no %v and yes %v should cancel", ex.At(0, 0, 0), ex.At(0, 0, 1))
	}
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	m := funcModel{nf: 2, f: func(r []float64) float64 { return r[0] }}
	bg := &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{1, 2}, Data: []float64{0, 0}}
	for _, tc := range []struct {
		name string
		opts explain.Options
		want error
	}{
		{"no background", explain.Options{}, explain.ErrNoBackground},
		{"tree method on a non-tree model", explain.Options{Method: "tree", Background: []*tensor.Tensor{bg}}, explain.ErrNotApplicable},
		{"wrong background width", explain.Options{Background: []*tensor.Tensor{{Name: "x", DType: tensor.Float64, Shape: []int64{1, 3}, Data: []float64{0, 0, 0}}}}, explain.ErrInvalidInput},
		{"unknown output", explain.Options{Background: []*tensor.Tensor{bg}, Output: "nope"}, explain.ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := explain.New(ctx, m, tc.opts); !errors.Is(err, tc.want) {
				t.Errorf("New: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := explain.New(ctx, m, explain.Options{Method: "magic"}); err == nil {
		t.Error("New with an unknown method: no error")
	}
	e, err := explain.New(ctx, m, explain.Options{Background: []*tensor.Tensor{bg}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Explain(ctx, []*tensor.Tensor{{Name: "x", DType: tensor.Float64, Shape: []int64{1, 3}, Data: []float64{0, 0, 0}}}); !errors.Is(err, explain.ErrInvalidInput) {
		t.Errorf("Explain with the wrong width: %v, want ErrInvalidInput", err)
	}
}
