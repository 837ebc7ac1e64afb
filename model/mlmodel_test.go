package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

// The fixtures under testdata/ were written by the real mlflow client
// (testdata/gen.py).

func TestReadMLmodelFixtures(t *testing.T) {
	irisCols := []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}
	tests := []struct {
		dir      string
		flavors  []string
		backend  string
		file     string // Source.Path relative to the directory ("" = the directory)
		options  map[string]any
		inCols   []string // column-based inputs
		inTensor *TensorSpec
		exKey    string // the input example's request key
	}{
		{dir: "sklearn_logreg", flavors: []string{"python_function", "sklearn"}, backend: "python",
			options: map[string]any{"loader_module": "mlflow.sklearn"}, inCols: irisCols, exKey: "dataframe_split"},
		{dir: "sklearn_ridge_tensor", flavors: []string{"python_function", "sklearn"}, backend: "python",
			inTensor: &TensorSpec{DType: tensor.Float32, Shape: []int64{-1, 4}, NumpyType: "float32"}, exKey: "inputs"},
		{dir: "xgboost_clf", flavors: []string{"python_function", "xgboost"}, backend: "xgboost", file: "model.ubj",
			options: map[string]any{"model_class": "xgboost.sklearn.XGBClassifier", "model_format": "ubj"}, inCols: irisCols, exKey: "dataframe_split"},
		// A LightGBM model saved through the sklearn API is a pickle: python serves it.
		{dir: "lightgbm_clf", flavors: []string{"lightgbm", "python_function"}, backend: "python", inCols: irisCols, exKey: "dataframe_split"},
		{dir: "onnx_logreg", flavors: []string{"onnx", "python_function"}, backend: "onnx", file: "model.onnx", exKey: "inputs"},
		{dir: "pyfunc_echo", flavors: []string{"python_function"}, backend: "python",
			options: map[string]any{"loader_module": "mlflow.pyfunc.model"}, inCols: []string{"x", "n", "s"}, exKey: "dataframe_split"},
		{dir: "logged_sklearn", flavors: []string{"python_function", "sklearn"}, backend: "python", inCols: irisCols, exKey: "dataframe_split"},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", tc.dir)
			b, err := ReadBundle(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			m := b.MLmodel
			if got := m.Flavors.Names(); !reflect.DeepEqual(got, tc.flavors) {
				t.Errorf("flavors %v, want %v", got, tc.flavors)
			}
			if m.MLflowVersion != "3.6.0" || m.UTCTimeCreated == "" || m.ModelUUID == "" || m.ModelSizeBytes <= 0 {
				t.Errorf("metadata %+v", m)
			}
			if b.Backend != tc.backend {
				t.Errorf("backend %q, want %q", b.Backend, tc.backend)
			}
			wantPath := dir
			if tc.file != "" {
				wantPath = filepath.Join(dir, tc.file)
			}
			if b.Source.Path != wantPath {
				t.Errorf("source path %q, want %q", b.Source.Path, wantPath)
			}
			for k, v := range tc.options {
				if b.Source.Options[k] != v {
					t.Errorf("option %s = %v, want %v", k, b.Source.Options[k], v)
				}
			}
			if tc.inCols != nil {
				if m.Signature == nil || m.Signature.Inputs == nil || m.Signature.Inputs.IsTensor() {
					t.Fatalf("want a column signature, got %+v", m.Signature)
				}
				var names []string
				for _, c := range m.Signature.Inputs.Columns {
					names = append(names, c.Name)
					if !c.Required {
						t.Errorf("column %s not required", c.Name)
					}
				}
				if !reflect.DeepEqual(names, tc.inCols) {
					t.Errorf("columns %v, want %v", names, tc.inCols)
				}
			}
			if tc.inTensor != nil {
				if m.Signature == nil || !m.Signature.Inputs.IsTensor() || !reflect.DeepEqual(m.Signature.Inputs.Tensors[0], *tc.inTensor) {
					t.Errorf("tensor inputs %+v, want %+v", m.Signature, tc.inTensor)
				}
			}
			if m.InputExample == nil || m.InputExample.ArtifactPath != "input_example.json" || m.InputExample.ServingInputPath != "serving_input_example.json" {
				t.Errorf("input example info %+v", m.InputExample)
			}
			var ex map[string]json.RawMessage
			if err := json.Unmarshal(b.InputExample, &ex); err != nil {
				t.Fatalf("input example %q: %v", b.InputExample, err)
			}
			if _, ok := ex[tc.exKey]; !ok || len(ex) != 1 {
				t.Errorf("input example keys %v, want %s", ex, tc.exKey)
			}
		})
	}
}

