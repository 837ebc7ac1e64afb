package xgboost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// oipTensor is a tensor in the Open Inference Protocol's JSON shape, as the
// fixtures hold them.
type oipTensor struct {
	Name     string   `json:"name"`
	Datatype string   `json:"datatype"`
	Shape    []int64  `json:"shape"`
	Data     []any    `json:"data"`
	Labels   []string `json:"labels"`
}

func (o oipTensor) tensor(t *testing.T) *tensor.Tensor {
	t.Helper()
	dt, err := tensor.ParseDType(o.Datatype)
	if err != nil {
		t.Fatal(err)
	}
	out := &tensor.Tensor{Name: o.Name, DType: dt, Shape: o.Shape}
	switch dt {
	case tensor.Float32:
		d := make([]float32, len(o.Data))
		for i, v := range o.Data {
			d[i] = float32(jsonFloat(t, v))
		}
		out.Data = d
	case tensor.Int64:
		d := make([]int64, len(o.Data))
		for i, v := range o.Data {
			d[i] = int64(jsonFloat(t, v))
		}
		out.Data = d
	default:
		t.Fatalf("fixture datatype %v", dt)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonFloat(t *testing.T, v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		switch x {
		case "NaN":
			return math.NaN()
		case "Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
	}
	t.Fatalf("fixture value %v", v)
	return 0
}

type fixtureCase struct {
	dir      string
	inputs   []oipTensor
	expected []oipTensor
	options  map[string]any
	sources  []string // model files, or the directory itself (MLflow flavor)
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func fixtures(t *testing.T) []fixtureCase {
	t.Helper()
	dirs, err := filepath.Glob("testdata/models/*")
	if err != nil {
		t.Fatal(err)
	}
	var cases []fixtureCase
	for _, dir := range dirs {
		c := fixtureCase{dir: dir}
		var in struct {
			Inputs []oipTensor `json:"inputs"`
		}
		var exp struct {
			Outputs []oipTensor `json:"outputs"`
		}
		readJSON(t, filepath.Join(dir, "inputs.json"), &in)
		readJSON(t, filepath.Join(dir, "expected.json"), &exp)
		readJSON(t, filepath.Join(dir, "options.json"), &c.options)
		c.inputs, c.expected = in.Inputs, exp.Outputs
		if _, err := os.Stat(filepath.Join(dir, "MLmodel")); err == nil {
			c.sources = []string{dir}
		} else {
			models, _ := filepath.Glob(filepath.Join(dir, "model.*"))
			c.sources = models
		}
		if len(c.sources) == 0 {
			t.Fatalf("%s: no model file", dir)
		}
		cases = append(cases, c)
	}
	if len(cases) < 30 {
		t.Fatalf("found %d fixture cases; run testdata/gen.py", len(cases))
	}
	return cases
}

// close reports whether got is within the fixtures' tolerance of want.
func close32(got, want float32) bool {
	g, w := float64(got), float64(want)
	if math.IsNaN(w) || math.IsNaN(g) {
		return math.IsNaN(w) && math.IsNaN(g)
	}
	if math.IsInf(w, 0) {
		return g == w
	}
	return math.Abs(g-w) <= 1e-5*math.Abs(w)+1e-6
}

func TestFixtures(t *testing.T) {
	ctx := context.Background()
	for _, c := range fixtures(t) {
		for _, src := range c.sources {
			name := filepath.Base(c.dir) + "/" + filepath.Base(src)
			if src == c.dir {
				name = filepath.Base(c.dir) + "/(dir)"
			}
			t.Run(name, func(t *testing.T) {
				m, err := runtime.Load(ctx, "xgboost", runtime.Source{Path: src, Options: c.options})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				inputs := make([]*tensor.Tensor, len(c.inputs))
				for i, in := range c.inputs {
					inputs[i] = in.tensor(t)
				}
				out, err := m.Predict(ctx, inputs)
				if err != nil {
					t.Fatal(err)
				}
				sig := m.Signature()
				if len(out) != len(c.expected) || len(sig.Outputs) != len(c.expected) {
					t.Fatalf("got %d outputs (signature %d), want %d", len(out), len(sig.Outputs), len(c.expected))
				}
				for i, e := range c.expected {
					want := e.tensor(t)
					compareTensor(t, out[i], want)
					if sig.Outputs[i].Name != want.Name || sig.Outputs[i].DType != want.DType {
						t.Errorf("signature output %d is %s %v, want %s %v", i, sig.Outputs[i].Name, sig.Outputs[i].DType, want.Name, want.DType)
					}
					if e.Labels != nil && !slices.Equal(sig.Outputs[i].Labels, e.Labels) {
						t.Errorf("output %s labels %v, want %v", e.Name, sig.Outputs[i].Labels, e.Labels)
					}
				}
			})
		}
	}
}

func compareTensor(t *testing.T, got, want *tensor.Tensor) {
	t.Helper()
	if got.Name != want.Name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("output %s %v %v, want %s %v %v", got.Name, got.DType, got.Shape, want.Name, want.DType, want.Shape)
	}
	bad := 0
	switch w := want.Data.(type) {
	case []float32:
		g := got.Data.([]float32)
		for i := range w {
			if !close32(g[i], w[i]) {
				if bad++; bad <= 5 {
					t.Errorf("%s[%d] = %v, want %v", want.Name, i, g[i], w[i])
				}
			}
		}
	case []int64:
		g := got.Data.([]int64)
		for i := range w {
			if g[i] != w[i] {
				if bad++; bad <= 5 {
					t.Errorf("%s[%d] = %v, want %v", want.Name, i, g[i], w[i])
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d elements differ", want.Name, bad)
	}
}

// TestFormatsAgree checks that the JSON and UBJSON files of a case decode
// to the same document.
func TestFormatsAgree(t *testing.T) {
	n := 0
	for _, c := range fixtures(t) {
		js, uj := filepath.Join(c.dir, "model.json"), filepath.Join(c.dir, "model.ubj")
		a, errA := os.ReadFile(js)
		b, errB := os.ReadFile(uj)
		if errA != nil || errB != nil {
			continue
		}
		n++
		va, err := decode(a)
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		vb, err := decode(b)
		if err != nil {
			t.Fatalf("%s: %v", uj, err)
		}
		if diff := diffValues(&va, &vb, ""); diff != "" {
			t.Errorf("%s: JSON and UBJSON differ: %s", c.dir, diff)
		}
	}
	if n < 5 {
		t.Fatalf("only %d cases have both formats", n)
	}
}

// diffValues compares two documents; the empty string means equal. The
// UBJSON writer uses typed arrays where JSON has plain ones, so arrays of
// numbers compare by their elements.
func diffValues(a, b *value, at string) string {
	na, ea := a.numbers("")
	nb, eb := b.numbers("")
	if ea == nil && eb == nil && (a.kind == kindNumbers || b.kind == kindNumbers) {
		if len(na) != len(nb) {
			return fmt.Sprintf("%s: %d vs %d numbers", at, len(na), len(nb))
		}
		for i := range na {
			if float32(na[i]) != float32(nb[i]) && !(math.IsNaN(na[i]) && math.IsNaN(nb[i])) {
				return fmt.Sprintf("%s[%d]: %v vs %v", at, i, na[i], nb[i])
			}
		}
		return ""
	}
	if a.kind != b.kind {
		return fmt.Sprintf("%s: %v vs %v", at, a.kind, b.kind)
	}
	switch a.kind {
	case kindNumber, kindBool:
		if float32(a.num) != float32(b.num) && !(math.IsNaN(a.num) && math.IsNaN(b.num)) {
			return fmt.Sprintf("%s: %v vs %v", at, a.num, b.num)
		}
	case kindString:
		if a.str() != b.str() {
			return fmt.Sprintf("%s: %q vs %q", at, a.str(), b.str())
		}
	case kindArray:
		x, y := a.array(), b.array()
		if len(x) != len(y) {
			return fmt.Sprintf("%s: %d vs %d elements", at, len(x), len(y))
		}
		for i := range x {
			if d := diffValues(&x[i], &y[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
	case kindObject:
		x, y := a.ref.(*object), b.ref.(*object)
		if len(x.keys) != len(y.keys) {
			return fmt.Sprintf("%s: keys %v vs %v", at, x.keys, y.keys)
		}
		for i, k := range x.keys {
			other, ok := b.get(k)
			if !ok {
				return fmt.Sprintf("%s: key %q missing", at, k)
			}
			if d := diffValues(&x.items[i], other, at+"/"+k); d != "" {
				return d
			}
		}
	}
	return ""
}

func TestSignature(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		path    string
		options map[string]any
		outputs []string
		shapes  [][]int64
	}{
		{"testdata/models/binary_logistic/model.json", nil, []string{"label", "probabilities"}, [][]int64{{-1}, {-1, 2}}},
		{"testdata/models/binary_logistic/model.json", map[string]any{"model_class": "xgboost.core.Booster"}, []string{"predictions"}, [][]int64{{-1}}},
		{"testdata/models/multi_softprob/model.ubj", nil, []string{"label", "probabilities"}, [][]int64{{-1}, {-1, 3}}},
		{"testdata/models/booster_softprob/model.ubj", nil, []string{"label", "probabilities"}, [][]int64{{-1}, {-1, 4}}},
		{"testdata/models/booster_softprob/model.ubj", map[string]any{"model_class": "xgboost.core.Booster"}, []string{"predictions"}, [][]int64{{-1, 4}}},
		{"testdata/models/booster_softmax/model.json", map[string]any{"model_class": "xgboost.core.Booster"}, []string{"predictions"}, [][]int64{{-1}}},
		{"testdata/models/booster_logitraw/model.json", nil, []string{"predictions"}, [][]int64{{-1}}},
		{"testdata/models/reg_quantile_two/model.json", nil, []string{"predictions"}, [][]int64{{-1, 2}}},
		{"testdata/models/reg_squarederror/model.ubj", nil, []string{"predictions"}, [][]int64{{-1}}},
		{"testdata/models/mlflow_xgb_dir", nil, []string{"label", "probabilities"}, [][]int64{{-1}, {-1, 2}}},
		{"testdata/models/multi_softmax/model.json", map[string]any{"output_margin": true}, []string{"predictions"}, [][]int64{{-1, 3}}},
		{"testdata/models/binary_logistic/model.json", map[string]any{"output_margin": true}, []string{"predictions"}, [][]int64{{-1}}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			m, err := Load(ctx, runtime.Source{Path: tt.path, Options: tt.options})
			if err != nil {
				t.Fatal(err)
			}
			sig := m.Signature()
			if len(sig.Inputs) != 1 || sig.Inputs[0].Name != "input" || sig.Inputs[0].DType != tensor.Float32 ||
				!slices.Equal(sig.Inputs[0].Shape, []int64{-1, int64(m.NumFeature())}) {
				t.Errorf("input %+v", sig.Inputs)
			}
			var names []string
			var shapes [][]int64
			for _, o := range sig.Outputs {
				names = append(names, o.Name)
				shapes = append(shapes, o.Shape)
			}
			if !slices.Equal(names, tt.outputs) || fmt.Sprint(shapes) != fmt.Sprint(tt.shapes) {
				t.Errorf("outputs %v %v, want %v %v", names, shapes, tt.outputs, tt.shapes)
			}
		})
	}
}

func TestFeatureNames(t *testing.T) {
	m, err := Load(context.Background(), runtime.Source{Path: "testdata/models/categorical_partition/model.ubj"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.FeatureNames(), []string{"x0", "c_small", "x1", "c_large"}; !slices.Equal(got, want) {
		t.Errorf("feature names %v, want %v", got, want)
	}
	if got, want := m.FeatureTypes(), []string{"float", "c", "float", "c"}; !slices.Equal(got, want) {
		t.Errorf("feature types %v, want %v", got, want)
	}
	if got := m.Signature().Inputs[0].Labels; len(got) != 4 {
		t.Errorf("input labels %v", got)
	}
	if m.Objective() != "binary:logistic" {
		t.Errorf("objective %q", m.Objective())
	}
}

func TestCategories(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		path string
		want string
	}{
		// The non-ASCII column ("zürich") is stored truncated by XGBoost
		// 3.2 and left out.
		{"testdata/models/categorical_strings/model.json", "[[] [blue green red yellow] []]"},
		{"testdata/models/categorical_strings/model.ubj", "[[] [blue green red yellow] []]"},
		{"testdata/models/categorical_partition/model.ubj", "[[] [0 1 2 3] [] [0 1 2 3 4 5 6 7 8 9 10 11 12 13]]"},
		{"testdata/models/binary_logistic/model.json", "[]"},
	}
	for _, tt := range tests {
		m, err := Load(ctx, runtime.Source{Path: tt.path})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(m.Categories()); got != tt.want {
			t.Errorf("%s: categories %s, want %s", tt.path, got, tt.want)
		}
	}
}

// TestInputTypes feeds one batch as every numeric datatype; all must agree
// with float32 (the values are small integers, exact in every type).
func TestInputTypes(t *testing.T) {
	ctx := context.Background()
	m, err := Load(ctx, runtime.Source{Path: "testdata/models/multi_softprob/model.json"})
	if err != nil {
		t.Fatal(err)
	}
	nf := m.NumFeature()
	const rows = 7
	base := make([]float64, rows*nf)
	for i := range base {
		base[i] = float64(i%5) - 2
	}
	f32 := make([]float32, len(base))
	for i, v := range base {
		f32[i] = float32(v)
	}
	ref, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{rows, int64(nf)}, Data: f32}})
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []tensor.DType{tensor.Float64, tensor.Float16, tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64} {
		x, err := tensor.Cast(&tensor.Tensor{Name: "input", DType: tensor.Float64, Shape: []int64{rows, int64(nf)}, Data: base}, dt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Predict(ctx, []*tensor.Tensor{x})
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		for i := range ref {
			compareTensor(t, got[i], ref[i])
		}
	}
	// Booleans are 0 and 1; unsigned types take the non-negative rows.
	for _, dt := range []tensor.DType{tensor.Bool, tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64} {
		pos := make([]float64, len(base))
		for i, v := range base {
			pos[i] = math.Abs(v)
			if dt == tensor.Bool {
				pos[i] = min(pos[i], 1)
			}
		}
		p32 := make([]float32, len(pos))
		for i, v := range pos {
			p32[i] = float32(v)
		}
		want, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{rows, int64(nf)}, Data: p32}})
		if err != nil {
			t.Fatal(err)
		}
		x, err := tensor.Cast(&tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{rows, int64(nf)}, Data: pos}, dt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Predict(ctx, []*tensor.Tensor{x})
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		for i := range want {
			compareTensor(t, got[i], want[i])
		}
	}
}

// TestParallelBatch predicts a batch large enough to be split over
// goroutines and checks it row by row against single-row predictions.
func TestParallelBatch(t *testing.T) {
	ctx := context.Background()
	m, err := Load(ctx, runtime.Source{Path: "testdata/models/multi_softprob/model.ubj"})
	if err != nil {
		t.Fatal(err)
	}
	nf := m.NumFeature()
	rows := 3000
	x := make([]float32, rows*nf)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * 2
		if i%11 == 0 {
			x[i] = float32(math.NaN())
		}
	}
	out, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{int64(rows), int64(nf)}, Data: x}})
	if err != nil {
		t.Fatal(err)
	}
	labels, probs := out[0].Data.([]int64), out[1].Data.([]float32)
	for r := 0; r < rows; r += 97 {
		one, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{1, int64(nf)}, Data: x[r*nf : (r+1)*nf]}})
		if err != nil {
			t.Fatal(err)
		}
		if one[0].Data.([]int64)[0] != labels[r] || !slices.Equal(one[1].Data.([]float32), probs[r*3:(r+1)*3]) {
			t.Fatalf("row %d: batch and single-row predictions differ", r)
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	m, err := Load(ctx, runtime.Source{Path: "testdata/models/reg_squarederror/model.json"})
	if err != nil {
		t.Fatal(err)
	}
	nf := int64(m.NumFeature())
	tests := []struct {
		name   string
		inputs []*tensor.Tensor
	}{
		{"no input", nil},
		{"two inputs", []*tensor.Tensor{
			{Name: "input", DType: tensor.Float32, Shape: []int64{1, nf}, Data: make([]float32, nf)},
			{Name: "other", DType: tensor.Float32, Shape: []int64{1, nf}, Data: make([]float32, nf)},
		}},
		{"nil tensor", []*tensor.Tensor{nil}},
		{"too narrow", []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{2, nf - 1}, Data: make([]float32, 2*(nf-1))}}},
		{"too wide", []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{1, nf + 1}, Data: make([]float32, nf+1)}}},
		{"one dimension", []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{nf}, Data: make([]float32, nf)}}},
		{"three dimensions", []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{1, 1, nf}, Data: make([]float32, nf)}}},
		{"data shorter than shape", []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{2, nf}, Data: make([]float32, nf)}}},
		{"strings", []*tensor.Tensor{{Name: "input", DType: tensor.String, Shape: []int64{1, nf}, Data: make([]string, nf)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Predict(ctx, tt.inputs)
			if !errors.Is(err, runtime.ErrInvalidInput) {
				t.Fatalf("got %v, want ErrInvalidInput", err)
			}
		})
	}
	// Zero rows are fine.
	out, err := m.Predict(ctx, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{0, nf}, Data: []float32{}}})
	if err != nil || len(out) != 1 || out[0].Len() != 0 || out[0].Shape[0] != 0 {
		t.Fatalf("zero rows: %v %v", out, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Predict(cancelled, []*tensor.Tensor{{Name: "input", DType: tensor.Float32, Shape: []int64{1, nf}, Data: make([]float32, nf)}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// legacyModel builds a file in XGBoost's old binary layout: the 136-byte
// parameter block, then the objective and booster names as length-prefixed
// strings.
func legacyModel(header string) []byte {
	var b []byte
	b = append(b, header...)
	param := make([]byte, 136)
	copy(param, []byte{0, 0, 0, 0x3f, 4}) // base_score 0.5, num_feature 4
	b = append(b, param...)
	for _, s := range []string{"binary:logistic", "gbtree"} {
		n := make([]byte, 8)
		n[0] = byte(len(s))
		b = append(b, n...)
		b = append(b, s...)
	}
	return append(b, make([]byte, 64)...)
}

func TestBadModels(t *testing.T) {
	good, err := os.ReadFile("testdata/models/binary_logistic/model.json")
	if err != nil {
		t.Fatal(err)
	}
	goodUBJ, err := os.ReadFile("testdata/models/binary_logistic/model.ubj")
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, runtime.ErrInvalidModel},
		{"text", []byte("hello"), runtime.ErrInvalidModel},
		{"legacy binary", legacyModel(""), runtime.ErrUnsupported},
		{"legacy binary with binf header", legacyModel("binf"), runtime.ErrUnsupported},
		{"JSON truncated", good[:len(good)/2], runtime.ErrInvalidModel},
		{"JSON truncated at the end", good[:len(good)-1], runtime.ErrInvalidModel},
		{"UBJSON truncated", goodUBJ[:len(goodUBJ)/2], runtime.ErrInvalidModel},
		{"UBJSON truncated at the end", goodUBJ[:len(goodUBJ)-1], runtime.ErrInvalidModel},
		{"UBJSON with trailing bytes", append(append([]byte(nil), goodUBJ...), 'x'), runtime.ErrInvalidModel},
		{"UBJSON huge count", []byte("{L\x00\x00\x00\x00\x00\x00\x00\x01a[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff}"), runtime.ErrInvalidModel},
		{"UBJSON negative length", []byte("{L\xff\xff\xff\xff\xff\xff\xff\xffa}"), runtime.ErrInvalidModel},
		{"UBJSON deep nesting", append([]byte("{i\x01a"), []byte(strings.Repeat("[", 10000))...), runtime.ErrInvalidModel},
		{"JSON deep nesting", []byte(`{"a":` + strings.Repeat("[", 10000)), runtime.ErrInvalidModel},
		{"no learner", []byte(`{"version": [3, 2, 0]}`), runtime.ErrInvalidModel},
		{"unknown objective", replace(`"binary:logistic"`, `"binary:made_up"`), runtime.ErrUnsupported},
		{"unknown booster", replace(`"name":"gbtree"`, `"name":"forest"`), runtime.ErrUnsupported},
		{"child out of range", replace(`"left_children":[1,`, `"left_children":[1000,`), runtime.ErrInvalidModel},
		{"cycle", replace(`"left_children":[1,`, `"left_children":[0,`), runtime.ErrInvalidModel},
		{"feature out of range", replace(`"split_indices":[`, `"split_indices":[99,`), runtime.ErrInvalidModel},
		{"num_nodes disagrees", replace(`"num_nodes":"`, `"num_nodes":"1`), runtime.ErrInvalidModel},
		{"num_trees disagrees", replace(`"num_trees":"`, `"num_trees":"9`), runtime.ErrInvalidModel},
		{"num_feature not a number", replace(`"num_feature":"5","num_target"`, `"num_feature":"five","num_target"`), runtime.ErrInvalidModel},
		{"base_score garbage", replace(`"base_score":"[`, `"base_score":"[x`), runtime.ErrInvalidModel},
		{"base_score out of the link's domain", []byte(strings.Replace(strings.Replace(string(good), `"binary:logistic"`, `"count:poisson"`, 1), `"base_score":"[`, `"base_score":"[-`, 1)), runtime.ErrInvalidModel},
		{"tree_info out of range", replace(`"tree_info":[0`, `"tree_info":[7`), runtime.ErrInvalidModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.data, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", m, err, tt.want)
			}
			t.Log(err)
		})
	}
}

