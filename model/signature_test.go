package model

import (
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

func TestParseSchema(t *testing.T) {
	cols, err := ParseSchema(`[{"type": "double", "name": "sepal length (cm)", "required": true}, {"type": "string", "name": "city", "required": false}, {"type": "long", "name": "n"}]`)
	if err != nil {
		t.Fatal(err)
	}
	if cols.IsTensor() || len(cols.Columns) != 3 {
		t.Fatalf("got %+v", cols)
	}
	if c := cols.Columns[0]; c.Name != "sepal length (cm)" || c.Type != "double" || !c.Required {
		t.Errorf("col 0 = %+v", c)
	}
	if cols.Columns[1].Required || !cols.Columns[2].Required {
		t.Errorf("required flags: %+v", cols.Columns)
	}
	ten, err := ParseSchema(`[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}, "name": "x"}]`)
	if err != nil {
		t.Fatal(err)
	}
	if !ten.IsTensor() || ten.Tensors[0].DType != tensor.Float32 || ten.Tensors[0].Shape[1] != 4 || ten.Tensors[0].Name != "x" {
		t.Fatalf("tensor schema %+v", ten)
	}
	for _, empty := range []string{"", "null", "  "} {
		if s, err := ParseSchema(empty); s != nil || err != nil {
			t.Errorf("ParseSchema(%q) = %v, %v", empty, s, err)
		}
	}
	for _, bad := range []string{
		`{`, `[1]`, `[{"type": "tensor"}]`,
		`[{"type": "tensor", "tensor-spec": {"dtype": "complex64", "shape": [1]}}]`,
		`[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [1]}}, {"type": "double", "name": "a"}]`,
	} {
		if _, err := ParseSchema(bad); err == nil {
			t.Errorf("ParseSchema(%s) accepted", bad)
		}
	}
}

func TestDTypeMaps(t *testing.T) {
	for in, want := range map[string]tensor.DType{"float64": tensor.Float64, "<f4": tensor.Invalid, "int32": tensor.Int32, "str": tensor.String, "bool": tensor.Bool} {
		got, err := NumpyDType(in)
		if want == tensor.Invalid {
			if err == nil {
				t.Errorf("NumpyDType(%q) accepted", in)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NumpyDType(%q) = %v, %v", in, got, err)
		}
	}
	for in, want := range map[string]tensor.DType{"double": tensor.Float64, "float": tensor.Float32, "long": tensor.Int64, "integer": tensor.Int32, "boolean": tensor.Bool, "string": tensor.String} {
		if got, err := ColumnDType(in); err != nil || got != want {
			t.Errorf("ColumnDType(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ColumnDType("array"); err == nil {
		t.Error("ColumnDType(array) accepted")
	}
}
