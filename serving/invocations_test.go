package serving

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/tensor"
)

func mustSignature(t testing.TB, inputs string) *model.Signature {
	t.Helper()
	in, err := model.ParseSchema(inputs)
	if err != nil {
		t.Fatal(err)
	}
	return &model.Signature{Inputs: in}
}

func invocationsServer(t testing.TB, opts Options) *Server {
	s, _ := testServer(t, opts,
		&Model{Name: "lin", Runtime: newLinear()},
		&Model{Name: "lin-sig", Runtime: newLinear(), Signature: mustSignature(t,
			`[{"type":"float","name":"c","required":true},{"type":"float","name":"b","required":true},{"type":"double","name":"a","required":true}]`)},
		&Model{Name: "cols", Runtime: columnModel{}},
		&Model{Name: "cols-sig", Runtime: columnModel{}, Signature: mustSignature(t,
			`[{"type":"double","name":"a"},{"type":"string","name":"b"},{"type":"long","name":"c"}]`)},
		&Model{Name: "clf", Runtime: classifierModel{}},
		&Model{Name: "clf-sig", Runtime: classifierModel{}, Signature: &model.Signature{
			Inputs:  mustSignature(t, `[{"type":"double","name":"p"},{"type":"double","name":"q"}]`).Inputs,
			Outputs: mustSignature(t, `[{"type":"tensor","tensor-spec":{"dtype":"object","shape":[-1]}}]`).Inputs,
		}},
		&Model{Name: "lin-out", Runtime: newLinear(), Signature: &model.Signature{
			Outputs: mustSignature(t, `[{"type":"long"}]`).Inputs,
		}},
		&Model{Name: "echo", Runtime: echoModel{dt: tensor.Float32}},
		&Model{Name: "bin", Runtime: textModel{}, Signature: mustSignature(t, `[{"type":"binary","name":"text"}]`)},
	)
	return s
}

