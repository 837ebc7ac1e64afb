package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// MLmodelFile is the name of the file that describes an MLflow model.
const MLmodelFile = "MLmodel"

// ErrNoMLmodel reports a directory without an MLmodel file.
var ErrNoMLmodel = errors.New("no MLmodel file")

// MLmodel is the content of an MLmodel file.
type MLmodel struct {
	// ArtifactPath is where the model was logged: a path inside the run's
	// artifacts (MLflow 2) or the logged model's artifact URI (MLflow 3).
	ArtifactPath   string
	Flavors        Flavors
	ModelUUID      string
	ModelID        string // MLflow 3 logged model id (m-...), empty for save_model
	RunID          string
	UTCTimeCreated string // as MLflow writes it: "2026-12-01 18:04:19.637435"
	MLflowVersion  string
	ModelSizeBytes int64
	Signature      *Signature // nil when the model has none
	// InputExample describes the saved input example; nil when none.
	InputExample *InputExampleInfo
	// Metadata is the user metadata dict, as decoded from YAML.
	Metadata map[string]any
	// Extra keeps every other top-level key (databricks_runtime, resources,
	// env_vars, prompts, ...), as decoded from YAML.
	Extra map[string]any
}

// Flavors are the flavors of an MLmodel file. The known ones are decoded;
// every flavor, known or not, is also in Raw.
type Flavors struct {
	PythonFunction *PyFuncFlavor
	ONNX           *ONNXFlavor
	XGBoost        *XGBoostFlavor
	LightGBM       *LightGBMFlavor
	Sklearn        *SklearnFlavor
	// Raw maps each flavor name to its configuration as decoded from YAML.
	Raw map[string]map[string]any
}