func TestMLmodelDetails(t *testing.T) {
	m, err := ReadMLmodel(nil, filepath.Join("testdata", "logged_sklearn"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.ModelID, "m-") || len(m.ModelID) != 34 || m.ModelUUID != m.ModelID {
		t.Errorf("model id %q uuid %q", m.ModelID, m.ModelUUID)
	}
	if len(m.RunID) != 32 || !strings.HasSuffix(m.ArtifactPath, "/models/"+m.ModelID+"/artifacts") {
		t.Errorf("run %q artifact path %q", m.RunID, m.ArtifactPath)
	}
	if m.Flavors.Sklearn == nil || m.Flavors.Sklearn.PickledModel != "model.pkl" || m.Flavors.Sklearn.SerializationFormat != "cloudpickle" || m.Flavors.Sklearn.SklearnVersion != "1.7.2" {
		t.Errorf("sklearn flavor %+v", m.Flavors.Sklearn)
	}
	py := m.Flavors.PythonFunction
	if py == nil || py.LoaderModule != "mlflow.sklearn" || py.ModelPath != "model.pkl" || py.PythonVersion == "" ||
		py.Env["virtualenv"] != "python_env.yaml" || py.PredictFn != "predict" {
		t.Errorf("pyfunc flavor %+v", py)
	}
	out := m.Signature.Outputs
	if !out.IsTensor() || out.Tensors[0].DType != tensor.Int64 || !reflect.DeepEqual(out.Tensors[0].Shape, []int64{-1}) {
		t.Errorf("outputs %+v", out)
	}
	if m.Extra["is_signature_from_type_hint"] != false {
		t.Errorf("extra keys %v", m.Extra)
	}

	x, err := ReadMLmodel(nil, filepath.Join("testdata", "xgboost_clf"))
	if err != nil {
		t.Fatal(err)
	}
	if f := x.Flavors.XGBoost; f == nil || f.Data != "model.ubj" || f.ModelFormat != "ubj" || f.XGBVersion != "3.2.0" {
		t.Errorf("xgboost flavor %+v", f)
	}
	l, err := ReadMLmodel(nil, filepath.Join("testdata", "lightgbm_clf"))
	if err != nil {
		t.Fatal(err)
	}
	if f := l.Flavors.LightGBM; f == nil || f.Data != "model.pkl" || f.ModelClass != "lightgbm.sklearn.LGBMClassifier" || f.LGBVersion != "4.7.0" {
		t.Errorf("lightgbm flavor %+v", f)
	}
	o, err := ReadMLmodel(nil, filepath.Join("testdata", "onnx_logreg"))
	if err != nil {
		t.Fatal(err)
	}
	if f := o.Flavors.ONNX; f == nil || f.Data != "model.onnx" || f.ONNXVersion != "1.23.2" || len(f.Providers) != 2 {
		t.Errorf("onnx flavor %+v", f)
	}
	if o.Signature != nil {
		t.Errorf("onnx fixture has no signature, got %+v", o.Signature)
	}
	if _, ok := o.Flavors.Raw["onnx"]["onnx_session_options"]; !ok {
		t.Errorf("raw onnx flavor lost keys: %v", o.Flavors.Raw["onnx"])
	}
}

func TestParseMLmodelHandWritten(t *testing.T) {
	src := `artifact_path: model
flavors:
  python_function: {loader_module: mlflow.pyfunc.model, python_model: python_model.pkl}
  my_flavor: {answer: 42, nested: {a: [1, 2]}}
run_id: abc
metadata: {team: risk}
databricks_runtime: "15.4"
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}, "name": "x"}]'
  outputs: '[{"type": "double", "name": "y", "required": false}]'
  params: '[{"name": "temperature", "type": "double", "default": 0.5, "shape": null}]'
saved_input_example_info: {artifact_path: input_example.json, type: ndarray, format: tf-serving}
`
	m, err := ParseMLmodel("MLmodel", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if m.ArtifactPath != "model" || m.RunID != "abc" || m.Metadata["team"] != "risk" || m.Extra["databricks_runtime"] != "15.4" {
		t.Errorf("got %+v", m)
	}
	if m.Flavors.Raw["my_flavor"]["answer"] != 42 {
		t.Errorf("unknown flavor %v", m.Flavors.Raw["my_flavor"])
	}
	if m.Flavors.PythonFunction.PythonModel != "python_model.pkl" {
		t.Errorf("pyfunc %+v", m.Flavors.PythonFunction)
	}
	in := m.Signature.Inputs.Tensors[0]
	if in.Name != "x" || in.DType != tensor.Float64 || !reflect.DeepEqual(in.Shape, []int64{-1, 3}) {
		t.Errorf("inputs %+v", in)
	}
	if c := m.Signature.Outputs.Columns[0]; c.Name != "y" || c.Required {
		t.Errorf("outputs %+v", c)
	}
	if p := m.Signature.Params; len(p) != 1 || p[0].Name != "temperature" || string(p[0].Default) != "0.5" {
		t.Errorf("params %+v", p)
	}
	if m.InputExample.Format != "tf-serving" || m.InputExample.Type != "ndarray" {
		t.Errorf("example info %+v", m.InputExample)
	}
}

func TestParseMLmodelErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"bad yaml", "flavors: [unclosed", "models/x/MLmodel: invalid MLmodel YAML"},
		{"not a map", "- a\n- b\n", "models/x/MLmodel: invalid MLmodel YAML"},
		{"empty", "", "models/x/MLmodel: empty MLmodel file"},
		{"no flavors", "run_id: x\n", "models/x/MLmodel: MLmodel has no flavors"},
		{"flavor of wrong type", "flavors:\n  onnx: {data: [1, 2]}\n", "models/x/MLmodel: flavor onnx"},
		{"bad signature", "flavors: {python_function: {}}\nsignature: {inputs: '[{\"type\": \"tensor\"}]'}\n", "signature inputs: signature schema entry 0: tensor without tensor-spec"},
		{"bad params", "flavors: {python_function: {}}\nsignature: {params: '{'}\n", "signature params"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMLmodel("models/x/MLmodel", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := ReadMLmodel(nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no MLmodel file") {
		t.Errorf("missing MLmodel: %v", err)
	}
}

func TestInputExampleWithoutServingFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "MLmodel"), []byte("flavors: {python_function: {}}\nsaved_input_example_info: {artifact_path: input_example.json, type: dataframe, pandas_orient: records}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "input_example.json"), []byte(`[{"a": 1}]`), 0o644)
	b, err := ReadBundle(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(b.InputExample) != `{"dataframe_records": [{"a": 1}]}` {
		t.Errorf("example %s", b.InputExample)
	}
	os.WriteFile(filepath.Join(dir, "MLmodel"), []byte("flavors: {python_function: {}}\nsaved_input_example_info: {artifact_path: ../../etc/passwd, type: ndarray}\n"), 0o644)
	if _, err := ReadBundle(dir, ""); err == nil || !strings.Contains(err.Error(), "outside the model directory") {
		t.Errorf("escaping example path: %v", err)
	}
}

func TestSelectBackendForced(t *testing.T) {
	onnxDir := filepath.Join("testdata", "onnx_logreg")
	tests := []struct {
		dir, force, want, wantErr string
	}{
		{onnxDir, "ort", "ort", ""},
		{onnxDir, "python", "python", ""},
		{onnxDir, "xgboost", "", "needs an xgboost flavor"},
		{filepath.Join("testdata", "xgboost_clf"), "python", "python", ""},
		{filepath.Join("testdata", "sklearn_logreg"), "onnx", "", "needs an onnx flavor"},
		{filepath.Join("testdata", "sklearn_logreg"), "custom", "custom", ""},
	}
	for _, tc := range tests {
		b, err := ReadBundle(tc.dir, tc.force)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s forced %s: error %v, want %q", tc.dir, tc.force, err, tc.wantErr)
			}
			continue
		}
		if err != nil || b.Backend != tc.want {
			t.Errorf("%s forced %s: %v %v", tc.dir, tc.force, b, err)
		}
	}
	m, _ := ParseMLmodel("MLmodel", []byte("flavors: {spark: {}}\n"))
	if _, _, err := SelectBackend(m, ".", ""); err == nil || !strings.Contains(err.Error(), "[spark]") {
		t.Errorf("no servable flavor: %v", err)
	}
}

