package score

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// testTable is a 3-row table: a, b floats (b with a null), n int64, s
// strings, ok bools.
func testTable() (table.Schema, *table.Batch) {
	s := table.Schema{Fields: []table.Field{
		{Name: "a", Type: table.Float64},
		{Name: "b", Type: table.Float64, Nullable: true},
		{Name: "n", Type: table.Int64},
		{Name: "s", Type: table.String},
		{Name: "ok", Type: table.Bool},
	}}
	bValid := table.NewBitmap(3)
	bValid.Set(1, false)
	var strs table.Strings
	for _, v := range []string{"x", "yy", "zzz"} {
		strs.AppendString(v)
	}
	b := &table.Batch{Len: 3, Columns: []table.Column{
		{Type: table.Float64, Floats: []float64{1, 2, 3}},
		{Type: table.Float64, Floats: []float64{10, 0, 30}, Valid: bValid},
		{Type: table.Int64, Ints: []int64{7, 8, 9}},
		{Type: table.String, Strs: strs},
		{Type: table.Bool, Bools: []bool{true, false, true}},
	}}
	return s, b
}

func spec(name string, dt tensor.DType, shape ...int64) runtime.TensorSpec {
	return runtime.TensorSpec{Name: name, DType: dt, Shape: shape}
}

func colSig(required bool, names ...string) *model.Signature {
	cols := make([]model.ColSpec, len(names))
	for i, n := range names {
		cols[i] = model.ColSpec{Name: n, Type: "double", Required: required}
	}
	return &model.Signature{Inputs: &model.Schema{Columns: cols}}
}

func TestInputs(t *testing.T) {
	nan := math.NaN()
	schema, batch := testTable()
	tests := []struct {
		name string
		// the table's columns the model sees (a projection of testTable), nil for all
		cols []string
		sig  runtime.Signature
		msig *model.Signature
		want []*tensor.Tensor
		err  string // substring of the error; "" for success
	}{
		{
			name: "packed, no signature, table order, null is NaN",
			cols: []string{"a", "b", "n"},
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Float32, -1, 3)}},
			want: []*tensor.Tensor{{Name: "X", DType: tensor.Float32, Shape: []int64{3, 3},
				Data: []float32{1, 10, 7, 2, float32(nan), 8, 3, 30, 9}}},
		},
		{
			name: "packed in signature order, extra columns ignored",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("input", tensor.Float64, -1, -1)}},
			msig: colSig(true, "n", "a"),
			want: []*tensor.Tensor{{Name: "input", DType: tensor.Float64, Shape: []int64{3, 2},
				Data: []float64{7, 1, 8, 2, 9, 3}}},
		},
		{
			name: "optional signature column missing is NaN",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Float64, -1, 2)}},
			msig: colSig(false, "a", "zz"),
			want: []*tensor.Tensor{{Name: "X", DType: tensor.Float64, Shape: []int64{3, 2},
				Data: []float64{1, nan, 2, nan, 3, nan}}},
		},
		{
			name: "one input per column (ColumnTransformer pipeline)",
			sig: runtime.Signature{Inputs: []runtime.TensorSpec{
				spec("a", tensor.Float32, -1, 1), spec("s", tensor.String, -1, 1), spec("n", tensor.Int64, -1),
			}},
			want: []*tensor.Tensor{
				{Name: "a", DType: tensor.Float32, Shape: []int64{3, 1}, Data: []float32{1, 2, 3}},
				{Name: "s", DType: tensor.String, Shape: []int64{3, 1}, Data: []string{"x", "yy", "zzz"}},
				{Name: "n", DType: tensor.Int64, Shape: []int64{3}, Data: []int64{7, 8, 9}},
			},
		},
		{
			name: "tensor schema: named column",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("n", tensor.Int32, -1, 1)}},
			msig: &model.Signature{Inputs: &model.Schema{Tensors: []model.TensorSpec{{Name: "n", DType: tensor.Int32, Shape: []int64{-1, 1}}}}},
			want: []*tensor.Tensor{{Name: "n", DType: tensor.Int32, Shape: []int64{3, 1}, Data: []int32{7, 8, 9}}},
		},
		{
			name: "tensor schema: unnamed input packs the table",
			cols: []string{"a", "n"},
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("input", tensor.Float64, -1, 2)}},
			msig: &model.Signature{Inputs: &model.Schema{Tensors: []model.TensorSpec{{DType: tensor.Float64, Shape: []int64{-1, 2}}}}},
			want: []*tensor.Tensor{{Name: "input", DType: tensor.Float64, Shape: []int64{3, 2}, Data: []float64{1, 7, 2, 8, 3, 9}}},
		},
		{
			name: "untyped input infers from the columns",
			cols: []string{"n", "ok"},
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{{Name: "X"}}},
			want: []*tensor.Tensor{{Name: "X", DType: tensor.Int64, Shape: []int64{3, 2}, Data: []int64{7, 1, 8, 0, 9, 1}}},
		},
		{
			name: "numbers into a string input are formatted",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("n", tensor.String, -1, 1), spec("ok", tensor.String, -1, 1)}},
			want: []*tensor.Tensor{
				{Name: "n", DType: tensor.String, Shape: []int64{3, 1}, Data: []string{"7", "8", "9"}},
				{Name: "ok", DType: tensor.String, Shape: []int64{3, 1}, Data: []string{"true", "false", "true"}},
			},
		},
		{
			name: "missing required column",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Float32, -1, 2)}},
			msig: colSig(true, "a", "income"),
			err:  `missing column(s) ['income']`,
		},
		{
			name: "missing column for a per-column input",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("a", tensor.Float32, -1, 1), spec("city", tensor.String, -1, 1)}},
			err:  `no column ['city']`,
		},
		{
			name: "text into a float input",
			cols: []string{"a", "s"},
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Float32, -1, 2)}},
			err:  `column "s" is text`,
		},
		{
			name: "null into an integer input",
			cols: []string{"b", "n"},
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Int64, -1, 2)}},
			err:  `column "b" row 1 is null`,
		},
		{
			name: "wrong column count",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Float32, -1, 4)}},
			err:  "takes 4 columns, the table has 5",
		},
		{
			name: "3-D input",
			sig:  runtime.Signature{Inputs: []runtime.TensorSpec{spec("X", tensor.Float32, -1, 2, 2)}},
			err:  "can only fill a 2-dimensional input",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := schema, batch
			if tt.cols != nil {
				s, b = projectTable(schema, batch, tt.cols)
			}
			got, err := Inputs(b, s, tt.sig, tt.msig)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				if !errors.Is(err, ErrInput) || !errors.Is(err, errdefs.ErrInvalidArgument) || !errors.Is(err, runtime.ErrInvalidInput) {
					t.Errorf("err %v does not wrap ErrInput, ErrInvalidArgument and runtime.ErrInvalidInput", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d tensors, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if err := got[i].Validate(); err != nil {
					t.Fatal(err)
				}
				if !tensorEqual(got[i], tt.want[i]) {
					t.Errorf("tensor %d = %+v, want %+v", i, *got[i], *tt.want[i])
				}
			}
			// The inputs must be what the model's signature accepts.
			if _, err := runtime.MatchInputs(tt.sig, got); err != nil && tt.sig.Inputs[0].DType != tensor.Invalid {
				t.Errorf("MatchInputs: %v", err)
			}
		})
	}
}

