package explain_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"

	_ "github.com/kiln-ml/kiln/runtime/lightgbm"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	_ "github.com/kiln-ml/kiln/runtime/xgboost"
)

// shapCase is a fixture of testdata/gen.py: a model, rows, and shap's
// values for them.
type shapCase struct {
	Model         string        `json:"model"`
	Backend       string        `json:"backend"`
	Method        string        `json:"method"`
	X             [][]*float64  `json:"x"`
	Background    [][]*float64  `json:"background"`
	ShapValues    [][][]float64 `json:"shap_values"`
	ExpectedValue []float64     `json:"expected_value"`
	NSamples      int           `json:"nsamples"`
}

func matrix(t testing.TB, rows [][]*float64) *tensor.Tensor {
	t.Helper()
	if len(rows) == 0 {
		return nil
	}
	nf := len(rows[0])
	d := make([]float32, 0, len(rows)*nf)
	for _, r := range rows {
		for _, v := range r {
			if v == nil {
				d = append(d, float32(math.NaN()))
			} else {
				d = append(d, float32(*v))
			}
		}
	}
	x, err := tensor.FromSlice("", d, int64(len(rows)), int64(nf))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func loadCase(t testing.TB, path string) (shapCase, runtime.Model) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c shapCase
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	m, err := runtime.Load(context.Background(), c.Backend, runtime.Source{Path: filepath.Join("testdata", c.Model)})
	if err != nil {
		t.Fatalf("%s: %v", c.Model, err)
	}
	return c, m
}

// inputsFor names x after the model's single input.
func inputsFor(m runtime.Model, x *tensor.Tensor) []*tensor.Tensor {
	x.Name = m.Signature().Inputs[0].Name
	return []*tensor.Tensor{x}
}

// Tolerances against shap, per method: XGBoost's own TreeSHAP (which
// shap calls) works in single precision; the ONNX trees hold float32
// weights; Kernel SHAP compares the Go ONNX runtime's float32
// probabilities with onnxruntime's.
var tolerance = map[string]struct{ rtol, atol float64 }{
	"xgboost":  {1e-5, 2e-6},
	"lightgbm": {1e-9, 1e-12},
	"onnx":     {1e-5, 1e-6},
}

func TestMatchesShap(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "*.case.json"))
	if err != nil || len(cases) < 10 {
		t.Fatalf("found %d fixtures (%v); run testdata/gen.py", len(cases), err)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".case.json")
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c, m := loadCase(t, path)
			opts := explain.Options{NSamples: c.NSamples, Workers: 2}
			if c.Background != nil {
				opts.Background = inputsFor(m, matrix(t, c.Background))
				opts.MaxBackground = len(c.Background)
			}
			e, err := explain.New(ctx, m, opts)
			if err != nil {
				t.Fatal(err)
			}
			if e.Method() != c.Method {
				t.Errorf("method %q, want %q", e.Method(), c.Method)
			}
			ex, err := e.Explain(ctx, inputsFor(m, matrix(t, c.X)))
			if err != nil {
				t.Fatal(err)
			}
			tol := tolerance[c.Backend]
			near := func(got, want float64) bool { return math.Abs(got-want) <= tol.atol+tol.rtol*math.Abs(want) }
			if ex.NumOutputs() != len(c.ExpectedValue) || ex.Rows != len(c.X) || ex.NumFeatures() != len(c.X[0]) {
				t.Fatalf("explanation of %d rows × %d features × %d outputs, shap's %d × %d × %d",
					ex.Rows, ex.NumFeatures(), ex.NumOutputs(), len(c.X), len(c.X[0]), len(c.ExpectedValue))
			}
			for o, want := range c.ExpectedValue {
				if !near(ex.Expected[o], want) {
					t.Errorf("expected value %d: %v, shap %v", o, ex.Expected[o], want)
				}
			}
			worst := 0.0
			for r := range ex.Rows {
				for f := range ex.NumFeatures() {
					for o := range ex.NumOutputs() {
						got, want := ex.At(r, f, o), c.ShapValues[r][f][o]
						worst = max(worst, math.Abs(got-want))
						if !near(got, want) {
							t.Fatalf("row %d feature %d output %d: %v, shap %v", r, f, o, got, want)
						}
					}
				}
			}
			t.Logf("%s: largest difference from shap %.3g", e.Method(), worst)
		})
	}
}

// TestAdditivity checks on every fixture that expected value + Σφ is the
// model's output: the raw margin for trees (checked through the runtime's
// margin output where it has one), the probabilities for Kernel SHAP.
func TestAdditivity(t *testing.T) {
	ctx := context.Background()
	c, m := loadCase(t, filepath.Join("testdata", "onnx_logreg_kernel.case.json"))
	bg := inputsFor(m, matrix(t, c.Background))
	e, err := explain.New(ctx, m, explain.Options{Background: bg, Method: explain.MethodKernel})
	if err != nil {
		t.Fatal(err)
	}
	x := inputsFor(m, matrix(t, c.X))
	ex, err := e.Explain(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Predict(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	probs := out[1].Data.([]float32)
	for r := range ex.Rows {
		for o := range ex.NumOutputs() {
			sum := ex.Expected[o]
			for f := range ex.NumFeatures() {
				sum += ex.At(r, f, o)
			}
			if p := float64(probs[r*2+o]); math.Abs(sum-p) > 1e-9 {
				t.Errorf("row %d output %d: expected + Σφ = %v, model %v", r, o, sum, p)
			}
		}
	}
}
