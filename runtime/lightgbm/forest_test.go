package lightgbm

import (
	"context"
	"errors"
	"math"
	"testing"

	etree "github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// TestForestMatchesPredict exports every fixture's trees and checks that
// the forest routes each row as the booster does (equal raw scores) and
// that path-dependent TreeSHAP over the sample counts is additive.
func TestForestMatchesPredict(t *testing.T) {
	ctx := context.Background()
	checked := 0
	for _, c := range loadCases(t) {
		m, err := Backend{}.Load(ctx, runtime.Source{Path: c.dir, Options: c.options})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b := m.(*model).Booster()
		f, err := m.(etree.Forester).Forest()
		linear := false
		for _, tr := range b.trees {
			linear = linear || tr.linear
		}
		if linear {
			if !errors.Is(err, runtime.ErrUnsupported) {
				t.Errorf("%s: Forest of linear trees: %v, want ErrUnsupported", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: Forest: %v", c.name, err)
		}
		x, err := tensor.Cast(c.inputs[0], tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		xs := x.Data.([]float64)
		rows, nf, k := int(x.Shape[0]), f.NumFeatures, f.NumOutputs
		want := make([]float64, k)
		got := make([]float64, k)
		row := make([]float64, nf)
		raw := make([]float64, nf)
		margins := make([]float64, rows*k)
		for r := range rows {
			for j := range nf {
				raw[j] = clampZero(xs[r*nf+j])
			}
			b.PredictRaw(raw, want)
			copy(row, xs[r*nf:(r+1)*nf])
			f.PrepareRow(row)
			f.Margin(row, got)
			for j := range k {
				if math.Abs(got[j]-want[j]) > 1e-9*(1+math.Abs(want[j])) {
					t.Fatalf("%s: row %d output %d: forest margin %v, booster %v", c.name, r, j, got[j], want[j])
				}
			}
			copy(margins[r*k:], want)
		}
		pd, err := etree.NewPathDependent(f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
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
				if w := margins[r*k+j]; math.Abs(sum-w) > 1e-9*(1+math.Abs(w)) {
					t.Errorf("%s: row %d output %d: expected + Σφ = %v, margin %v", c.name, r, j, sum, w)
				}
			}
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("checked %d models, want at least 15", checked)
	}
}
