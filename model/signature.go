package model

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kiln-ml/kiln/tensor"
)

// Signature is an MLflow model signature: a schema of inputs and of
// outputs, each either column-based or tensor-based. Either may be nil when
// the MLmodel file has none.
type Signature struct {
	Inputs  *Schema
	Outputs *Schema
	Params  []ParamSpec
}

// Schema is an MLflow schema: a list of named, typed columns, or a list of
// tensors (optionally named). Exactly one of Columns and Tensors is set.
type Schema struct {
	Columns []ColSpec
	Tensors []TensorSpec
}

// ColSpec is one column of a column-based schema. Type is MLflow's type
// name: "double", "float", "long", "integer", "boolean", "string",
// "binary", "datetime" (or "array"/"object"/"map" for nested types, kept
// as-is in Raw).
type ColSpec struct {
	Name     string
	Type     string
	Required bool
	Raw      json.RawMessage
}

// TensorSpec is one tensor of a tensor-based schema: a numpy dtype name and
// a shape (-1 for variable dimensions).
type TensorSpec struct {
	Name  string
	DType tensor.DType
	Shape []int64
	// NumpyType is the dtype as MLflow wrote it ("float32", "int64", "str", "object"...).
	NumpyType string
}

// ParamSpec is one inference parameter of the signature.
type ParamSpec struct {
	Name    string
	Type    string
	Default json.RawMessage
	Shape   []int64
}

// IsTensor reports whether s is tensor-based.
func (s *Schema) IsTensor() bool { return s != nil && len(s.Tensors) > 0 }

type rawSpec struct {
	Name       *string `json:"name"`
	Type       string  `json:"type"`
	Required   *bool   `json:"required"`
	TensorSpec *struct {
		DType string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	} `json:"tensor-spec"`
}

// ParseSchema parses the JSON string MLflow stores for signature inputs or
// outputs ('[{"type": "double", "name": "x", "required": true}, ...]' or
// '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]').
// An empty string or "null" gives a nil schema.
func ParseSchema(s string) (*Schema, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return nil, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(s), &raws); err != nil {
		return nil, fmt.Errorf("signature schema: %w", err)
	}
	out := &Schema{}
	for i, raw := range raws {
		var r rawSpec
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("signature schema entry %d: %w", i, err)
		}
		name := ""
		if r.Name != nil {
			name = *r.Name
		}
		if r.Type == "tensor" {
			if r.TensorSpec == nil {
				return nil, fmt.Errorf("signature schema entry %d: tensor without tensor-spec", i)
			}
			dt, err := NumpyDType(r.TensorSpec.DType)
			if err != nil {
				return nil, fmt.Errorf("signature schema entry %d: %w", i, err)
			}
			out.Tensors = append(out.Tensors, TensorSpec{Name: name, DType: dt, Shape: r.TensorSpec.Shape, NumpyType: r.TensorSpec.DType})
			continue
		}
		if len(out.Tensors) > 0 {
			return nil, fmt.Errorf("signature schema mixes tensors and columns")
		}
		required := true
		if r.Required != nil {
			required = *r.Required
		}
		out.Columns = append(out.Columns, ColSpec{Name: name, Type: r.Type, Required: required, Raw: raw})
	}
	if len(out.Tensors) > 0 && len(out.Columns) > 0 {
		return nil, fmt.Errorf("signature schema mixes tensors and columns")
	}
	return out, nil
}

// NumpyDType maps a numpy dtype name as MLflow writes it to a tensor type.
func NumpyDType(s string) (tensor.DType, error) {
	switch strings.TrimPrefix(strings.TrimPrefix(s, "<"), "|") {
	case "bool":
		return tensor.Bool, nil
	case "int8":
		return tensor.Int8, nil
	case "int16":
		return tensor.Int16, nil
	case "int32":
		return tensor.Int32, nil
	case "int64":
		return tensor.Int64, nil
	case "uint8":
		return tensor.Uint8, nil
	case "uint16":
		return tensor.Uint16, nil
	case "uint32":
		return tensor.Uint32, nil
	case "uint64":
		return tensor.Uint64, nil
	case "float16":
		return tensor.Float16, nil
	case "float32":
		return tensor.Float32, nil
	case "float64":
		return tensor.Float64, nil
	case "str", "object", "bytes", "U", "S":
		return tensor.String, nil
	}
	return tensor.Invalid, fmt.Errorf("unsupported numpy dtype %q", s)
}

// ColumnDType maps an MLflow column type to the tensor type its values take.
func ColumnDType(t string) (tensor.DType, error) {
	switch t {
	case "double":
		return tensor.Float64, nil
	case "float":
		return tensor.Float32, nil
	case "long":
		return tensor.Int64, nil
	case "integer":
		return tensor.Int32, nil
	case "boolean":
		return tensor.Bool, nil
	case "string", "binary", "datetime":
		return tensor.String, nil
	}
	return tensor.Invalid, fmt.Errorf("unsupported column type %q", t)
}
