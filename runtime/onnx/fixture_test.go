package onnx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// The fixtures of testdata/models/<case>/ (written by testdata/gen.py and
// testdata/gen_core.py: a model, its inputs and onnxruntime's outputs) are
// loaded through the "onnx" backend and must reproduce onnxruntime:
// integer, string and bool outputs exactly, floats within
// |got-want| <= 1e-5*|want| + 1e-6.

type fixtureTensor struct {
	Name     string            `json:"name"`
	Datatype string            `json:"datatype"`
	Shape    []int64           `json:"shape"`
	Data     []json.RawMessage `json:"data"`
	Labels   []string          `json:"labels"`
}

func readFixture(t testing.TB, path, key string) []fixtureTensor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]fixtureTensor
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ts, ok := doc[key]
	if !ok {
		t.Fatalf("%s: no %q", path, key)
	}
	return ts
}

// fixtureFloat parses a JSON number or one of "NaN", "Infinity",
// "-Infinity".
func fixtureFloat(raw json.RawMessage) (float64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("bad float %q", s)
	}
	return strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
}

// toTensor builds the tensor a fixture describes.
func (ft fixtureTensor) toTensor() (*tensor.Tensor, error) {
	dt, err := tensor.ParseDType(ft.Datatype)
	if err != nil {
		return nil, err
	}
	n := len(ft.Data)
	data, err := tensor.MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	for i, raw := range ft.Data {
		switch d := data.(type) {
		case []string:
			if err := json.Unmarshal(raw, &d[i]); err != nil {
				return nil, err
			}
		case []bool:
			if err := json.Unmarshal(raw, &d[i]); err != nil {
				return nil, err
			}
		case []float32, []float64, []uint16:
			f, err := fixtureFloat(raw)
			if err != nil {
				return nil, err
			}
			switch d := data.(type) {
			case []float32:
				d[i] = float32(f)
			case []float64:
				d[i] = f
			case []uint16:
				d[i] = tensor.Float32ToHalf(float32(f))
			}
		default:
			v, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			switch d := data.(type) {
			case []int8:
				d[i] = int8(v)
			case []int16:
				d[i] = int16(v)
			case []int32:
				d[i] = int32(v)
			case []int64:
				d[i] = v
			case []uint8:
				d[i] = uint8(v)
			case []uint32:
				d[i] = uint32(v)
			case []uint64:
				d[i] = uint64(v)
			}
		}
	}
	t := &tensor.Tensor{Name: ft.Name, DType: dt, Shape: ft.Shape, Data: data}
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	return t, t.Validate()
}

// closeEnough is the fixtures' float tolerance.
func closeEnough(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= 1e-5*math.Abs(want)+1e-6
}

// compareTensor returns the differences between got and want (at most a
// few).
func compareTensor(got, want *tensor.Tensor) []string {
	if got.DType != want.DType {
		return []string{fmt.Sprintf("datatype %v, want %v", got.DType, want.DType)}
	}
	if !slices.Equal(got.Shape, want.Shape) {
		return []string{fmt.Sprintf("shape %v, want %v", got.Shape, want.Shape)}
	}
	if err := got.Validate(); err != nil {
		return []string{err.Error()}
	}
	var diffs []string
	add := func(i int, g, w any) {
		if len(diffs) < 5 {
			diffs = append(diffs, fmt.Sprintf("element %d: got %v, want %v", i, g, w))
		}
	}
	switch w := want.Data.(type) {
	case []string:
		for i, g := range got.Data.([]string) {
			if g != w[i] {
				add(i, strconv.Quote(g), strconv.Quote(w[i]))
			}
		}
	case []bool:
		for i, g := range got.Data.([]bool) {
			if g != w[i] {
				add(i, g, w[i])
			}
		}
	default:
		gf, err := got.Float64s()
		if err != nil {
			return []string{err.Error()}
		}
		wf, _ := want.Float64s()
		exact := !want.DType.IsFloat()
		for i := range wf {
			if exact && gf[i] != wf[i] || !exact && !closeEnough(gf[i], wf[i]) {
				add(i, gf[i], wf[i])
			}
		}
		if exact && len(diffs) == 0 {
			// Float64s loses int64 precision above 2^53: compare exactly.
			if g, ok := got.Data.([]int64); ok {
				for i, v := range w.([]int64) {
					if g[i] != v {
						add(i, g[i], v)
					}
				}
			}
		}
	}
	return diffs
}