// TestUnsupportedModel loads a real model the runtime does not support:
// its error must say so.
func TestUnsupportedModel(t *testing.T) {
	m, err := runtime.Load(context.Background(), "xgboost", runtime.Source{Path: "testdata/unsupported/multi_output_tree.json"})
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "multi_output_tree") {
		t.Fatalf("got %v, want ErrUnsupported naming multi_output_tree", err)
	}
	if m != nil {
		t.Fatalf("a failed load returned the model %#v", m)
	}
}

func TestLoadPaths(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/models/reg_squarederror/model.ubj")
	if err != nil {
		t.Fatal(err)
	}
	// A directory with model.ubj only, and one whose data option names
	// a file in a subdirectory.
	if err := os.WriteFile(filepath.Join(dir, "model.ubj"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, runtime.Source{Path: dir}); err != nil {
		t.Errorf("directory with model.ubj: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "booster.bin"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, runtime.Source{Path: dir, Options: map[string]any{"data": "sub/booster.bin"}}); err != nil {
		t.Errorf("data option: %v", err)
	}
	// Through an fs.FS.
	if _, err := Load(ctx, runtime.Source{FS: os.DirFS("testdata/models"), Path: "mlflow_xgb_dir", Options: map[string]any{"data": "model.xgb"}}); err != nil {
		t.Errorf("fs.FS directory: %v", err)
	}
	if _, err := Load(ctx, runtime.Source{FS: os.DirFS("testdata/models"), Path: "binary_logistic/model.json"}); err != nil {
		t.Errorf("fs.FS file: %v", err)
	}
	for _, bad := range []runtime.Source{
		{Path: filepath.Join(dir, "missing.json")},
		{Path: t.TempDir()}, // empty directory
		{Path: dir, Options: map[string]any{"data": "../model.ubj"}},
		{Path: dir, Options: map[string]any{"data": "/etc/passwd"}},
	} {
		if _, err := Load(ctx, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		} else if !errors.Is(err, fs.ErrNotExist) && !strings.Contains(err.Error(), "inside the model directory") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
