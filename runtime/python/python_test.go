//go:build unix

package python_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/runtime/python"
	"github.com/kiln-ml/kiln/tensor"
)

// The models are MLflow models saved by the real mlflow client, with the
// outputs the reference libraries produced (model/testdata/gen.py).
var (
	testdata = filepath.Join("..", "..", "model", "testdata")
	ctx      = context.Background()
)

var (
	pyOnce sync.Once
	pyExe  string
	pyErr  error
)

// interpreter returns a Python with mlflow and scikit-learn: $KILN_PYTHON,
// else the repository's .venv. Without one the tests skip, except under
// CI=true, where they fail.
func interpreter(t *testing.T) string {
	t.Helper()
	pyOnce.Do(func() {
		pyExe = os.Getenv("KILN_PYTHON")
		if pyExe == "" {
			pyExe, _ = filepath.Abs(filepath.Join("..", "..", ".venv", "bin", "python"))
		}
		out, err := exec.Command(pyExe, "-c", "import mlflow, sklearn, pandas, numpy").CombinedOutput()
		if err != nil {
			pyErr = errors.New(pyExe + ": " + err.Error() + ": " + strings.TrimSpace(string(out)))
		}
	})
	if pyErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Python with mlflow for the python worker tests (CI must run them; set KILN_PYTHON or run make venv): %v", pyErr)
		}
		t.Skipf("no Python with mlflow (set KILN_PYTHON or run make venv): %v", pyErr)
	}
	return pyExe
}

func load(t *testing.T, fixture string, opts map[string]any) *python.Model {
	t.Helper()
	src, _ := filepath.Abs(filepath.Join("..", "..", "sdk", "python", "src"))
	o := map[string]any{
		"python": interpreter(t),
		"env":    []string{"PYTHONPATH=" + src},
		"logger": slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for k, v := range opts {
		o[k] = v
	}
	dir := filepath.Join(testdata, fixture)
	before := listDir(t, dir)
	m, err := runtime.Load(ctx, "python", runtime.Source{Path: dir, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		// The worker leaves the model directory as it found it.
		if after := listDir(t, dir); !reflect.DeepEqual(after, before) {
			t.Errorf("model directory changed: %v, was %v", after, before)
		}
	})
	return m.(*python.Model)
}

func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

type expected map[string]struct {
	Inputs  map[string]json.RawMessage `json:"inputs"`
	Outputs map[string]json.RawMessage `json:"outputs"`
}

func readExpected(t *testing.T) expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustTensor(t *testing.T, name string, data any, shape ...int64) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromSlice(name, data, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func irisInputs(t *testing.T, e expected) []*tensor.Tensor {
	var in []*tensor.Tensor
	for _, c := range []string{"sepal_length", "sepal_width", "petal_length", "petal_width"} {
		in = append(in, mustTensor(t, c, decode[[]float64](t, e["sklearn_logreg"].Inputs[c])))
	}
	return in
}

func echoInputs(t *testing.T, x []float64, n []int64, s []string) []*tensor.Tensor {
	// Deliberately out of signature order: inputs match by name.
	return []*tensor.Tensor{mustTensor(t, "s", s), mustTensor(t, "x", x), mustTensor(t, "n", n)}
}

func TestSklearnColumns(t *testing.T) {
	e := readExpected(t)
	m := load(t, "sklearn_logreg", nil)
	sig := m.Signature()
	want := runtime.Signature{
		Inputs: []runtime.TensorSpec{
			{Name: "sepal_length", DType: tensor.Float64, Shape: []int64{-1}}, {Name: "sepal_width", DType: tensor.Float64, Shape: []int64{-1}},
			{Name: "petal_length", DType: tensor.Float64, Shape: []int64{-1}}, {Name: "petal_width", DType: tensor.Float64, Shape: []int64{-1}},
		},
		Outputs: []runtime.TensorSpec{{Name: "predictions", DType: tensor.Int64, Shape: []int64{-1}}},
	}
	if !reflect.DeepEqual(sig, want) {
		t.Fatalf("signature %+v, want %+v", sig, want)
	}
	out, err := m.Predict(ctx, irisInputs(t, e))
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := decode[[]int64](t, e["sklearn_logreg"].Outputs["predictions"])
	if len(out) != 1 || out[0].Name != "predictions" || !reflect.DeepEqual(out[0].Data, wantLabels) || !reflect.DeepEqual(out[0].Shape, []int64{int64(len(wantLabels))}) {
		t.Fatalf("got %+v, want labels %v", out, wantLabels)
	}
	// Inputs that do not fit the signature fail before reaching the worker.
	bad := irisInputs(t, e)
	bad[0] = mustTensor(t, "sepal_length", []float32{1, 2, 3, 4, 5, 6, 7, 8})
	if _, err := m.Predict(ctx, bad); !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), "sepal_length") {
		t.Errorf("wrong dtype: %v", err)
	}
	if _, err := m.Predict(ctx, bad[1:]); !errors.Is(err, runtime.ErrInvalidInput) {
		t.Errorf("missing column: %v", err)
	}
	// Columns of different lengths are the worker's input error.
	bad = irisInputs(t, e)
	bad[1] = mustTensor(t, "sepal_width", []float64{1})
	if _, err := m.Predict(ctx, bad); !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), "different lengths") {
		t.Errorf("ragged columns: %v", err)
	}
}

