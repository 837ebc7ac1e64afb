package onnx

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	etree "github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// TestForestMatchesPredict exports the tree ensemble of every fixture that
// has one and checks that the forest's margins, through the ensemble's
// post_transform, are the model's scores, and that interventional
// TreeSHAP on it is additive. Graphs without a tree ensemble must be
// refused with ErrUnsupported.
func TestForestMatchesPredict(t *testing.T) {
	ctx := context.Background()
	checked := 0
	for _, dir := range fixtureDirs(t) {
		name := filepath.Base(dir)
		rm, err := runtime.Load(ctx, "onnx", runtime.Source{Path: dir})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := rm.(*Model)
		var trees []*execNode
		for i := range m.nodes {
			switch m.nodes[i].kernel.(type) {
			case *mlTreeClassifier, *mlTreeRegressor, *mlTreeEnsemble:
				trees = append(trees, &m.nodes[i])
			}
		}
		if _, err := m.Forest(); len(trees) != 1 {
			if !errors.Is(err, runtime.ErrUnsupported) {
				t.Errorf("%s: Forest of a graph with %d tree ensembles: %v, want ErrUnsupported", name, len(trees), err)
			}
		}
		var inputs []*tensor.Tensor
		for _, ft := range readFixture(t, filepath.Join(dir, "inputs.json"), "inputs") {
			x, err := ft.toTensor()
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, x)
		}
		out, err := m.Predict(ctx, inputs)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range trees {
			f, err := m.forestOf(tn)
			if err != nil {
				if !errors.Is(err, runtime.ErrUnsupported) {
					t.Errorf("%s: Forest: %v, want ErrUnsupported", name, err)
				}
				t.Logf("%s: not exported: %v", name, err)
				continue
			}
			if checkForest(t, ctx, name, f, inputs, m.scoresOf(tn, out)) {
				checked++
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked %d tree ensembles, want at least 20", checked)
	}
}

// scoresOf returns the graph output that holds the tree node's scores:
// its last output, or what a ZipMap or Cast made of it.
func (m *Model) scoresOf(tn *execNode, outs []*tensor.Tensor) *tensor.Tensor {
	slot := tn.out[len(tn.out)-1]
	for i, o := range m.outputs {
		if o.slot == slot {
			return outs[i]
		}
	}
	return outs[len(outs)-1] // behind a ZipMap: the probabilities
}

func checkForest(t *testing.T, ctx context.Context, name string, f *etree.Forest, inputs []*tensor.Tensor, scores *tensor.Tensor) bool {
	t.Helper()
	sc, err := tensor.Cast(scores, tensor.Float64)
	if err != nil {
		t.Fatalf("%s: output %q: %v", name, scores.Name, err)
	}
	want := sc.Data.([]float64)
	x, err := tensor.Cast(inputs[0], tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	xs := x.Data.([]float64)
	rows, nf, k := int(x.Shape[0]), f.NumFeatures, f.NumOutputs
	if len(x.Shape) == 1 {
		rows = 1
	}
	width := len(want) / rows
	margin := make([]float64, k)
	row := make([]float64, nf)
	compared := false
	for r := range rows {
		copy(row, xs[r*nf:(r+1)*nf])
		f.PrepareRow(row)
		f.Margin(row, margin)
		got, ok := transform(f.Link, margin)
		if !ok {
			break
		}
		compared = true
		for j := range k {
			col := j
			if k == 1 && width == 2 {
				col = 1 // a binary classifier's score is the second class's
			}
			w := want[r*width+col]
			if math.Abs(got[j]-w) > 1e-4*(1+math.Abs(w)) {
				t.Fatalf("%s: row %d output %d: forest %v (margin %v, %s), model %v", name, r, j, got[j], margin[j], f.Link, w)
			}
		}
	}
	if !compared {
		t.Logf("%s: post_transform %s not compared", name, f.Link)
		return false
	}
	bgRows := min(rows, 5)
	iv, err := etree.NewInterventional(f, xs, bgRows, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := min(rows, 10)
	phi := make([]float64, n*nf*k)
	if err := iv.Values(ctx, xs, n, phi, 2); err != nil {
		t.Fatal(err)
	}
	for r := range n {
		copy(row, xs[r*nf:(r+1)*nf])
		f.PrepareRow(row)
		f.Margin(row, margin)
		for j := range k {
			sum := iv.Expected()[j]
			for i := range nf {
				sum += phi[(r*nf+i)*k+j]
			}
			if math.Abs(sum-margin[j]) > 1e-9*(1+math.Abs(margin[j])) {
				t.Errorf("%s: row %d output %d: expected + Σφ = %v, margin %v", name, r, j, sum, margin[j])
			}
		}
	}
	return true
}

// transform applies a post_transform to margins, as the tests can.
func transform(link string, m []float64) ([]float64, bool) {
	out := make([]float64, len(m))
	switch link {
	case "identity":
		copy(out, m)
	case "logistic":
		for i, v := range m {
			out[i] = 1 / (1 + math.Exp(-v))
		}
	case "softmax":
		mx := math.Inf(-1)
		for _, v := range m {
			mx = max(mx, v)
		}
		sum := 0.0
		for i, v := range m {
			out[i] = math.Exp(v - mx)
			sum += out[i]
		}
		for i := range out {
			out[i] /= sum
		}
	default:
		return nil, false
	}
	return out, true
}

func TestForestRefusesComputedInputs(t *testing.T) {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: filepath.Join("testdata", "models", "skl_rf_clf_binary")})
	if err != nil {
		t.Fatal(err)
	}
	om := m.(*Model)
	// Pretend the ensemble reads a slot a non-Cast node computes.
	for i := range om.nodes {
		if _, ok := om.nodes[i].kernel.(*mlTreeClassifier); ok {
			om.nodes[i].in[0] = om.nodes[i].out[0]
		}
	}
	if _, err := om.Forest(); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("Forest of an ensemble over a computed input: %v, want ErrUnsupported", err)
	}
}
