package serving

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/serving/inferencepb"
	"github.com/kiln-ml/kiln/tensor"
)

// fakeFeatures is a FeatureSet over a map: customer id → feature values.
// A failing id makes the store fail.
type fakeFeatures struct {
	names []string
	rows  map[int64][]any
	mu    sync.Mutex
	calls []int // rows of each Fill
}

func (f *fakeFeatures) FeatureSet() FeatureSet { return f }

func (f *fakeFeatures) Plan(context.Context) ([]string, []string, error) {
	return []string{"customer_id"}, f.names, nil
}

func (f *fakeFeatures) Fill(_ context.Context, rows *FeatureRows) error {
	f.mu.Lock()
	f.calls = append(f.calls, rows.N)
	f.mu.Unlock()
	for r := range rows.N {
		id, ok := rows.Keys[0][r].(int64)
		if !ok {
			return errdefs.Invalid("entity key customer_id must be an integer, got %v", rows.Keys[0][r])
		}
		if id == 500 {
			return errors.New("online store unreachable")
		}
		vals, ok := f.rows[id]
		for j := range rows.Names {
			if rows.Values[j][r] != nil {
				continue
			}
			if !ok {
				return errdefs.Invalid("feature %s has no value for customer_id=%d (NOT_FOUND)", rows.Names[j], id)
			}
			rows.Values[j][r] = vals[j]
		}
	}
	return nil
}

// keysRecorder keeps the inputs and keys of each call.
type keysRecorder struct {
	mu    sync.Mutex
	calls []Call
}

func (r *keysRecorder) Observe(_ context.Context, c *Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *c
	cp.Inputs, cp.Keys = nil, nil
	for _, t := range c.Inputs {
		cp.Inputs = append(cp.Inputs, t.Clone())
	}
	for _, t := range c.Keys {
		cp.Keys = append(cp.Keys, t.Clone())
	}
	r.calls = append(r.calls, cp)
}

func (r *keysRecorder) last(t *testing.T) Call {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		t.Fatal("no call observed")
	}
	return r.calls[len(r.calls)-1]
}