func TestSklearnTensor(t *testing.T) {
	e := readExpected(t)
	m := load(t, "sklearn_ridge_tensor", nil)
	if in := m.Signature().Inputs; len(in) != 1 || in[0].Name != "input" || in[0].DType != tensor.Float32 || !reflect.DeepEqual(in[0].Shape, []int64{-1, 4}) {
		t.Fatalf("inputs %+v", in)
	}
	rows := decode[[][]float32](t, e["sklearn_ridge_tensor"].Inputs["input"])
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	out, err := m.Predict(ctx, []*tensor.Tensor{mustTensor(t, "input", flat, int64(len(rows)), 4)})
	if err != nil {
		t.Fatal(err)
	}
	want := decode[[]float64](t, e["sklearn_ridge_tensor"].Outputs["predictions"])
	got, ok := out[0].Data.([]float32)
	if !ok || len(got) != len(want) {
		t.Fatalf("outputs %+v", out)
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
			t.Errorf("row %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestCustomModelStrings(t *testing.T) {
	e := readExpected(t)["pyfunc_echo"]
	m := load(t, "pyfunc_echo", nil)
	x, n, s := decode[[]float64](t, e.Inputs["x"]), decode[[]int64](t, e.Inputs["n"]), decode[[]string](t, e.Inputs["s"])
	out, err := m.Predict(ctx, echoInputs(t, x, n, s))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].Name != "y" || out[1].Name != "m" || out[2].Name != "label" {
		t.Fatalf("outputs %+v", out)
	}
	if !reflect.DeepEqual(out[0].Data, decode[[]float64](t, e.Outputs["y"])) ||
		!reflect.DeepEqual(out[1].Data, decode[[]int64](t, e.Outputs["m"])) ||
		!reflect.DeepEqual(out[2].Data, decode[[]string](t, e.Outputs["label"])) {
		t.Errorf("got %v %v %v", out[0].Data, out[1].Data, out[2].Data)
	}
}

func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestCrashAndRestart(t *testing.T) {
	m := load(t, "pyfunc_echo", nil)
	ok := func() {
		t.Helper()
		out, err := m.Predict(ctx, echoInputs(t, []float64{1}, []int64{1}, []string{"a"}))
		if err != nil || out[2].Data.([]string)[0] != "A" {
			t.Fatalf("predict: %v %v", out, err)
		}
	}
	ok()
	first := m.PIDs()
	if len(first) != 1 {
		t.Fatalf("pids %v", first)
	}

	// Killed while idle: the next request starts a new worker and succeeds.
	syscall.Kill(first[0], syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	ok()
	second := m.PIDs()
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("pids after restart %v (before %v)", second, first)
	}

	// Killed in the middle of a request: that request fails with
	// ErrWorkerCrashed, the next one gets a new worker.
	go func() {
		time.Sleep(500 * time.Millisecond)
		syscall.Kill(second[0], syscall.SIGKILL)
	}()
	_, err := m.Predict(ctx, echoInputs(t, []float64{-5}, []int64{1}, []string{"a"})) // sleeps 5 s
	if !errors.Is(err, python.ErrWorkerCrashed) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("killed mid-request: %v", err)
	}
	ok()

	// The model itself exits mid-request (n == -999 calls os._exit(3)).
	_, err = m.Predict(ctx, echoInputs(t, []float64{1}, []int64{-999}, []string{"a"}))
	if !errors.Is(err, python.ErrWorkerCrashed) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("model exit: %v", err)
	}
	ok()
	if pids := m.PIDs(); len(pids) != 1 || pids[0] == second[0] || pidAlive(second[0]) {
		t.Errorf("pids %v, old %d alive=%v", pids, second[0], pidAlive(second[0]))
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	m := load(t, "pyfunc_echo", map[string]any{"timeout": "1.5s"})
	slow := echoInputs(t, []float64{-4}, []int64{1}, []string{"a"}) // sleeps 4 s
	start := time.Now()
	_, err := m.Predict(ctx, slow)
	if !errors.Is(err, python.ErrTimeout) || time.Since(start) > 3500*time.Millisecond {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	out, err := m.Predict(ctx, echoInputs(t, []float64{2}, []int64{1}, []string{"b"}))
	if err != nil || out[0].Data.([]float64)[0] != 4 {
		t.Fatalf("after the timeout: %v %v", out, err)
	}
	pid := m.PIDs()[0]

	// A cancelled request returns at once; its worker finishes in the
	// background and serves the next request (no restart).
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = m.Predict(cctx, echoInputs(t, []float64{-0.8}, []int64{1}, []string{"a"}))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 700*time.Millisecond {
		t.Fatalf("cancelled after %v: %v", time.Since(start), err)
	}
	if _, err := m.Predict(ctx, echoInputs(t, []float64{1}, []int64{1}, []string{"a"})); err != nil {
		t.Fatal(err)
	}
	if pids := m.PIDs(); len(pids) != 1 || pids[0] != pid {
		t.Errorf("worker restarted after a cancellation: %v, was %d", pids, pid)
	}
}

func TestPoolAndClose(t *testing.T) {
	m := load(t, "pyfunc_echo", map[string]any{"workers": 2, "health_interval": "100ms"})
	pids := m.PIDs()
	if len(pids) != 2 || pids[0] == pids[1] {
		t.Fatalf("pids %v", pids)
	}
	// Two slow requests run side by side on the two workers.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.Predict(ctx, echoInputs(t, []float64{-1}, []int64{1}, []string{"a"}))
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || time.Since(start) > 1900*time.Millisecond {
		t.Fatalf("parallel requests took %v: %v", time.Since(start), errs)
	}
	// The health check notices a dead idle worker.
	syscall.Kill(pids[0], syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for len(m.PIDs()) != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := m.PIDs(); len(got) != 1 || got[0] != pids[1] {
		t.Errorf("after the health check: %v", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if pidAlive(pids[1]) {
		t.Errorf("worker %d still running after Close", pids[1])
	}
	if _, err := m.Predict(ctx, echoInputs(t, []float64{1}, []int64{1}, []string{"a"})); !errors.Is(err, python.ErrClosed) {
		t.Errorf("predict after close: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	py := interpreter(t)
	src, _ := filepath.Abs(filepath.Join("..", "..", "sdk", "python", "src"))
	badModel := t.TempDir()
	os.WriteFile(filepath.Join(badModel, "MLmodel"), []byte("flavors: {python_function: {loader_module: no_such_loader_xyz}}\n"), 0o644)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// An interpreter without the kiln package: a bare virtualenv of the
	// same Python (the test virtualenv itself has kiln installed).
	bare := filepath.Join(t.TempDir(), "bare")
	if out, err := exec.Command(py, "-m", "venv", "--without-pip", bare).CombinedOutput(); err != nil {
		t.Fatalf("make a bare virtualenv: %v\n%s", err, out)
	}
	tests := []struct {
		name string
		path string
		opts map[string]any
		want []string
	}{
		{"no interpreter", filepath.Join(testdata, "pyfunc_echo"), map[string]any{"python": "/nonexistent/python3"}, []string{"/nonexistent/python3"}},
		{"no kiln package", filepath.Join(testdata, "pyfunc_echo"), map[string]any{"python": filepath.Join(bare, "bin", "python"), "env": []string{"PYTHONPATH="}},
			[]string{"No module named", "pip install ./sdk/python"}},
		{"model fails to load", badModel, map[string]any{"python": py, "env": []string{"PYTHONPATH=" + src}}, []string{"no_such_loader_xyz"}},
		{"not a directory", filepath.Join(testdata, "nope"), map[string]any{"python": py}, []string{"not a model directory"}},
		{"bad option", filepath.Join(testdata, "pyfunc_echo"), map[string]any{"workers": 0}, []string{"option workers"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts["logger"] = quiet
			_, err := runtime.Load(ctx, "python", runtime.Source{Path: tc.path, Options: tc.opts})
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