func fixtureDirs(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "models", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, "expected.json")); err == nil && !st.IsDir() {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatal("no fixtures under testdata/models (run testdata/gen.py)")
	}
	return out
}

func TestFixtures(t *testing.T) {
	ctx := context.Background()
	for _, dir := range fixtureDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: dir})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer m.Close()
			var inputs []*tensor.Tensor
			for _, ft := range readFixture(t, filepath.Join(dir, "inputs.json"), "inputs") {
				x, err := ft.toTensor()
				if err != nil {
					t.Fatalf("input %q: %v", ft.Name, err)
				}
				inputs = append(inputs, x)
			}
			want := readFixture(t, filepath.Join(dir, "expected.json"), "outputs")
			sig := m.Signature()
			if len(sig.Outputs) != len(want) {
				t.Fatalf("signature has %d outputs, onnxruntime %d", len(sig.Outputs), len(want))
			}
			got, err := m.Predict(ctx, inputs)
			if err != nil {
				t.Fatalf("predict: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i, w := range want {
				wt, err := w.toTensor()
				if err != nil {
					t.Fatalf("expected %q: %v", w.Name, err)
				}
				if sig.Outputs[i].Name != w.Name || got[i].Name != w.Name {
					t.Errorf("output %d is %q (signature %q), want %q", i, got[i].Name, sig.Outputs[i].Name, w.Name)
				}
				if w.Labels != nil && !slices.Equal(sig.Outputs[i].Labels, w.Labels) {
					t.Errorf("output %q: labels %q, want %q", w.Name, sig.Outputs[i].Labels, w.Labels)
				}
				for _, d := range compareTensor(got[i], wt) {
					t.Errorf("output %q: %s", w.Name, d)
				}
			}
			// A second run must give the same answer (no state kept
			// between predictions).
			again, err := m.Predict(ctx, inputs)
			if err != nil {
				t.Fatalf("second predict: %v", err)
			}
			for i := range again {
				if d := compareTensor(again[i], got[i]); len(d) > 0 {
					t.Errorf("output %q differs on the second run: %s", want[i].Name, d[0])
				}
			}
		})
	}
}

// TestFixtureTolerance checks the comparison itself.
func TestFixtureTolerance(t *testing.T) {
	for _, c := range []struct {
		got, want float64
		ok        bool
	}{
		{1, 1, true},
		{1 + 1e-6, 1, true},
		{1 + 2e-5, 1, false},
		{1e-7, 0, true},
		{2e-6, 0, false},
		{math.NaN(), math.NaN(), true},
		{0, math.NaN(), false},
		{math.Inf(1), math.Inf(1), true},
		{math.MaxFloat32, math.Inf(1), false},
	} {
		if got := closeEnough(c.got, c.want); got != c.ok {
			t.Errorf("closeEnough(%v, %v) = %v, want %v", c.got, c.want, got, c.ok)
		}
	}
	a := &tensor.Tensor{DType: tensor.Int64, Shape: []int64{2}, Data: []int64{1 << 60, 2}}
	b := &tensor.Tensor{DType: tensor.Int64, Shape: []int64{2}, Data: []int64{1<<60 + 1, 2}}
	if len(compareTensor(a, b)) == 0 {
		t.Error("int64 values differing below float64 precision compared equal")
	}
	c := &tensor.Tensor{DType: tensor.Int64, Shape: []int64{1, 2}, Data: []int64{1 << 60, 2}}
	if len(compareTensor(a, c)) == 0 {
		t.Error("different shapes compared equal")
	}
}