func TestFeatureFill(t *testing.T) {
	// stacked: lin's x [N, 3] in the MLflow signature's order c, b, a;
	// y = 0.5c - b + 2a + 0.25. Features a and b; c comes with the request.
	stacked := &fakeFeatures{names: []string{"a", "b"}, rows: map[int64][]any{
		1: {1.0, 2.0}, 2: {0.5, 0.0}, 3: {int64(4), float64(1)},
	}}
	// byName: columnModel's a FP32, b BYTES, c INT64 by name; score = a +
	// len(b) + c. Features a and c; b comes with the request.
	byName := &fakeFeatures{names: []string{"a", "c"}, rows: map[int64][]any{
		7: {1.5, int64(10)}, 8: {0.0, int64(-1)},
	}}
	rec := &keysRecorder{}
	s, _ := testServer(t, Options{Observer: rec},
		&Model{Name: "stacked", Runtime: newLinear(), Features: stacked, Signature: mustSignature(t,
			`[{"type":"float","name":"c","required":true},{"type":"float","name":"b","required":true},{"type":"double","name":"a","required":true}]`)},
		&Model{Name: "byname", Runtime: columnModel{}, Features: byName},
		&Model{Name: "plain", Runtime: newLinear()},
	)
	h := s.Handler()
	tests := []struct {
		name, path, body string
		status           int
		want             string   // a substring of the response body
		keys             []any    // the observed entity keys
		inputs           []string // the observed inputs, JSON
	}{
		{"v2 all present", "/v2/models/stacked/infer",
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[2],"data":[1,2]},{"name":"c","datatype":"FP32","shape":[2,1],"data":[4,0]}]}`,
			200, `"data":[2.25,1.25]`, []any{int64(1), int64(2)}, []string{`[4,2,1,0,0,0.5]`}},
		{"v2 by name", "/v2/models/byname/infer",
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[2],"data":[8,7]},{"name":"b","datatype":"BYTES","shape":[2],"data":["xy","z"]}]}`,
			200, `"data":[1.0,12.5]`, []any{int64(8), int64(7)}, []string{`[0,1.5]`, `["xy","z"]`, `[-1,10]`}},
		{"v2 request wins", "/v2/models/byname/infer",
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[1],"data":[7]},{"name":"b","datatype":"BYTES","shape":[1],"data":["q"]},{"name":"c","datatype":"INT64","shape":[1],"data":[100]}]}`,
			200, `"data":[102.5]`, nil, nil},
		{"v2 missing entity", "/v2/models/byname/infer",
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[2],"data":[7,9]},{"name":"b","datatype":"BYTES","shape":[2],"data":["q","r"]}]}`,
			400, `{"error":"feature a has no value for customer_id=9 (NOT_FOUND)"}`, []any{int64(7), int64(9)}, nil},
		{"v2 no key", "/v2/models/byname/infer",
			`{"inputs":[{"name":"b","datatype":"BYTES","shape":[1],"data":["q"]}]}`,
			400, `missing entity key \"customer_id\"`, nil, nil},
		{"v2 key of the wrong type", "/v2/models/byname/infer",
			`{"inputs":[{"name":"customer_id","datatype":"BYTES","shape":[1],"data":["x"]},{"name":"b","datatype":"BYTES","shape":[1],"data":["q"]}]}`,
			400, `customer_id must be an integer`, nil, nil},
		{"v2 not a column", "/v2/models/byname/infer",
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[1,2],"data":[7,8]}]}`,
			400, `shape [N] or [N, 1]`, nil, nil},
		{"v2 store down", "/v2/models/byname/infer",
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[1],"data":[500]},{"name":"b","datatype":"BYTES","shape":[1],"data":["q"]}]}`,
			503, `looking up its features: online store unreachable`, nil, nil},
		{"split", "/invocations?m=stacked",
			`{"dataframe_split":{"columns":["customer_id","c"],"data":[[1,4],[2,0],[3,2]]}}`,
			200, `{"predictions":[{"y":2.25,"label":1},{"y":1.25,"label":1},{"y":8.25,"label":1}]}`, []any{int64(1), int64(2), int64(3)}, nil},
		{"records, null cell filled", "/invocations?m=stacked",
			`{"dataframe_records":[{"customer_id":1,"c":4,"a":null},{"customer_id":2,"c":0,"a":3}]}`,
			200, `{"predictions":[{"y":2.25,"label":1},{"y":6.25,"label":1}]}`, nil, nil},
		{"inputs as columns", "/invocations?m=byname",
			`{"inputs":{"customer_id":[7],"b":["abc"]}}`,
			200, `{"predictions":[14.5]}`, nil, nil},
		{"invocations missing entity", "/invocations?m=stacked",
			`{"dataframe_split":{"columns":["customer_id","c"],"data":[[1,4],[42,0]]}}`,
			400, `{"error_code":"INVALID_PARAMETER_VALUE","message":"feature a has no value for customer_id=42 (NOT_FOUND)"}`, nil, nil},
		{"invocations null key", "/invocations?m=stacked",
			`{"dataframe_records":[{"customer_id":1,"c":4},{"c":0}]}`,
			400, `row 1: entity key \"customer_id\" is null`, nil, nil},
		{"invocations unnamed tensor", "/invocations?m=stacked",
			`{"inputs":[[1,2,3]]}`,
			400, `not an unnamed tensor`, nil, nil},
		{"plain model unchanged", "/invocations?m=plain",
			`{"dataframe_split":{"columns":["a","b","c"],"data":[[1,2,3]]}}`,
			200, `{"predictions":[{"y":4.75,"label":1}]}`, nil, nil},
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", h)
	mux.Handle("POST /invocations", s.InvocationsHandlerFunc(func(r *http.Request) string { return r.URL.Query().Get("m") }))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, mux, "POST", tc.path, "application/json", []byte(tc.body))
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("got %s, want %d with %s", r, tc.status, tc.want)
			}
			c := rec.last(t)
			if tc.keys != nil {
				if len(c.Keys) != 1 || c.Keys[0].Name != "customer_id" {
					t.Fatalf("observed keys %v, want customer_id", c.Keys)
				}
				var got []any
				for _, v := range c.Keys[0].Data.([]int64) {
					got = append(got, v)
				}
				if !reflect.DeepEqual(got, tc.keys) {
					t.Errorf("observed keys %v, want %v", got, tc.keys)
				}
			}
			if tc.inputs != nil {
				var got []string
				for _, in := range c.Inputs {
					b, _ := json.Marshal(in.Data)
					got = append(got, string(b))
				}
				if !reflect.DeepEqual(got, tc.inputs) {
					t.Errorf("observed inputs %v, want %v", got, tc.inputs)
				}
			}
		})
	}
	// One lookup per request, for every row.
	stacked.mu.Lock()
	defer stacked.mu.Unlock()
	if stacked.calls[0] != 2 {
		t.Errorf("the first lookup had %d rows, want 2", stacked.calls[0])
	}
}

