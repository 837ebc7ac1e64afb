package lightgbm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// TestFixtures loads every case under testdata/models through the runtime
// registry and compares its outputs with lightgbm's (testdata/gen.py).
func TestFixtures(t *testing.T) {
	ctx := context.Background()
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			m, err := runtime.Load(ctx, "lightgbm", runtime.Source{Path: c.dir, Options: c.options})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			sig := m.Signature()
			if len(sig.Outputs) != len(c.expected) {
				t.Fatalf("signature has %d outputs, fixture %d", len(sig.Outputs), len(c.expected))
			}
			for i, o := range sig.Outputs {
				if o.Name != c.expected[i].Name || o.DType.String() != c.expected[i].Datatype {
					t.Errorf("signature output %d is %s %v, want %s %s", i, o.Name, o.DType, c.expected[i].Name, c.expected[i].Datatype)
				}
			}
			got, err := m.Predict(ctx, c.inputs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.expected) {
				t.Fatalf("%d outputs, want %d", len(got), len(c.expected))
			}
			for i := range got {
				if err := compareOutput(got[i], c.expected[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestFixturesRowByRow predicts each fixture row alone and checks it gives
// the batch's answer, and that FP64 and FS-based loading agree.
func TestFixturesRowByRow(t *testing.T) {
	ctx := context.Background()
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			// Load from an fs.FS and from the file itself as well.
			src := runtime.Source{FS: os.DirFS(c.dir), Path: ".", Options: c.options}
			m, err := Backend{}.Load(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			x := c.inputs[0]
			batch, err := m.Predict(ctx, []*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			x64, err := tensor.Cast(x, tensor.Float64)
			if err != nil {
				t.Fatal(err)
			}
			cast, err := m.Predict(ctx, []*tensor.Tensor{x64})
			if err != nil {
				t.Fatal(err)
			}
			for i := range batch {
				if err := equalTensors(batch[i], cast[i]); err != nil {
					t.Errorf("FP64 input: %v", err)
				}
			}
			nf := int(x.Shape[1])
			data := x.Data.([]float32)
			for r := 0; r < x.Rows(); r++ {
				row := &tensor.Tensor{Name: "input", DType: tensor.Float32, Shape: []int64{1, int64(nf)}, Data: data[r*nf : (r+1)*nf]}
				one, err := m.Predict(ctx, []*tensor.Tensor{row})
				if err != nil {
					t.Fatal(err)
				}
				for i := range one {
					if err := equalTensors(one[i], rowOf(batch[i], r)); err != nil {
						t.Fatalf("row %d: %v", r, err)
					}
				}
			}
		})
	}
}

func rowOf(t *tensor.Tensor, r int) *tensor.Tensor {
	w := 1
	for _, d := range t.Shape[1:] {
		w *= int(d)
	}
	shape := append([]int64{1}, t.Shape[1:]...)
	switch d := t.Data.(type) {
	case []float32:
		return &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: shape, Data: d[r*w : (r+1)*w]}
	case []int64:
		return &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: shape, Data: d[r*w : (r+1)*w]}
	}
	panic("unexpected type")
}

func equalTensors(a, b *tensor.Tensor) error {
	if a.Name != b.Name || a.DType != b.DType || len(a.Shape) != len(b.Shape) {
		return errors.New(a.Name + " and " + b.Name + " differ in name, type or rank")
	}
	fa, _ := a.Float64s()
	fb, _ := b.Float64s()
	for i := range fa {
		if fa[i] != fb[i] && !(math.IsNaN(fa[i]) && math.IsNaN(fb[i])) {
			return errors.New(a.Name + " values differ")
		}
	}
	return nil
}

func TestIntegerInputs(t *testing.T) {
	// Categorical codes given as INT64 predict like the same codes as FP32.
	ctx := context.Background()
	m, err := runtime.Load(ctx, "lightgbm", runtime.Source{Path: filepath.Join("testdata", "models", "categorical", "model.lgb")})
	if err != nil {
		t.Fatal(err)
	}
	ints := []int64{0, 17, 1, 2, 3, 119, -2, 0, -1, 64, 0, 1}
	floats := make([]float32, len(ints))
	for i, v := range ints {
		floats[i] = float32(v)
	}
	a, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Int64, Shape: []int64{3, 4}, Data: ints}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Predict(ctx, []*tensor.Tensor{{DType: tensor.Float32, Shape: []int64{3, 4}, Data: floats}})
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(a[0], b[0]); err != nil {
		t.Fatal(err)
	}
}