func projectTable(s table.Schema, b *table.Batch, cols []string) (table.Schema, *table.Batch) {
	var ps table.Schema
	pb := &table.Batch{Len: b.Len}
	for _, c := range cols {
		i := s.Index(c)
		ps.Fields = append(ps.Fields, s.Fields[i])
		pb.Columns = append(pb.Columns, b.Columns[i])
	}
	return ps, pb
}

// tensorEqual compares tensors, NaN equal to NaN.
func tensorEqual(a, b *tensor.Tensor) bool {
	if a.Name != b.Name || a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) {
		return false
	}
	switch x := a.Data.(type) {
	case []float32:
		y := b.Data.([]float32)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] && !(x[i] != x[i] && y[i] != y[i]) {
				return false
			}
		}
		return true
	case []float64:
		y := b.Data.([]float64)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] && !(math.IsNaN(x[i]) && math.IsNaN(y[i])) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Data, b.Data)
}

func TestOutput(t *testing.T) {
	sig := runtime.Signature{Outputs: []runtime.TensorSpec{
		{Name: "label", DType: tensor.String},
		{Name: "prob", DType: tensor.Float32, Shape: []int64{-1, 2}, Labels: []string{"no", "yes"}},
		{Name: "raw", DType: tensor.Float64, Shape: []int64{-1, 2}},
		{Name: "v", DType: tensor.Int32, Shape: []int64{-1, 1}},
	}}
	outs := []*tensor.Tensor{
		{Name: "label", DType: tensor.String, Shape: []int64{2}, Data: []string{"yes", "no"}},
		{Name: "prob", DType: tensor.Float32, Shape: []int64{2, 2}, Data: []float32{0.25, 0.75, 0.5, 0.5}},
		{Name: "raw", DType: tensor.Float64, Shape: []int64{2, 2}, Data: []float64{1, 2, 3, 4}},
		{Name: "v", DType: tensor.Int32, Shape: []int64{2, 1}, Data: []int32{-1, 5}},
	}
	o, err := NewOutput(sig, outs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range o.Fields() {
		names = append(names, f.Name+":"+f.Type.String())
	}
	want := []string{"label:string", "prob_no:float64", "prob_yes:float64", "raw_0:float64", "raw_1:float64", "v:int64"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("fields = %v, want %v", names, want)
	}
	cols, err := o.Columns(nil, outs, 2)
	if err != nil {
		t.Fatal(err)
	}
	b := &table.Batch{Len: 2, Columns: cols}
	if err := b.Check(table.Schema{Fields: o.Fields()}); err != nil {
		t.Fatal(err)
	}
	if cols[0].Str(0) != "yes" || cols[2].Floats[0] != 0.75 || cols[3].Floats[1] != 3 || cols[4].Floats[1] != 4 || cols[5].Ints[0] != -1 {
		t.Errorf("columns = %+v", cols)
	}
	// A batch whose outputs change shape is an error.
	outs[2] = &tensor.Tensor{Name: "raw", DType: tensor.Float64, Shape: []int64{2, 3}, Data: make([]float64, 6)}
	if _, err := o.Columns(nil, outs, 2); err == nil {
		t.Error("Columns accepted an output of another width")
	}
}