// Names lists the flavors present, sorted.
func (f Flavors) Names() []string {
	out := make([]string, 0, len(f.Raw))
	for n := range f.Raw {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// PyFuncFlavor is the python_function flavor.
type PyFuncFlavor struct {
	LoaderModule  string            `yaml:"loader_module"`
	Data          string            `yaml:"data"`
	ModelPath     string            `yaml:"model_path"`
	PythonModel   string            `yaml:"python_model"`
	Code          string            `yaml:"code"`
	Env           map[string]string `yaml:"env"` // e.g. conda: conda.yaml, virtualenv: python_env.yaml
	PythonVersion string            `yaml:"python_version"`
	PredictFn     string            `yaml:"predict_fn"`
}

// ONNXFlavor is the onnx flavor.
type ONNXFlavor struct {
	Data        string   `yaml:"data"`
	ONNXVersion string   `yaml:"onnx_version"`
	Providers   []string `yaml:"providers"`
}

// XGBoostFlavor is the xgboost flavor.
type XGBoostFlavor struct {
	Data        string `yaml:"data"`
	ModelClass  string `yaml:"model_class"`  // e.g. xgboost.sklearn.XGBClassifier, xgboost.core.Booster
	ModelFormat string `yaml:"model_format"` // ubj, json, xgb (absent in old models: xgb)
	XGBVersion  string `yaml:"xgb_version"`
}

// LightGBMFlavor is the lightgbm flavor.
type LightGBMFlavor struct {
	Data       string `yaml:"data"`
	ModelClass string `yaml:"model_class"` // e.g. lightgbm.basic.Booster, lightgbm.sklearn.LGBMClassifier
	LGBVersion string `yaml:"lgb_version"`
}

// SklearnFlavor is the sklearn flavor.
type SklearnFlavor struct {
	PickledModel        string `yaml:"pickled_model"`
	SerializationFormat string `yaml:"serialization_format"` // cloudpickle, pickle
	SklearnVersion      string `yaml:"sklearn_version"`
}

// InputExampleInfo is the saved_input_example_info of an MLmodel file.
type InputExampleInfo struct {
	ArtifactPath     string // input_example.json
	Type             string // dataframe, ndarray, json_object, sparse_matrix_csc, ...
	Format           string // MLflow's "format" key (e.g. tf-serving), if any
	PandasOrient     string // split, records, ...
	ServingInputPath string // serving_input_example.json (MLflow ≥ 2.16)
}

type rawMLmodel struct {
	ArtifactPath   string                    `yaml:"artifact_path"`
	Flavors        map[string]map[string]any `yaml:"flavors"`
	ModelUUID      string                    `yaml:"model_uuid"`
	ModelID        string                    `yaml:"model_id"`
	RunID          string                    `yaml:"run_id"`
	UTCTimeCreated string                    `yaml:"utc_time_created"`
	MLflowVersion  string                    `yaml:"mlflow_version"`
	ModelSizeBytes int64                     `yaml:"model_size_bytes"`
	Signature      *struct {
		Inputs  string `yaml:"inputs"`
		Outputs string `yaml:"outputs"`
		Params  string `yaml:"params"`
	} `yaml:"signature"`
	SavedInputExampleInfo map[string]any `yaml:"saved_input_example_info"`
	Metadata              map[string]any `yaml:"metadata"`
}

var knownKeys = map[string]bool{
	"artifact_path": true, "flavors": true, "model_uuid": true, "model_id": true, "run_id": true,
	"utc_time_created": true, "mlflow_version": true, "model_size_bytes": true, "signature": true,
	"saved_input_example_info": true, "metadata": true,
}

// ParseMLmodel parses the content of an MLmodel file. name is used in
// error messages (usually the file's path).
func ParseMLmodel(name string, data []byte) (*MLmodel, error) {
	var raw rawMLmodel
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: invalid MLmodel YAML: %w", name, err)
	}
	var all map[string]any
	if err := yaml.Unmarshal(data, &all); err != nil {
		return nil, fmt.Errorf("%s: invalid MLmodel YAML: %w", name, err)
	}
	if all == nil {
		return nil, fmt.Errorf("%s: empty MLmodel file", name)
	}
	m := &MLmodel{
		ArtifactPath:   raw.ArtifactPath,
		ModelUUID:      raw.ModelUUID,
		ModelID:        raw.ModelID,
		RunID:          raw.RunID,
		UTCTimeCreated: raw.UTCTimeCreated,
		MLflowVersion:  raw.MLflowVersion,
		ModelSizeBytes: raw.ModelSizeBytes,
		Metadata:       raw.Metadata,
	}
	for k, v := range all {
		if !knownKeys[k] {
			if m.Extra == nil {
				m.Extra = map[string]any{}
			}
			m.Extra[k] = v
		}
	}
	if len(raw.Flavors) == 0 {
		return nil, fmt.Errorf("%s: MLmodel has no flavors", name)
	}
	m.Flavors.Raw = raw.Flavors
	for fl, cfg := range raw.Flavors {
		var err error
		switch fl {
		case "python_function":
			m.Flavors.PythonFunction = &PyFuncFlavor{}
			err = decodeFlavor(cfg, m.Flavors.PythonFunction)
		case "onnx":
			m.Flavors.ONNX = &ONNXFlavor{}
			err = decodeFlavor(cfg, m.Flavors.ONNX)
		case "xgboost":
			m.Flavors.XGBoost = &XGBoostFlavor{}
			err = decodeFlavor(cfg, m.Flavors.XGBoost)
		case "lightgbm":
			m.Flavors.LightGBM = &LightGBMFlavor{}
			err = decodeFlavor(cfg, m.Flavors.LightGBM)
		case "sklearn":
			m.Flavors.Sklearn = &SklearnFlavor{}
			err = decodeFlavor(cfg, m.Flavors.Sklearn)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: flavor %s: %w", name, fl, err)
		}
	}
	if s := raw.Signature; s != nil {
		sig := &Signature{}
		var err error
		if sig.Inputs, err = ParseSchema(s.Inputs); err != nil {
			return nil, fmt.Errorf("%s: signature inputs: %w", name, err)
		}
		if sig.Outputs, err = ParseSchema(s.Outputs); err != nil {
			return nil, fmt.Errorf("%s: signature outputs: %w", name, err)
		}
		if sig.Params, err = ParseParams(s.Params); err != nil {
			return nil, fmt.Errorf("%s: signature params: %w", name, err)
		}
		m.Signature = sig
	}
	if info := raw.SavedInputExampleInfo; info != nil {
		m.InputExample = &InputExampleInfo{
			ArtifactPath:     str(info["artifact_path"]),
			Type:             str(info["type"]),
			Format:           str(info["format"]),
			PandasOrient:     str(info["pandas_orient"]),
			ServingInputPath: str(info["serving_input_path"]),
		}
	}
	return m, nil
}

// decodeFlavor re-decodes a flavor's map into its typed struct. Fields of
// the wrong type are an error; null fields stay empty.
func decodeFlavor(cfg map[string]any, into any) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, into)
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// ParseParams parses the JSON string MLflow stores for signature params
// ('[{"name": "temperature", "type": "double", "default": 0.5, "shape": null}]').
// An empty string or "null" gives no params.
func ParseParams(s string) ([]ParamSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return nil, nil
	}
	var raws []struct {
		Name    string          `json:"name"`
		Type    string          `json:"type"`
		Default json.RawMessage `json:"default"`
		Shape   []int64         `json:"shape"`
	}
	if err := json.Unmarshal([]byte(s), &raws); err != nil {
		return nil, fmt.Errorf("params schema: %w", err)
	}
	out := make([]ParamSpec, len(raws))
	for i, r := range raws {
		if r.Name == "" {
			return nil, fmt.Errorf("params schema entry %d: no name", i)
		}
		out[i] = ParamSpec{Name: r.Name, Type: r.Type, Default: r.Default, Shape: r.Shape}
	}
	return out, nil
}