func TestInvocations(t *testing.T) {
	s := invocationsServer(t, Options{MaxBodySize: 2048})
	tests := []struct {
		name, model, ctype, body string
		status                   int
		want                     string // the JSON body
	}{
		// Stacked columns into x [N, 3] (request order), two outputs.
		{"split", "lin", "application/json",
			`{"dataframe_split":{"columns":["a","b","c"],"data":[[1,2,3],[0,0,0]]}}`, 200,
			`{"predictions":[{"y":4.75,"label":1},{"y":0.25,"label":1}]}`},
		{"split with index and params", "lin", "application/json; charset=utf-8",
			`{"params":{"k":1},"dataframe_split":{"index":[5,6],"data":[[1,2,3],[0,0,0]],"columns":["a","b","c"]}}`, 200,
			`{"predictions":[{"y":4.75,"label":1},{"y":0.25,"label":1}]}`},
		{"split without columns", "lin", "application/json",
			`{"dataframe_split":{"data":[[1,2,3]]}}`, 200,
			`{"predictions":[{"y":4.75,"label":1}]}`},
		{"records", "lin", "application/json",
			`{"dataframe_records":[{"a":1,"b":2,"c":3},{"a":0,"b":0,"c":0}]}`, 200,
			`{"predictions":[{"y":4.75,"label":1},{"y":0.25,"label":1}]}`},
		{"instances as records", "lin", "application/json",
			`{"instances":[{"a":1,"b":2,"c":3}]}`, 200,
			`{"predictions":[{"y":4.75,"label":1}]}`},
		{"instances as a tensor", "lin", "application/json",
			`{"instances":[[1,2,3],[0,0,0]]}`, 200,
			`{"predictions":{"y":[[4.75],[0.25]],"label":[1,1]}}`},
		{"inputs as a tensor", "lin", "application/json",
			`{"inputs":[[1,2,3]]}`, 200,
			`{"predictions":{"y":[[4.75]],"label":[1]}}`},
		{"inputs by input name", "lin", "application/json",
			`{"inputs":{"x":[[1,2,3]]}}`, 200,
			`{"predictions":{"y":[[4.75]],"label":[1]}}`},
		{"inputs as columns", "lin", "application/json",
			`{"inputs":{"a":[1,0],"b":[2,0],"c":[3,0]}}`, 200,
			`{"predictions":[{"y":4.75,"label":1},{"y":0.25,"label":1}]}`},
		{"csv", "lin", "text/csv",
			"a,b,c\n1,2,3\n0,0.0,0\n", 200,
			`{"predictions":[{"y":4.75,"label":1},{"y":0.25,"label":1}]}`},

		// With an MLflow signature, columns go in its order (c, b, a).
		{"signature order", "lin-sig", "application/json",
			`{"dataframe_split":{"columns":["a","b","c"],"data":[[1,2,3]]}}`, 200,
			`{"predictions":[{"y":1.75,"label":1}]}`},
		{"signature order, extra column ignored", "lin-sig", "application/json",
			`{"dataframe_records":[{"z":"x","c":3,"a":1,"b":2}]}`, 200,
			`{"predictions":[{"y":1.75,"label":1}]}`},
		{"signature: missing column", "lin-sig", "application/json",
			`{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]}}`, 400,
			`{"error_code":"INVALID_PARAMETER_VALUE","message":"Model is missing inputs ['c']."}`},
		{"signature: uncastable", "lin-sig", "application/json",
			`{"dataframe_split":{"columns":["a","b","c"],"data":[[1,"two",3]]}}`, 400,
			`{"error_code":"INVALID_PARAMETER_VALUE","message":"Incompatible input types for column b: \"two\" is not a valid float."}`},

		// One input per column (a ColumnTransformer pipeline), one output.
		{"per-column inputs", "cols", "application/json",
			`{"dataframe_split":{"columns":["c","b","a"],"data":[[2,"xy",1.5],[0,"",0]]}}`, 200,
			`{"predictions":[5.5,0.0]}`},
		{"per-column inputs from csv", "cols", "text/csv",
			"a,b,c\n1.5,xy,2\n", 200,
			`{"predictions":[5.5]}`},
		{"per-column: bad cell", "cols", "application/json",
			`{"dataframe_split":{"columns":["a","b","c"],"data":[[1.5,"xy",2.5]]}}`, 400,
			`{"error_code":"BAD_REQUEST","message":"column \"c\": cannot convert 2.5 to INT64"}`},
		{"per-column: missing string", "cols", "application/json",
			`{"dataframe_records":[{"a":1,"c":2}]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"model \"cols\" takes 3 inputs ['a', 'b', 'c']: send a column for each (request columns: ['a', 'c'])"}`},
		{"signature long column", "cols-sig", "application/json",
			`{"dataframe_split":{"columns":["a","b","c"],"data":[[1.5,"xy",2.5]]}}`, 400,
			`{"error_code":"INVALID_PARAMETER_VALUE","message":"Incompatible input types for column c: 2.5 is not a valid long."}`},
		{"binary column is base64", "bin", "application/json",
			`{"dataframe_split":{"columns":["text"],"data":[["aGk="]]}}`, 200,
			`{"predictions":[{"length":2,"upper":"HI"}]}`},

		// Classifier outputs: records with label maps; tensors as columns.
		{"classifier records", "clf", "application/json",
			`{"dataframe_split":{"columns":["p","q"],"data":[[2,1],[0,1]]}}`, 200,
			`{"predictions":[{"label":"yes","probabilities":{"no":0.25,"yes":0.75}},{"label":"no","probabilities":{"no":0.75,"yes":0.25}}]}`},
		{"classifier tensors", "clf", "application/json",
			`{"inputs":[[2,1]]}`, 200,
			`{"predictions":{"label":["yes"],"probabilities":[{"no":0.25,"yes":0.75}]}}`},

		// An MLflow output signature with fewer outputs picks them.
		{"output signature picks the label", "clf-sig", "application/json",
			`{"dataframe_split":{"columns":["p","q"],"data":[[2,1],[0,1]]}}`, 200,
			`{"predictions":["yes","no"]}`},
		{"output signature by kind", "lin-out", "application/json",
			`{"instances":[[1,2,3],[0,0,-1]]}`, 200,
			`{"predictions":[1,0]}`},

		// A single [N, K] output is a list of rows.
		{"echo", "echo", "application/json",
			`{"instances":[[1,2],[3,4.5]]}`, 200,
			`{"predictions":[[1.0,2.0],[3.0,4.5]]}`},
		{"float32 printed as Python prints it", "echo", "application/json",
			`{"inputs":[[0.1,3.4028235e38,1e-5,-0.0]]}`, 200,
			`{"predictions":[[0.10000000149011612,3.4028234663852886e+38,9.999999747378752e-06,-0.0]]}`},
		{"echo, null is NaN", "echo", "application/json",
			`{"inputs":[[null,1]]}`, 200,
			`{"predictions":[[NaN,1.0]]}`},

		// Errors, in MLflow's format.
		{"no format key", "lin", "application/json", `{"data":[[1,2,3]]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"The input must be a JSON dictionary with exactly one of the input fields {'dataframe_split', 'dataframe_records', 'instances', 'inputs'}. Received dictionary with input fields: ['data']."}`},
		{"two format keys", "lin", "application/json", `{"inputs":[[1,2,3]],"instances":[[1,2,3]]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"The input must be a JSON dictionary with exactly one of the input fields {'dataframe_split', 'dataframe_records', 'instances', 'inputs'}. Received dictionary with input fields: ['inputs', 'instances']."}`},
		{"a list", "lin", "application/json", `[[1,2,3]]`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. The input must be a JSON dictionary with exactly one of the input fields {'dataframe_split', 'dataframe_records', 'instances', 'inputs'}. Received a list."}`},
		{"malformed", "lin", "application/json", `{"inputs": [[1,2,3]}`, 400, ""},
		{"split not a dict", "lin", "application/json", `{"dataframe_split":[[1,2,3]]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. Dataframe split format must be a dictionary. Got list."}`},
		{"split extra key", "lin", "application/json", `{"dataframe_split":{"data":[[1,2,3]],"dtype":"x"}}`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. Got {'data', 'dtype'}."}`},
		{"split column count", "lin", "application/json", `{"dataframe_split":{"columns":["a","b"],"data":[[1,2,3]]}}`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. Provided dataframe_split field is not a valid dataframe representation in 'split' format. Error: '2 columns passed, passed data had 3 columns'"}`},
		{"records not a list", "lin", "application/json", `{"dataframe_records":{"a":1}}`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. Dataframe records format must be a list of records. Got dictionary."}`},
		{"ragged", "lin", "application/json", `{"instances":[[1,2,3],[1,2]]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. the nested lists are ragged (not all rows have the same length)"}`},
		{"columns of unequal length", "lin", "application/json", `{"inputs":{"a":[1,2],"b":[1],"c":[1]}}`, 400,
			`{"error_code":"BAD_REQUEST","message":"Invalid input. The length of values for each input/column name are not the same"}`},
		{"wrong column count", "lin", "application/json", `{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]}}`, 400,
			`{"error_code":"BAD_REQUEST","message":"model input \"x\" takes 3 columns, the request has 2 (['a', 'b'])"}`},
		{"wrong tensor shape", "lin", "application/json", `{"inputs":[[1,2]]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"input \"x\" has shape [1 2], model \"lin\" expects [-1 3]"}`},
		{"string for a float", "lin", "application/json", `{"inputs":[[1,"a",3]]}`, 400,
			`{"error_code":"BAD_REQUEST","message":"input \"x\": element 1: cannot convert \"a\" to FP32"}`},
		{"csv without header", "lin", "text/csv", "", 400, ""},
		{"csv ragged", "lin", "text/csv", "a,b,c\n1,2\n", 400, ""},
		{"too large", "lin", "application/json", `{"inputs":[[1,2,3` + strings.Repeat(" ", 3000) + `]]}`, 413,
			`{"error_code":"BAD_REQUEST","message":"request body is larger than the limit of 2048 bytes"}`},
		{"model failure", "lin", "application/json", `{"inputs":[[999,2,3]]}`, 500,
			`{"error_code":"INTERNAL_ERROR","message":"model \"lin\" failed to predict: the model cannot take 999"}`},
		{"unknown model", "nope", "application/json", `{"inputs":[[1,2,3]]}`, 404,
			`{"error_code":"ENDPOINT_NOT_FOUND","message":"model not found: \"nope\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s.InvocationsHandler(tt.model), "POST", "/invocations", tt.ctype, []byte(tt.body))
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.want == "" {
				var e struct {
					ErrorCode string `json:"error_code"`
					Message   string `json:"message"`
				}
				if err := json.Unmarshal(r.body, &e); err != nil || e.ErrorCode != "BAD_REQUEST" || e.Message == "" {
					t.Errorf("error body %s", r.body)
				}
				return
			}
			if string(r.body) != tt.want {
				t.Errorf("response\n got %s\nwant %s", r.body, tt.want)
			}
		})
	}
}

func TestInvocationsContentType(t *testing.T) {
	s := invocationsServer(t, Options{InvocationsModel: "lin"})
	body := []byte(`{"inputs":[[1,2,3]]}`)
	tests := []struct {
		ctype  string
		status int
		want   string
	}{
		{"application/json", 200, `{"predictions":{"y":[[4.75]],"label":[1]}}`},
		{"Application/JSON; charset=UTF-8", 200, `{"predictions":{"y":[[4.75]],"label":[1]}}`},
		{"text/plain", 415, "This predictor only supports the following content types: Types: ['text/csv', 'application/json']. Got 'text/plain'."},
		{"", 415, "This predictor only supports the following content types: Types: ['text/csv', 'application/json']. Got ''."},
		{"application/json; charset=latin-1", 415, "The scoring server only supports UTF-8"},
		{"application/json; format=pandas-split", 415, "Unrecognized content type parameters: format."},
	}
	for _, tt := range tests {
		r := do(t, s.Handler(), "POST", "/invocations", tt.ctype, body)
		if r.status != tt.status || string(r.body) != tt.want {
			t.Errorf("Content-Type %q: %s, want %d %s", tt.ctype, r, tt.status, tt.want)
		}
	}
}

func TestMLflowHealth(t *testing.T) {
	s := invocationsServer(t, Options{})
	for _, p := range []string{"/ping", "/health"} {
		// Seven models and no InvocationsModel: nothing to score.
		if r := do(t, s.Handler(), "GET", p, "", nil); r.status != 503 {
			t.Errorf("%s = %s, want 503", p, r)
		}
	}
	one, _ := testServer(t, Options{MLflowVersion: "3.6.0"}, &Model{Name: "lin", Runtime: newLinear()})
	for _, p := range []string{"/ping", "/health"} {
		if r := do(t, one.Handler(), "GET", p, "", nil); r.status != 200 || string(r.body) != "\n" {
			t.Errorf("%s = %q", p, r)
		}
	}
	if r := do(t, one.Handler(), "GET", "/version", "", nil); r.status != 200 || string(r.body) != "3.6.0" {
		t.Errorf("/version = %s", r)
	}
	r := do(t, one.Handler(), "POST", "/invocations", "application/json", []byte(`{"dataframe_split":{"data":[[1,2,3]]}}`))
	if r.status != 200 || string(r.body) != `{"predictions":[{"y":4.75,"label":1}]}` {
		t.Errorf("/invocations of the only model = %s", r)
	}
}

func TestDecodeTensorLit(t *testing.T) {
	tests := []struct {
		in    string
		shape []int64
		n     int
		err   bool
	}{
		{`5`, nil, 1, false},
		{`[]`, []int64{0}, 0, false},
		{`[1,2,3]`, []int64{3}, 3, false},
		{`[[1,2],[3,4],[5,6]]`, []int64{3, 2}, 6, false},
		{`[[[1],[2]],[[3],[4]]]`, []int64{2, 2, 1}, 4, false},
		{`[[],[]]`, []int64{2, 0}, 0, false},
		{`[[1,2],[3]]`, nil, 0, true},
		{`[[1],2]`, nil, 0, true},
		{`[1,[2]]`, nil, 0, true},
		{`[[1],[[2]]]`, nil, 0, true},
		{`[[[1]],[2]]`, nil, 0, true},
		{`[[],[1]]`, nil, 0, true},
		{`[[1],[]]`, nil, 0, true},
		{`[[1,{"a":1}]]`, nil, 0, true},
	}
	for _, tt := range tests {
		lit, err := decodeTensorLit(&jsonReader{b: []byte(tt.in)})
		if (err != nil) != tt.err {
			t.Errorf("%s: err = %v", tt.in, err)
			continue
		}
		if !tt.err && (len(lit.cells) != tt.n || !equalShape(lit.shape, tt.shape)) {
			t.Errorf("%s: shape %v, %d cells; want %v, %d", tt.in, lit.shape, len(lit.cells), tt.shape, tt.n)
		}
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCSVTypes(t *testing.T) {
	f, err := decodeCSV([]byte("i,f,b,s,gap,na\n1,1.5,True,x,1,\n2,2,false,,,NA\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]cellKind{
		{cellInt, cellFloat, cellBool, cellString, cellFloat, cellNull},
		{cellInt, cellFloat, cellBool, cellNull, cellNull, cellNull},
	}
	for r := range 2 {
		for j := range 6 {
			if got := f.cells[r*6+j].kind; got != want[r][j] {
				t.Errorf("row %d column %s: kind %d, want %d", r, f.columns[j], got, want[r][j])
			}
		}
	}
	if c := f.cells[4]; c.f != 1 {
		t.Errorf("gap column = %+v, want float 1", c)
	}
}