func FuzzParseMLmodel(f *testing.F) {
	for _, d := range []string{"sklearn_logreg", "xgboost_clf", "onnx_logreg", "pyfunc_echo"} {
		b, err := os.ReadFile(filepath.Join("testdata", d, "MLmodel"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("flavors: {onnx: {data: x}}\nsignature: {inputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1]}}]'}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMLmodel("MLmodel", data)
		if err != nil {
			return
		}
		SelectBackend(m, "dir", "")
	})
}

// TestSelectBackendXGBFormat: MLflow's default model_format "xgb" goes to
// the pure-Go runtime when the file is JSON or UBJSON (what XGBoost 2.1+
// writes), to the Python worker when it is the legacy binary format.
func TestSelectBackendXGBFormat(t *testing.T) {
	for _, tc := range []struct {
		content []byte
		want    string
	}{
		{[]byte(`{"learner": {}}`), BackendXGBoost},
		{[]byte{'{', 'L', 0, 0, 0, 7, 'l', 'e', 'a', 'r', 'n', 'e', 'r'}, BackendXGBoost},
		{[]byte{0, 0, 0, 0x3f, 'b', 'i', 'n', 'f'}, BackendPython},
		{nil, BackendPython},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "model.xgb"), tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ParseMLmodel("MLmodel", []byte("flavors:\n  python_function: {loader_module: mlflow.xgboost, data: model.xgb}\n  xgboost: {data: model.xgb, model_format: xgb, xgb_version: 3.2.0, model_class: xgboost.sklearn.XGBClassifier}\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := SelectBackend(m, dir, "")
		if err != nil || got != tc.want {
			t.Errorf("content %q: backend %q (%v), want %q", tc.content, got, err, tc.want)
		}
	}
}
