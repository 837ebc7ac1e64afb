package serving

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// decodeTestModel is a model with a fixed signature that never predicts.
type decodeTestModel struct{ sig runtime.Signature }

func (m decodeTestModel) Signature() runtime.Signature { return m.sig }
func (m decodeTestModel) Predict(context.Context, []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, errors.New("not for prediction")
}
func (m decodeTestModel) Close() error { return nil }

func decodeModel(withColumns bool) *Model {
	m := &Model{Name: "m", Runtime: decodeTestModel{runtime.Signature{
		Inputs:  []runtime.TensorSpec{{Name: "input", DType: tensor.Float32, Shape: []int64{-1, 3}}},
		Outputs: []runtime.TensorSpec{{Name: "predictions", DType: tensor.Float32, Shape: []int64{-1}}},
	}}}
	if withColumns {
		m.Signature = &model.Signature{Inputs: &model.Schema{Columns: []model.ColSpec{
			{Name: "c", Type: "double", Required: true}, {Name: "a", Type: "double", Required: true}, {Name: "b", Type: "double", Required: true},
		}}}
	}
	return m
}

func TestDecodeInvocation(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		columns        bool
		want           []float32
		wantCols       []string
		err            error
	}{
		{name: "split", ct: "application/json", body: `{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3], [4, 5, 6]]}}`,
			want: []float32{1, 2, 3, 4, 5, 6}, wantCols: []string{"a", "b", "c"}},
		{name: "records in signature order", ct: "application/json", columns: true, body: `{"dataframe_records": [{"a": 1, "b": 2, "c": 3}]}`,
			want: []float32{3, 1, 2}, wantCols: []string{"c", "a", "b"}},
		{name: "instances", ct: "application/json", body: `{"instances": [[1, 2, 3]]}`, want: []float32{1, 2, 3}},
		{name: "inputs by name", ct: "application/json", body: `{"inputs": {"input": [[1, 2, 3]]}}`, want: []float32{1, 2, 3}},
		{name: "csv", ct: "text/csv; charset=utf-8", body: "x,y,z\n1,2,3\n,5,6\n", want: []float32{1, 2, 3, float32nan(), 5, 6}, wantCols: []string{"x", "y", "z"}},
		{name: "no content type is JSON", ct: "", body: `{"instances": [[1, 2, 3]]}`, want: []float32{1, 2, 3}},
		{name: "bad json", ct: "application/json", body: `{"instances": [[1, 2`, err: ErrInvalidRequest},
		{name: "two formats", ct: "application/json", body: `{"instances": [[1,2,3]], "inputs": [[1,2,3]]}`, err: ErrInvalidRequest},
		{name: "wrong width", ct: "application/json", body: `{"instances": [[1, 2]]}`, err: ErrInvalidRequest},
		{name: "missing column", ct: "application/json", columns: true, body: `{"dataframe_records": [{"a": 1, "b": 2}]}`, err: ErrInvalidRequest},
		{name: "xml", ct: "application/xml", body: `<x/>`, err: ErrUnsupportedMediaType},
		{name: "latin1", ct: "text/csv; charset=latin1", body: "a\n1\n", err: ErrUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := DecodeInvocation([]byte(tc.body), tc.ct, decodeModel(tc.columns))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				if err.Error() == "" {
					t.Error("empty error message")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := inv.Inputs[0].Data.([]float32)
			if len(got) != len(tc.want) {
				t.Fatalf("inputs %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] && !(got[i] != got[i] && tc.want[i] != tc.want[i]) {
					t.Fatalf("inputs %v, want %v", got, tc.want)
				}
			}
			if !slices.Equal(inv.Columns, tc.wantCols) {
				t.Errorf("columns %q, want %q", inv.Columns, tc.wantCols)
			}
		})
	}
}

func float32nan() float32 {
	z := float32(0)
	return z / z
}

func TestInvocationErrorCode(t *testing.T) {
	_, err := DecodeInvocation([]byte(`{"dataframe_records": [{"a": 1, "b": 2}]}`), "application/json", decodeModel(true))
	if c := InvocationErrorCode(err); c != "INVALID_PARAMETER_VALUE" {
		t.Errorf("code %q for a missing column, want INVALID_PARAMETER_VALUE", c)
	}
	_, err = DecodeInvocation([]byte(`[]`), "application/json", decodeModel(false))
	if c := InvocationErrorCode(err); c != "BAD_REQUEST" {
		t.Errorf("code %q for a list body, want BAD_REQUEST", c)
	}
}

func FuzzDecodeInvocationInputs(f *testing.F) {
	f.Add([]byte(`{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}`), false)
	f.Add([]byte(`{"inputs": {"input": [[1, 2, 3]]}}`), false)
	f.Add([]byte("a,b,c\n1,2,3\n"), true)
	m := decodeModel(true)
	f.Fuzz(func(t *testing.T, body []byte, csv bool) {
		ct := "application/json"
		if csv {
			ct = "text/csv"
		}
		inv, err := DecodeInvocation(body, ct, m)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error not wrapping ErrInvalidRequest: %v", err)
			}
			return
		}
		if err := inv.Inputs[0].Validate(); err != nil {
			t.Fatalf("decoded an invalid tensor: %v", err)
		}
	})
}
