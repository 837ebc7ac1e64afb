package onnx

import (
	"math"
	"slices"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

func TestMLLabelEncoder(t *testing.T) {
	for _, c := range []struct {
		name  string
		opset int64
		attrs map[string]any
		in    *tensor.Tensor
		want  any
	}{
		{"v1 strings", 1, map[string]any{"classes_strings": []string{"a", "b"}, "default_int64": 9},
			mlT([]string{"b", "x", "a"}), []int64{1, 9, 0}},
		{"v1 ints", 1, map[string]any{"classes_strings": []string{"a", "b"}},
			mlT([]int64{1, 2, 0}), []string{"b", "_Unused", "a"}},
		{"v2 string to int", 2, map[string]any{"keys_strings": []string{"a", "b", "a"}, "values_int64s": []int{1, 2, 3}},
			mlT([]string{"a", "b", "c"}), []int64{1, 2, -1}},
		{"v2 int to string", 2, map[string]any{"keys_int64s": []int{5, 6}, "values_strings": []string{"x", "y"}, "default_string": "?"},
			mlT([]int64{6, 7}), []string{"y", "?"}},
		{"v2 float default", 2, map[string]any{"keys_floats": []float64{0.5}, "values_floats": []float64{2}},
			mlT([]float32{0.5, 1}), []float32{2, float32(math.Copysign(0, -1))}},
		{"v4 nan key", 4, map[string]any{"keys_tensor": mlT([]float64{math.NaN(), 1}), "values_int64s": []int{7, 8}},
			mlT([]float64{math.NaN(), 1, 2}), []int64{7, 8, -1}},
		{"v4 tensors", 4, map[string]any{"keys_strings": []string{"a"}, "values_tensor": mlT([]int16{4}),
			"default_tensor": mlT([]int16{-5})}, mlT([]string{"a", "b"}, 1, 2), []int16{4, -5}},
	} {
		k, err := mlCompileNode(t, "LabelEncoder", c.opset, c.attrs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out := mlRun(t, k, c.in)[0].(*tensor.Tensor)
		if !mlEqualShape(out.Shape, c.in.Shape) {
			t.Errorf("%s: shape %v, want %v", c.name, out.Shape, c.in.Shape)
		}
		switch w := c.want.(type) {
		case []int64:
			if !slices.Equal(out.Data.([]int64), w) {
				t.Errorf("%s: %v, want %v", c.name, out.Data, w)
			}
		case []string:
			if !slices.Equal(out.Data.([]string), w) {
				t.Errorf("%s: %v, want %v", c.name, out.Data, w)
			}
		case []int16:
			if !slices.Equal(out.Data.([]int16), w) {
				t.Errorf("%s: %v, want %v", c.name, out.Data, w)
			}
		case []float32:
			g := out.Data.([]float32)
			if len(g) != len(w) || g[0] != w[0] || math.Float32bits(g[1]) != math.Float32bits(w[1]) {
				t.Errorf("%s: %v, want %v", c.name, g, w)
			}
		}
	}
	_, err := mlCompileNode(t, "LabelEncoder", 2, map[string]any{"keys_strings": []string{"a"}, "values_int64s": []int{1, 2}})
	mlWantErr(t, err, "1 keys and 2 values")
	_, err = mlCompileNode(t, "LabelEncoder", 2, map[string]any{"keys_strings": []string{"a"}, "keys_int64s": []int{1}, "values_int64s": []int{1}})
	mlWantErr(t, err, "exactly one is allowed")
	k, _ := mlCompileNode(t, "LabelEncoder", 2, map[string]any{"keys_strings": []string{"a"}, "values_int64s": []int{1}})
	_, err = k.Run(nil, []Value{mlT([]int64{1})})
	mlWantErr(t, err, "the keys are strings")
}

func TestMLCategoryMapperZipMap(t *testing.T) {
	k := mlMustKernel(t, "CategoryMapper", map[string]any{"cats_int64s": []int{1, 2}, "cats_strings": []string{"one", "two"}})
	out := mlRun(t, k, mlT([]string{"two", "six"}))
	if got := out[0].(*tensor.Tensor).Data.([]int64); !slices.Equal(got, []int64{2, -1}) {
		t.Errorf("strings to ints %v", got)
	}
	out = mlRun(t, k, mlT([]int64{1, 3}))
	if got := out[0].(*tensor.Tensor).Data.([]string); !slices.Equal(got, []string{"one", "_Unused"}) {
		t.Errorf("ints to strings %v", got)
	}

	z := mlMustKernel(t, "ZipMap", map[string]any{"classlabels_strings": []string{"a", "b"}})
	out = mlRun(t, z, mlT([]float32{0.25, 0.75, 1, 0}, 2, 2))
	seq, ok := out[0].(Sequence)
	if !ok || len(seq) != 2 {
		t.Fatalf("zipmap output %T %v", out[0], out[0])
	}
	m := seq[1].(*Map)
	if !slices.Equal(m.StringKeys, []string{"a", "b"}) || !slices.Equal(m.Values.Data.([]float32), []float32{1, 0}) {
		t.Errorf("row 1: %v %v", m.StringKeys, m.Values.Data)
	}
	_, err := z.Run(nil, []Value{mlT([]float32{1, 2, 3}, 1, 3)})
	mlWantErr(t, err, "3 columns for 2 class labels")
}

func TestMLDictVectorizerCastMap(t *testing.T) {
	m := &Map{StringKeys: []string{"b", "a"}, Values: mlT([]float64{2, 1})}
	k := mlMustKernel(t, "DictVectorizer", map[string]any{"string_vocabulary": []string{"a", "c", "b"}})
	out := mlRun(t, k, m)
	mlWantFloats(t, "dict", out[0], []float64{1, 0, 2}, 1, 3)
	_, err := k.Run(nil, []Value{&Map{Int64Keys: []int64{1}, Values: mlT([]float32{1})}})
	mlWantErr(t, err, "does not match the vocabulary")

	im := &Map{Int64Keys: []int64{3, 0}, Values: mlT([]float32{1.5, 2.25})}
	out = mlRun(t, mlMustKernel(t, "CastMap", map[string]any{"cast_to": "TO_FLOAT"}), im)
	mlWantFloats(t, "dense", out[0], []float64{2.25, 1.5}, 1, 2)
	out = mlRun(t, mlMustKernel(t, "CastMap", map[string]any{"map_form": "SPARSE", "max_map": 5, "cast_to": "TO_INT64"}), im)
	mlWantFloats(t, "sparse", out[0], []float64{2, 0, 0, 1, 0}, 1, 5)
	out = mlRun(t, mlMustKernel(t, "CastMap", map[string]any{"cast_to": "TO_STRING"}), im)
	if got := out[0].(*tensor.Tensor).Data.([]string); !slices.Equal(got, []string{"2.250000", "1.500000"}) {
		t.Errorf("to string %v", got)
	}
	_, err = mlCompileNode(t, "CastMap", 1, map[string]any{"cast_to": "TO_BOOL"})
	mlWantErr(t, err, `unknown value "TO_BOOL"`)
}

func TestMLDictVectorizerBadMap(t *testing.T) {
	k := mlMustKernel(t, "DictVectorizer", map[string]any{"string_vocabulary": []string{"a"}})
	_, err := k.Run(nil, []Value{&Map{StringKeys: []string{"a", "b"}, Values: mlT([]float32{1})}})
	mlWantErr(t, err, "2 keys and 1 values")
	_, err = k.Run(nil, []Value{mlT([]float32{1})})
	mlWantErr(t, err, "not a map")
}