func TestSignature(t *testing.T) {
	tests := []struct {
		dir, class string
		outputs    []string
		shapes     []string
	}{
		{"binary_classifier", "lightgbm.sklearn.LGBMClassifier", []string{"label", "probabilities"}, []string{"[-1]", "[-1 2]"}},
		{"multiclass_classifier", "lightgbm.sklearn.LGBMClassifier", []string{"label", "probabilities"}, []string{"[-1]", "[-1 3]"}},
		{"binary_classifier", "", []string{"predictions"}, []string{"[-1]"}},
		{"multiclass_booster", "lightgbm.basic.Booster", []string{"predictions"}, []string{"[-1 4]"}},
		{"lambdarank", "lightgbm.sklearn.LGBMRanker", []string{"predictions"}, []string{"[-1]"}},
	}
	for _, tc := range tests {
		t.Run(tc.dir+"/"+tc.class, func(t *testing.T) {
			m, err := runtime.Load(context.Background(), "lightgbm", runtime.Source{
				Path: filepath.Join("testdata", "models", tc.dir), Options: map[string]any{"model_class": tc.class}})
			if err != nil {
				t.Fatal(err)
			}
			sig := m.Signature()
			if len(sig.Inputs) != 1 || sig.Inputs[0].Name != "input" || sig.Inputs[0].DType != tensor.Float32 {
				t.Fatalf("inputs %+v", sig.Inputs)
			}
			in := sig.Inputs[0]
			if len(in.Shape) != 2 || in.Shape[0] != -1 || int(in.Shape[1]) != len(in.Labels) {
				t.Errorf("input shape %v with %d feature names", in.Shape, len(in.Labels))
			}
			if len(sig.Outputs) != len(tc.outputs) {
				t.Fatalf("outputs %+v", sig.Outputs)
			}
			for i, o := range sig.Outputs {
				if o.Name != tc.outputs[i] || fmt.Sprint(o.Shape) != tc.shapes[i] {
					t.Errorf("output %d: %s %v, want %s %s", i, o.Name, o.Shape, tc.outputs[i], tc.shapes[i])
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	reg := filepath.Join("testdata", "models", "quantile")
	tests := []struct {
		name string
		src  runtime.Source
		want error
		text string
	}{
		{"missing file", runtime.Source{Path: filepath.Join(dir, "nope.lgb")}, os.ErrNotExist, "nope.lgb"},
		{"missing file in dir", runtime.Source{Path: reg, Options: map[string]any{"data": "other.lgb"}}, os.ErrNotExist, "other.lgb"},
		{"pickle", runtime.Source{Path: reg, Options: map[string]any{"data": "model.pkl", "model_class": "lightgbm.sklearn.LGBMClassifier"}}, runtime.ErrUnsupported, "pickled"},
		{"unknown class", runtime.Source{Path: reg, Options: map[string]any{"model_class": "my.Wrapper"}}, runtime.ErrUnsupported, "my.Wrapper"},
		{"classifier on regression", runtime.Source{Path: reg, Options: map[string]any{"model_class": "lightgbm.sklearn.LGBMClassifier"}}, runtime.ErrUnsupported, "quantile"},
		{"option type", runtime.Source{Path: reg, Options: map[string]any{"data": 3}}, nil, "option \"data\""},
		{"not lightgbm", runtime.Source{Path: write("x.json", `{"learner": {}}`)}, runtime.ErrInvalidModel, "first line"},
		{"unsupported objective", runtime.Source{Path: write("o.lgb", strings.Replace(tinyModel, "objective=regression", "objective=survival_cox", 1))}, runtime.ErrUnsupported, "survival_cox"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Backend{}.Load(ctx, tc.src)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
}

func TestPredictErrors(t *testing.T) {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "lightgbm", runtime.Source{Path: filepath.Join("testdata", "models", "poisson")})
	if err != nil {
		t.Fatal(err)
	}
	f := func(shape ...int64) *tensor.Tensor {
		x, _ := tensor.New("input", tensor.Float32, shape...)
		return x
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		inputs []*tensor.Tensor
		want   error
	}{
		{"no input", ctx, nil, runtime.ErrInvalidInput},
		{"two inputs", ctx, []*tensor.Tensor{f(1, 4), f(1, 4)}, runtime.ErrInvalidInput},
		{"wrong width", ctx, []*tensor.Tensor{f(2, 5)}, runtime.ErrInvalidInput},
		{"rank 1", ctx, []*tensor.Tensor{f(4)}, runtime.ErrInvalidInput},
		{"short data", ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{2, 4}, Data: make([]float32, 7)}}, runtime.ErrInvalidInput},
		{"strings", ctx, []*tensor.Tensor{{Name: "input", DType: tensor.String, Shape: []int64{1, 4}, Data: make([]string, 4)}}, runtime.ErrInvalidInput},
		{"canceled", canceled, []*tensor.Tensor{f(1, 4)}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Predict(tc.ctx, tc.inputs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// An empty batch is fine.
	out, err := m.Predict(ctx, []*tensor.Tensor{f(0, 4)})
	if err != nil || out[0].Rows() != 0 {
		t.Fatalf("empty batch: %v %v", out, err)
	}
}
