package onnx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/tensor"
)

// The core-operator fixtures written by testdata/gen_core.py: hand-built
// graphs (core_*, text_ops) whose expected outputs onnxruntime computed on
// the same inputs.
// (The ML-operator cases and the sklearn pipelines are checked by
// fixture_test.go, which walks every case directory.)

type coreJSONTensor struct {
	Name     string            `json:"name"`
	Datatype string            `json:"datatype"`
	Shape    []int64           `json:"shape"`
	Data     []json.RawMessage `json:"data"`
	Labels   []string          `json:"labels"`
}

func coreReadTensors(t *testing.T, path, key string) []coreJSONTensor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]coreJSONTensor
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc[key]
}

func coreFloat(raw json.RawMessage) (float64, error) {
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
	var v float64
	err := json.Unmarshal(raw, &v)
	return v, err
}

// coreTensor builds a tensor from its JSON form.
func coreTensor(jt coreJSONTensor) (*tensor.Tensor, error) {
	t, err := coreTensorData(jt)
	if err == nil && len(jt.Shape) == 0 {
		t.Shape = []int64{} // a scalar
	}
	return t, err
}

func coreTensorData(jt coreJSONTensor) (*tensor.Tensor, error) {
	dt, err := tensor.ParseDType(jt.Datatype)
	if err != nil {
		return nil, err
	}
	n := len(jt.Data)
	switch dt {
	case tensor.String:
		s := make([]string, n)
		for i, r := range jt.Data {
			if err := json.Unmarshal(r, &s[i]); err != nil {
				return nil, err
			}
		}
		return tensor.FromSlice(jt.Name, s, jt.Shape...)
	case tensor.Bool:
		b := make([]bool, n)
		for i, r := range jt.Data {
			if err := json.Unmarshal(r, &b[i]); err != nil {
				return nil, err
			}
		}
		return tensor.FromSlice(jt.Name, b, jt.Shape...)
	case tensor.Int64, tensor.Int32, tensor.Int16, tensor.Int8, tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		v := make([]int64, n)
		for i, r := range jt.Data {
			if err := json.Unmarshal(r, &v[i]); err != nil {
				var u uint64
				if err2 := json.Unmarshal(r, &u); err2 != nil {
					return nil, err
				}
				v[i] = int64(u)
			}
		}
		t, _ := tensor.FromSlice(jt.Name, v, jt.Shape...)
		if dt == tensor.Uint64 {
			u := make([]uint64, n)
			for i, x := range v {
				u[i] = uint64(x)
			}
			return tensor.FromSlice(jt.Name, u, jt.Shape...)
		}
		return tensor.Cast(t, dt)
	default:
		f := make([]float64, n)
		for i, r := range jt.Data {
			if f[i], err = coreFloat(r); err != nil {
				return nil, err
			}
		}
		t, _ := tensor.FromSlice(jt.Name, f, jt.Shape...)
		return tensor.Cast(t, dt)
	}
}

// coreCompare checks got against want: exactly for integers, strings and
// booleans, within 1e-5 relative (+1e-6 absolute) for floats.
func coreCompare(got, want *tensor.Tensor) error {
	if got.DType != want.DType {
		return fmt.Errorf("datatype %v, want %v", got.DType, want.DType)
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if err := got.Validate(); err != nil {
		return err
	}
	if got.DType.IsFloat() {
		g, _ := got.Float64s()
		w, _ := want.Float64s()
		for i := range w {
			switch {
			case math.IsNaN(w[i]) || math.IsNaN(g[i]):
				if math.IsNaN(w[i]) != math.IsNaN(g[i]) {
					return fmt.Errorf("element %d = %v, want %v", i, g[i], w[i])
				}
			case math.IsInf(w[i], 0) || math.IsInf(g[i], 0):
				if g[i] != w[i] {
					return fmt.Errorf("element %d = %v, want %v", i, g[i], w[i])
				}
			case math.Abs(g[i]-w[i]) > 1e-5*math.Abs(w[i])+1e-6:
				return fmt.Errorf("element %d = %v, want %v", i, g[i], w[i])
			}
		}
		return nil
	}
	if fmt.Sprint(got.Data) != fmt.Sprint(want.Data) {
		return fmt.Errorf("data %v, want %v", got.Data, want.Data)
	}
	return nil
}

func TestCoreFixtures(t *testing.T) {
	dirs, err := filepath.Glob("testdata/models/core_*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no core fixtures (run testdata/gen_core.py): %v", err)
	}
	dirs = append(dirs, "testdata/models/text_ops")
	ctx := context.Background()
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: dir})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			defer m.Close()
			var inputs []*tensor.Tensor
			for _, jt := range coreReadTensors(t, filepath.Join(dir, "inputs.json"), "inputs") {
				in, err := coreTensor(jt)
				if err != nil {
					t.Fatalf("input %s: %v", jt.Name, err)
				}
				inputs = append(inputs, in)
			}
			want := coreReadTensors(t, filepath.Join(dir, "expected.json"), "outputs")
			out, err := m.Predict(ctx, inputs)
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			sig := m.Signature()
			if len(out) != len(want) || len(sig.Outputs) != len(want) {
				t.Fatalf("%d outputs (signature %d), want %d", len(out), len(sig.Outputs), len(want))
			}
			for i, jw := range want {
				w, err := coreTensor(jw)
				if err != nil {
					t.Fatalf("expected %s: %v", jw.Name, err)
				}
				if out[i].Name != jw.Name || sig.Outputs[i].Name != jw.Name {
					t.Errorf("output %d is named %q (signature %q), want %q", i, out[i].Name, sig.Outputs[i].Name, jw.Name)
				}
				if err := coreCompare(out[i], w); err != nil {
					t.Errorf("output %s: %v", jw.Name, err)
				}
				if jw.Labels != nil && strings.Join(sig.Outputs[i].Labels, "|") != strings.Join(jw.Labels, "|") {
					t.Errorf("output %s: labels %v, want %v", jw.Name, sig.Outputs[i].Labels, jw.Labels)
				}
			}
			// Predicting twice gives the same result (pooled state is reset).
			again, err := m.Predict(ctx, inputs)
			if err != nil {
				t.Fatalf("second Predict: %v", err)
			}
			for i := range again {
				if err := coreCompare(again[i], out[i]); err != nil {
					t.Errorf("second run, output %d: %v", i, err)
				}
			}
		})
	}
}
