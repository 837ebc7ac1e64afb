package lightgbm

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

// oipTensor is a tensor in the fixtures' Open Inference Protocol JSON shape.
type oipTensor struct {
	Name     string            `json:"name"`
	Datatype string            `json:"datatype"`
	Shape    []int64           `json:"shape"`
	Data     []json.RawMessage `json:"data"`
	Labels   []string          `json:"labels"`
}

// jsonFloat decodes a JSON number or one of "NaN", "Infinity", "-Infinity".
func jsonFloat(raw json.RawMessage) (float64, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("not a number: %s", raw)
	}
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	return 0, fmt.Errorf("not a number: %q", s)
}

func (o oipTensor) tensor() (*tensor.Tensor, error) {
	dt, err := tensor.ParseDType(o.Datatype)
	if err != nil {
		return nil, err
	}
	t, err := tensor.New(o.Name, dt, o.Shape...)
	if err != nil {
		return nil, err
	}
	if len(o.Data) != t.Len() {
		return nil, fmt.Errorf("%s: %d values for shape %v", o.Name, len(o.Data), o.Shape)
	}
	for i, raw := range o.Data {
		switch d := t.Data.(type) {
		case []float32:
			f, err := jsonFloat(raw)
			if err != nil {
				return nil, err
			}
			d[i] = float32(f)
		case []float64:
			f, err := jsonFloat(raw)
			if err != nil {
				return nil, err
			}
			d[i] = f
		case []int64:
			if err := json.Unmarshal(raw, &d[i]); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: datatype %v not used by these fixtures", o.Name, dt)
		}
	}
	return t, nil
}

type fixtureCase struct {
	name     string
	dir      string
	options  map[string]any
	inputs   []*tensor.Tensor
	expected []oipTensor
}

func loadCases(t testing.TB) []fixtureCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "models", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no fixtures under testdata/models (run testdata/gen.py)")
	}
	var cases []fixtureCase
	for _, dir := range dirs {
		c := fixtureCase{name: filepath.Base(dir), dir: dir}
		readJSON(t, filepath.Join(dir, "options.json"), &c.options)
		var in struct{ Inputs []oipTensor }
		readJSON(t, filepath.Join(dir, "inputs.json"), &in)
		for _, o := range in.Inputs {
			x, err := o.tensor()
			if err != nil {
				t.Fatalf("%s: inputs: %v", c.name, err)
			}
			c.inputs = append(c.inputs, x)
		}
		var out struct{ Outputs []oipTensor }
		readJSON(t, filepath.Join(dir, "expected.json"), &out)
		c.expected = out.Outputs
		cases = append(cases, c)
	}
	return cases
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// closeEnough is the fixtures' float tolerance, with NaN equal to NaN and
// infinities equal to themselves.
func closeEnough(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	return math.Abs(got-want) <= 1e-5*math.Abs(want)+1e-6
}

// compareOutput checks got against a fixture's expected tensor and returns
// a description of the first mismatches.
func compareOutput(got *tensor.Tensor, want oipTensor) error {
	if got.Name != want.Name {
		return fmt.Errorf("output named %q, want %q", got.Name, want.Name)
	}
	if got.DType.String() != want.Datatype {
		return fmt.Errorf("%s: datatype %v, want %s", want.Name, got.DType, want.Datatype)
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("%s: shape %v, want %v", want.Name, got.Shape, want.Shape)
	}
	exp, err := want.tensor()
	if err != nil {
		return err
	}
	bad := 0
	var msg string
	switch g := got.Data.(type) {
	case []float32:
		// Compare against the float64 reference values, not their float32
		// rounding.
		for i := range g {
			wf, _ := jsonFloat(want.Data[i])
			if !closeEnough(float64(g[i]), wf) {
				if bad < 5 {
					msg += fmt.Sprintf(" [%d] got %v want %v;", i, g[i], wf)
				}
				bad++
			}
		}
	case []int64:
		w := exp.Data.([]int64)
		for i := range g {
			if g[i] != w[i] {
				if bad < 5 {
					msg += fmt.Sprintf(" [%d] got %d want %d;", i, g[i], w[i])
				}
				bad++
			}
		}
	default:
		return fmt.Errorf("%s: unexpected Go type %T", want.Name, got.Data)
	}
	if bad > 0 {
		return fmt.Errorf("%s: %d of %d values differ:%s", want.Name, bad, got.Len(), msg)
	}
	return nil
}
