package xgboost

import (
	"context"
	"errors"
	"maps"
	"math"
	"testing"

	"github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// TestForestMatchesPredict exports every fixture's trees and checks that
// the exported forest routes each row as Predict does (its margin equals
// Predict's with output_margin) and that path-dependent TreeSHAP on it is
// additive (expected value + Σφ = margin).
func TestForestMatchesPredict(t *testing.T) {
	ctx := context.Background()
	checked := 0
	for _, c := range fixtures(t) {
		for _, src := range c.sources {
			opts := maps.Clone(c.options)
			if opts == nil {
				opts = map[string]any{}
			}
			opts["output_margin"] = true
			m, err := Load(ctx, runtime.Source{Path: src, Options: opts})
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			f, err := m.Forest()
			if m.l.forest == nil {
				if !errors.Is(err, runtime.ErrUnsupported) {
					t.Errorf("%s: Forest of a %s model: %v, want ErrUnsupported", src, m.l.booster, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: Forest: %v", src, err)
			}
			in := c.inputs[0].tensor(t)
			x := in.Data.([]float32)
			out, err := m.Predict(ctx, []*tensor.Tensor{in})
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			want := out[0].Data.([]float32)
			rows, nf, k := int(in.Shape[0]), f.NumFeatures, f.NumOutputs
			xs := make([]float64, len(x))
			for i, v := range x {
				xs[i] = float64(v)
			}
			margin := make([]float64, k)
			row := make([]float64, nf)
			for r := range rows {
				copy(row, xs[r*nf:(r+1)*nf])
				f.PrepareRow(row)
				f.Margin(row, margin)
				for j := range k {
					if w := float64(want[r*k+j]); math.Abs(margin[j]-w) > 1e-5*(1+math.Abs(w)) {
						t.Fatalf("%s: row %d output %d: forest margin %v, Predict %v", src, r, j, margin[j], w)
					}
				}
			}
			pd, err := tree.NewPathDependent(f)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			phi := make([]float64, rows*nf*k)
			if err := pd.Values(ctx, xs, rows, phi, 2); err != nil {
				t.Fatal(err)
			}
			for r := range rows {
				for j := range k {
					sum := pd.Expected()[j]
					for i := range nf {
						sum += phi[(r*nf+i)*k+j]
					}
					if w := float64(want[r*k+j]); math.Abs(sum-w) > 1e-4*(1+math.Abs(w)) {
						t.Errorf("%s: row %d output %d: expected + Σφ = %v, margin %v", src, r, j, sum, w)
					}
				}
			}
			checked++
		}
	}
	if checked < 40 {
		t.Errorf("checked %d models, want at least 40", checked)
	}
}