// ReadMLmodel reads and parses the MLmodel file of the model directory
// dir, in fsys when it is not nil, else on the local file system.
func ReadMLmodel(fsys fs.FS, dir string) (*MLmodel, error) {
	var name string
	var data []byte
	var err error
	if fsys != nil {
		name = path.Join(dir, MLmodelFile)
		data, err = fs.ReadFile(fsys, name)
	} else {
		name = filepath.Join(dir, MLmodelFile)
		data, err = os.ReadFile(name)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoMLmodel, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read MLmodel: %w", err)
	}
	return ParseMLmodel(name, data)
}

// maxExampleSize bounds the input example read into memory.
const maxExampleSize = 16 << 20

// ReadInputExample returns the model's saved input example as a serving
// request body: MLflow's serving_input_example.json when present (a body
// for /invocations such as {"dataframe_split": ...} or {"inputs": ...}),
// else input_example.json wrapped in the key its type calls for
// (dataframe_split/dataframe_records for data frames, inputs otherwise).
// It returns nil, nil when the model has no input example.
func (m *MLmodel) ReadInputExample(fsys fs.FS, dir string) ([]byte, error) {
	info := m.InputExample
	if info == nil {
		return nil, nil
	}
	read := func(name string) ([]byte, error) {
		clean, err := cleanRel(name)
		if err != nil {
			return nil, err
		}
		var f fs.File
		if fsys != nil {
			f, err = fsys.Open(path.Join(dir, clean))
		} else {
			f, err = os.Open(filepath.Join(dir, filepath.FromSlash(clean)))
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Size() > maxExampleSize {
			return nil, fmt.Errorf("input example %s is %d bytes (limit %d)", name, st.Size(), maxExampleSize)
		}
		buf := make([]byte, st.Size())
		_, err = io.ReadFull(f, buf)
		return buf, err
	}
	if info.ServingInputPath != "" {
		b, err := read(info.ServingInputPath)
		if err == nil {
			if !json.Valid(b) {
				return nil, fmt.Errorf("input example %s: invalid JSON", info.ServingInputPath)
			}
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("input example: %w", err)
		}
	}
	if info.ArtifactPath == "" {
		return nil, nil
	}
	b, err := read(info.ArtifactPath)
	if err != nil {
		return nil, fmt.Errorf("input example: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("input example %s: invalid JSON", info.ArtifactPath)
	}
	key := "inputs"
	if info.Type == "dataframe" {
		key = "dataframe_split"
		if info.PandasOrient == "records" {
			key = "dataframe_records"
		}
	}
	out := make([]byte, 0, len(b)+len(key)+6)
	out = append(out, `{"`...)
	out = append(out, key...)
	out = append(out, `": `...)
	out = append(out, b...)
	out = append(out, '}')
	return out, nil
}

// cleanRel validates a relative file name taken from an MLmodel file.
func cleanRel(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "\x00\\") || path.IsAbs(name) {
		return "", fmt.Errorf("invalid file name %q in MLmodel", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("invalid file name %q in MLmodel: outside the model directory", name)
	}
	return c, nil
}
