//go:build ort

package ort

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// libraryMissing is set by TestMain when no onnxruntime library is found.
var libraryMissing string

// TestMain points $KILN_ORT_LIBRARY at the onnxruntime wheel of the
// repository's virtualenv when it is unset. Without a library the tests
// skip, except under CI=true, where they fail.
func TestMain(m *testing.M) {
	if os.Getenv(LibraryEnv) == "" {
		libs, _ := filepath.Glob(filepath.Join("..", "..", ".venv", "lib", "python3*", "site-packages", "onnxruntime", "capi", "libonnxruntime.so*"))
		if len(libs) > 0 {
			abs, err := filepath.Abs(libs[len(libs)-1])
			if err == nil {
				os.Setenv(LibraryEnv, abs)
			}
		}
	}
	if lib := os.Getenv(LibraryEnv); lib == "" {
		libraryMissing = "no onnxruntime library: set " + LibraryEnv + " or create .venv with onnxruntime"
	} else if _, err := os.Stat(lib); err != nil {
		libraryMissing = err.Error()
	}
	if libraryMissing != "" && os.Getenv("CI") == "true" {
		fmt.Fprintln(os.Stderr, "runtime/ort:", libraryMissing)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func needLibrary(t *testing.T) {
	t.Helper()
	if libraryMissing != "" {
		t.Skip(libraryMissing)
	}
}

type oipTensor struct {
	Name     string            `json:"name"`
	Datatype string            `json:"datatype"`
	Shape    []int64           `json:"shape"`
	Data     []json.RawMessage `json:"data"`
	Labels   []string          `json:"labels"`
}

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

// tensor decodes the JSON tensor into Kiln's types; floats also come back
// as float64 for comparison against the unrounded reference.
func (o oipTensor) tensor() (*tensor.Tensor, []float64, error) {
	dt, err := tensor.ParseDType(o.Datatype)
	if err != nil {
		return nil, nil, err
	}
	t, err := tensor.New(o.Name, dt, o.Shape...)
	if err != nil {
		return nil, nil, err
	}
	if len(o.Data) != t.Len() {
		return nil, nil, fmt.Errorf("%s: %d values for shape %v", o.Name, len(o.Data), o.Shape)
	}
	var floats []float64
	for i, raw := range o.Data {
		var err error
		switch d := t.Data.(type) {
		case []float32, []float64:
			var f float64
			if f, err = jsonFloat(raw); err == nil {
				floats = append(floats, f)
				if d32, ok := d.([]float32); ok {
					d32[i] = float32(f)
				} else {
					d.([]float64)[i] = f
				}
			}
		case []uint16:
			if dt == tensor.Float16 {
				var f float64
				if f, err = jsonFloat(raw); err == nil {
					floats = append(floats, f)
					d[i] = tensor.Float32ToHalf(float32(f))
				}
			} else {
				err = json.Unmarshal(raw, &d[i])
			}
		case []int8:
			err = json.Unmarshal(raw, &d[i])
		case []int16:
			err = json.Unmarshal(raw, &d[i])
		case []int32:
			err = json.Unmarshal(raw, &d[i])
		case []int64:
			err = json.Unmarshal(raw, &d[i])
		case []uint8:
			err = json.Unmarshal(raw, &d[i])
		case []uint32:
			err = json.Unmarshal(raw, &d[i])
		case []uint64:
			err = json.Unmarshal(raw, &d[i])
		case []bool:
			err = json.Unmarshal(raw, &d[i])
		case []string:
			err = json.Unmarshal(raw, &d[i])
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s[%d]: %w", o.Name, i, err)
		}
	}
	return t, floats, nil
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func closeEnough(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	return math.Abs(got-want) <= 1e-5*math.Abs(want)+1e-6
}

func compare(got *tensor.Tensor, spec runtime.TensorSpec, want oipTensor) error {
	if got.Name != want.Name || got.DType.String() != want.Datatype {
		return fmt.Errorf("got %s %v, want %s %s", got.Name, got.DType, want.Name, want.Datatype)
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("%s: shape %v, want %v", want.Name, got.Shape, want.Shape)
	}
	if want.Labels != nil && fmt.Sprint(spec.Labels) != fmt.Sprint(want.Labels) {
		return fmt.Errorf("%s: labels %q, want %q", want.Name, spec.Labels, want.Labels)
	}
	exp, floats, err := want.tensor()
	if err != nil {
		return err
	}
	if floats != nil {
		g, err := got.Float64s()
		if err != nil {
			return err
		}
		for i := range g {
			if !closeEnough(g[i], floats[i]) {
				return fmt.Errorf("%s[%d] = %v, want %v", want.Name, i, g[i], floats[i])
			}
		}
		return nil
	}
	if fmt.Sprint(got.Data) != fmt.Sprint(exp.Data) {
		return fmt.Errorf("%s = %v, want %v", want.Name, got.Data, exp.Data)
	}
	return nil
}

// fixtureDirs lists this package's cases and runtime/onnx's (read-only
// here; their expected outputs come from onnxruntime too), by test name.
func fixtureDirs(t *testing.T) map[string]string {
	dirs := map[string]string{}
	for prefix, pattern := range map[string]string{
		"ort/":  filepath.Join("testdata", "models", "*"),
		"onnx/": filepath.Join("..", "onnx", "testdata", "models", "*"),
	} {
		d, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range d {
			// A runtime/onnx case is complete once its expected outputs
			// are written; this package's cases without them must fail
			// to load (see TestFixtures).
			if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil && prefix == "onnx/" {
				continue
			}
			dirs[prefix+filepath.Base(dir)] = dir
		}
	}
	if len(dirs) < 3 {
		t.Fatalf("found only %d fixture cases", len(dirs))
	}
	return dirs
}

// undefined lists outputs whose reference values onnxruntime does not
// define: it leaves them unwritten, so they hold whatever its allocator
// returns (the fixture recorded a fresh process's zeros).
var undefined = map[string]string{
	// Binary classifiers with post_transform PROBIT: onnxruntime writes
	// column 0 of the scores and leaves column 1 as it finds it.
	"onnx/ml_tree_classifier_binary/S5": "binary PROBIT: column 1 unwritten by onnxruntime",
	"onnx/ml_svm_models/S3":             "binary PROBIT: column 1 unwritten by onnxruntime",
}

func TestFixtures(t *testing.T) {
	needLibrary(t)
	ctx := context.Background()
	for name, dir := range fixtureDirs(t) {
		t.Run(name, func(t *testing.T) {
			m, err := runtime.Load(ctx, "ort", runtime.Source{Path: dir})
			if _, statErr := os.Stat(filepath.Join(dir, "expected.json")); os.IsNotExist(statErr) {
				// A case without expected outputs must be refused at load.
				if !errors.Is(err, runtime.ErrUnsupported) {
					t.Fatalf("load error %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var in struct{ Inputs []oipTensor }
			var out struct{ Outputs []oipTensor }
			readJSON(t, filepath.Join(dir, "inputs.json"), &in)
			readJSON(t, filepath.Join(dir, "expected.json"), &out)
			var inputs []*tensor.Tensor
			for _, o := range in.Inputs {
				x, _, err := o.tensor()
				if err != nil {
					t.Fatal(err)
				}
				inputs = append(inputs, x)
			}
			got, err := m.Predict(ctx, inputs)
			if err != nil {
				t.Fatal(err)
			}
			sig := m.Signature()
			if len(got) != len(out.Outputs) || len(sig.Outputs) != len(got) {
				t.Fatalf("%d outputs (signature %d), want %d", len(got), len(sig.Outputs), len(out.Outputs))
			}
			for i := range got {
				if why, ok := undefined[name+"/"+got[i].Name]; ok {
					t.Logf("%s not compared: %s", got[i].Name, why)
					continue
				}
				if err := compare(got[i], sig.Outputs[i], out.Outputs[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestSignature(t *testing.T) {
	needLibrary(t)
	m, err := runtime.Load(context.Background(), "ort", runtime.Source{
		FS: os.DirFS("testdata"), Path: "models/zipmap_strings", Options: map[string]any{"intra_op_threads": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sig := m.Signature()
	want := "{[{X FP32 [-1 2] []}] [{label BYTES [-1] []} {probabilities FP32 [-1 3] [zebra apple mango]}]}"
	if got := fmt.Sprint(sig); got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	needLibrary(t)
	ctx := context.Background()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  runtime.Source
		want error
	}{
		{"garbage", runtime.Source{Path: bad}, runtime.ErrInvalidModel},
		{"missing", runtime.Source{Path: filepath.Join(dir, "none.onnx")}, os.ErrNotExist},
		{"missing in dir", runtime.Source{Path: dir}, os.ErrNotExist},
		{"other library", runtime.Source{Path: bad, Options: map[string]any{"library": filepath.Join(dir, "libother.so")}}, ErrNoLibrary},
		{"sequence output", runtime.Source{Path: filepath.Join("testdata", "models", "sequence_output")}, runtime.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Backend{}.Load(ctx, tc.src)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNoLibrary(t *testing.T) {
	t.Setenv(LibraryEnv, "")
	_, err := Backend{}.Load(context.Background(), runtime.Source{Path: "testdata/models/all_types"})
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), LibraryEnv) {
		t.Fatalf("error %v, want ErrNoLibrary naming %s", err, LibraryEnv)
	}
}

func TestPredictErrorsAndConcurrency(t *testing.T) {
	needLibrary(t)
	ctx := context.Background()
	m, err := runtime.Load(ctx, "ort", runtime.Source{Path: filepath.Join("testdata", "models", "zipmap_strings", "model.onnx")})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.FromSlice("X", []float32{1, 2, 3, 4}, 2, 2)
	x64, _ := tensor.FromSlice("X", []float64{1, 2, 3, 4}, 2, 2)
	wide, _ := tensor.FromSlice("X", []float32{1, 2, 3}, 1, 3)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for name, tc := range map[string]struct {
		ctx  context.Context
		in   []*tensor.Tensor
		want error
	}{
		"type":     {ctx, []*tensor.Tensor{x64}, runtime.ErrInvalidInput},
		"shape":    {ctx, []*tensor.Tensor{wide}, runtime.ErrInvalidInput},
		"count":    {ctx, nil, runtime.ErrInvalidInput},
		"canceled": {canceled, []*tensor.Tensor{x}, context.Canceled},
	} {
		if _, err := m.Predict(tc.ctx, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
	}

	// Concurrent predictions agree with a sequential one.
	ref, err := m.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got, err := m.Predict(ctx, []*tensor.Tensor{x})
				if err != nil {
					errs <- err
					return
				}
				if fmt.Sprint(got[1].Data) != fmt.Sprint(ref[1].Data) || fmt.Sprint(got[0].Data) != fmt.Sprint(ref[0].Data) {
					errs <- errors.New("concurrent prediction differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Predict(ctx, []*tensor.Tensor{x}); !errors.Is(err, errClosed) {
		t.Errorf("after Close: %v", err)
	}
}