// TestFeatureFillModelTakesKey: a key the model's signature names reaches
// the model, and is not repeated in Call.Keys.
func TestFeatureFillModelTakesKey(t *testing.T) {
	fs := &fakeFeatures{names: []string{"a", "b"}, rows: map[int64][]any{3: {1.0, 2.0}}}
	rec := &keysRecorder{}
	s, _ := testServer(t, Options{Observer: rec},
		&Model{Name: "m", Runtime: newLinear(), Features: fs, Signature: mustSignature(t,
			`[{"type":"long","name":"customer_id"},{"type":"double","name":"a"},{"type":"double","name":"b"}]`)})
	r := do(t, s.Handler(), "POST", "/invocations", "application/json", []byte(`{"dataframe_split":{"columns":["customer_id"],"data":[[3]]}}`))
	// x = [3, 1, 2]: y = 1.5 - 1 + 4 + 0.25
	if r.status != 200 || string(r.body) != `{"predictions":[{"y":4.75,"label":1}]}` {
		t.Fatalf("got %s", r)
	}
	c := rec.last(t)
	if c.Keys != nil {
		t.Errorf("observed keys %v, want none (the model takes customer_id)", c.Keys)
	}
	if got := c.Inputs[0].Data.([]float32); !reflect.DeepEqual(got, []float32{3, 1, 2}) {
		t.Errorf("model input %v", got)
	}
}

// TestTensorsToFrame: V2 inputs of every kind become columns.
func TestTensorsToFrame(t *testing.T) {
	f, err := tensorsToFrame("m", []*tensor.Tensor{
		{Name: "k", DType: tensor.String, Shape: []int64{2}, Data: []string{"x", "y"}},
		{Name: "v", DType: tensor.Float16, Shape: []int64{2, 1}, Data: []uint16{tensor.Float32ToHalf(1.5), tensor.Float32ToHalf(-2)}},
		{Name: "u", DType: tensor.Uint8, Shape: []int64{2}, Data: []uint8{3, 4}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []cell{{kind: cellString, s: "x"}, {kind: cellFloat, f: 1.5}, {kind: cellInt, i: 3},
		{kind: cellString, s: "y"}, {kind: cellFloat, f: -2}, {kind: cellInt, i: 4}}
	if f.rows != 2 || !reflect.DeepEqual(f.cells, want) {
		t.Errorf("frame %+v", f)
	}
	if _, err := tensorsToFrame("m", []*tensor.Tensor{
		{Name: "k", DType: tensor.Int64, Shape: []int64{2}, Data: []int64{1, 2}},
		{Name: "v", DType: tensor.Int64, Shape: []int64{3}, Data: []int64{1, 2, 3}},
	}); err == nil || !strings.Contains(err.Error(), "3 rows") {
		t.Errorf("rows of different lengths: %v", err)
	}
}

// TestFeatureFillGRPC: gRPC requests are completed as REST ones.
func TestFeatureFillGRPC(t *testing.T) {
	fs := &fakeFeatures{names: []string{"a", "c"}, rows: map[int64][]any{7: {1.5, int64(10)}}}
	s, _ := testServer(t, Options{}, &Model{Name: "byname", Runtime: columnModel{}, Features: fs})
	c := grpcClient(t, s)
	req := func(id int64) *inferencepb.ModelInferRequest {
		return &inferencepb.ModelInferRequest{ModelName: "byname", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{
			{Name: "customer_id", Datatype: "INT64", Shape: []int64{1}, Contents: &inferencepb.InferTensorContents{Int64Contents: []int64{id}}},
			{Name: "b", Datatype: "BYTES", Shape: []int64{1, 1}, Contents: &inferencepb.InferTensorContents{BytesContents: [][]byte{[]byte("xyz")}}},
		}}
	}
	resp, err := c.ModelInfer(context.Background(), req(7))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Outputs[0].Contents.Fp64Contents; len(got) != 1 || got[0] != 14.5 {
		t.Errorf("score %v, want 14.5", got)
	}
	_, err = c.ModelInfer(context.Background(), req(9))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "customer_id=9") {
		t.Errorf("a missing entity: %v", err)
	}
}

// BenchmarkFeatureFill is the serving side of feature fill-in: one V2
// row (the key and one column) completed with two features by a store
// answering from memory, against the same row sent whole.
func BenchmarkFeatureFill(b *testing.B) {
	fs := &fakeFeatures{names: []string{"a", "c"}, rows: map[int64][]any{7: {1.5, int64(10)}}}
	s, _ := testServer(b, Options{},
		&Model{Name: "filled", Runtime: columnModel{}, Features: fs},
		&Model{Name: "whole", Runtime: columnModel{}})
	b.Run("filled", func(b *testing.B) {
		benchHandler(b, s.Handler(), "/v2/models/filled/infer", "application/json", []byte(
			`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[1],"data":[7]},{"name":"b","datatype":"BYTES","shape":[1,1],"data":["xy"]}]}`))
	})
	b.Run("whole", func(b *testing.B) {
		benchHandler(b, s.Handler(), "/v2/models/whole/infer", "application/json", []byte(
			`{"inputs":[{"name":"a","datatype":"FP32","shape":[1,1],"data":[1.5]},{"name":"b","datatype":"BYTES","shape":[1,1],"data":["xy"]},{"name":"c","datatype":"INT64","shape":[1,1],"data":[10]}]}`))
	})
}
