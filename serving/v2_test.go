package serving

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

type v2Tensor struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int64        `json:"shape"`
	Parameters map[string]any `json:"parameters"`
	Data       []any          `json:"data"`
}

type v2Resp struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version"`
	ID           string     `json:"id"`
	Outputs      []v2Tensor `json:"outputs"`
	Error        string     `json:"error"`
}

func decodeResp(t *testing.T, r response) v2Resp {
	t.Helper()
	var v v2Resp
	js := r.body
	if h := r.header.Get("Inference-Header-Content-Length"); h != "" {
		n, _ := strconv.Atoi(h)
		js = js[:n]
	}
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatalf("response %s: %v", r, err)
	}
	return v
}

func linearServer(t testing.TB, opts Options) (*Server, *linearModel) {
	lin := newLinear()
	s, _ := testServer(t, opts,
		&Model{Name: "lin", Version: "1", Platform: "test_linear", Runtime: lin},
		&Model{Name: "text", Runtime: textModel{}},
	)
	return s, lin
}

func TestV2Metadata(t *testing.T) {
	s, _ := linearServer(t, Options{ServerVersion: "1.2.3"})
	h := s.Handler()
	tests := []struct {
		path   string
		status int
		want   string // JSON, compared semantically
	}{
		{"/v2", 200, `{"name":"kiln","version":"1.2.3","extensions":["binary_tensor_data","model_repository","parameters"]}`},
		{"/v2/health/live", 200, `{"live":true}`},
		{"/v2/health/ready", 200, `{"ready":true}`},
		{"/v2/models/lin", 200, `{"name":"lin","versions":["1"],"platform":"test_linear",
			"inputs":[{"name":"x","datatype":"FP32","shape":[-1,3]}],
			"outputs":[{"name":"y","datatype":"FP32","shape":[-1,1]},{"name":"label","datatype":"INT64","shape":[-1]}]}`},
		{"/v2/models/lin/versions/1", 200, `{"name":"lin","versions":["1"],"platform":"test_linear",
			"inputs":[{"name":"x","datatype":"FP32","shape":[-1,3]}],
			"outputs":[{"name":"y","datatype":"FP32","shape":[-1,1]},{"name":"label","datatype":"INT64","shape":[-1]}]}`},
		{"/v2/models/text", 200, `{"name":"text","platform":"",
			"inputs":[{"name":"text","datatype":"BYTES","shape":[-1,1]}],
			"outputs":[{"name":"length","datatype":"INT64","shape":[-1,1]},{"name":"upper","datatype":"BYTES","shape":[-1,1]}]}`},
		{"/v2/models/lin/ready", 200, `{"name":"lin","ready":true}`},
		{"/v2/models/lin/versions/1/ready", 200, `{"name":"lin","ready":true}`},
		{"/v2/models/nope", 404, `{"error":"model not found: \"nope\""}`},
		{"/v2/models/lin/versions/2", 404, `{"error":"model not found: model \"lin\" has no version \"2\""}`},
		{"/v2/models/nope/ready", 404, `{"error":"model not found: \"nope\""}`},
		{"/v2/nothing/here", 404, `{"error":"no endpoint GET /v2/nothing/here"}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := do(t, h, "GET", tt.path, "", nil)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got, want any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			json.Unmarshal([]byte(tt.want), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body = %s\nwant %s", r.body, tt.want)
			}
		})
	}
}

func TestV2RepositoryIndex(t *testing.T) {
	s, _ := linearServer(t, Options{})
	for _, body := range []string{"", `{}`, `{"ready": true}`} {
		r := do(t, s.Handler(), "POST", "/v2/repository/index", "application/json", []byte(body))
		want := `[{"name":"lin","version":"1","state":"READY"},{"name":"text","state":"READY"}]`
		if r.status != 200 || string(r.body) != want {
			t.Errorf("index(%q) = %s, want %s", body, r, want)
		}
	}
	r := do(t, s.Handler(), "POST", "/v2/repository/index", "application/json", []byte(`{"ready":`))
	if r.status != 400 || !strings.Contains(string(r.body), `"error"`) {
		t.Errorf("bad index request = %s", r)
	}
}

func TestV2Infer(t *testing.T) {
	s, _ := linearServer(t, Options{MaxBodySize: 4096})
	h := s.Handler()
	// y = 0.5*x0 - x1 + 2*x2 + 0.25
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		want   string // the JSON response, or a substring of the error
	}{
		{"flat", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,0,0,0]}]}`, 200,
			`{"model_name":"lin","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[2,1],"data":[4.75,0.25]},{"name":"label","datatype":"INT64","shape":[2],"data":[1,1]}]}`},
		{"nested, id echo, outputs filter", "/v2/models/lin/versions/1/infer",
			`{"id":"42","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[0,1,0]]}],"outputs":[{"name":"label"}]}`, 200,
			`{"model_name":"lin","model_version":"1","id":"42","outputs":[{"name":"label","datatype":"INT64","shape":[2],"data":[1,0]}]}`},
		{"data before datatype and shape, parameters, unknown keys", "/v2/models/lin/infer",
			`{"parameters":{"content_type":"np","priority":1,"x":null},"inputs":[{"data":[[1.5e0,-2,0.125]],"parameters":{"content_type":"np"},"name":"x","datatype":"FP32","shape":[1,3]}],"extra":{"a":[1,{"b":2}]}}`, 200,
			`{"model_name":"lin","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[1,1],"data":[3.25]},{"name":"label","datatype":"INT64","shape":[1],"data":[1]}]}`},
		{"escaped names and id", "/v2/models/lin/infer",
			`{"id":"a\"b\u00e9","inputs":[{"name":"\u0078","shape":[1,3],"datatype":"FP32","data":[0,0,0]}]}`, 200,
			`{"model_name":"lin","model_version":"1","id":"a\"bé","outputs":[{"name":"y","datatype":"FP32","shape":[1,1],"data":[0.25]},{"name":"label","datatype":"INT64","shape":[1],"data":[1]}]}`},
		{"bytes", "/v2/models/text/infer",
			`{"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","data":["héllo","a\nb"]}]}`, 200,
			`{"model_name":"text","outputs":[{"name":"length","datatype":"INT64","shape":[2,1],"data":[6,3]},{"name":"upper","datatype":"BYTES","shape":[2,1],"data":["HÉLLO","A\nB"]}]}`},

		{"unknown model", "/v2/models/nope/infer", `{"inputs":[]}`, 404, `model not found: \"nope\"`},
		{"unknown version", "/v2/models/lin/versions/7/infer", `{"inputs":[]}`, 404, `no version \"7\"`},
		{"malformed JSON", "/v2/models/lin/infer", `{"inputs":[{"name":"x",}]}`, 400, "invalid JSON"},
		{"not an object", "/v2/models/lin/infer", `[1,2]`, 400, "invalid JSON"},
		{"trailing data", "/v2/models/lin/infer", `{"inputs":[]} x`, 400, "after the JSON value"},
		{"no inputs key", "/v2/models/lin/infer", `{"id":"1"}`, 400, `no \"inputs\"`},
		{"missing input", "/v2/models/lin/infer", `{"inputs":[]}`, 400, `missing input \"x\"`},
		{"unknown input", "/v2/models/lin/infer",
			`{"inputs":[{"name":"z","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, `unexpected input \"z\"`},
		{"wrong datatype", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`, 400, `input \"x\" has datatype FP64, model \"lin\" expects FP32`},
		{"wrong shape", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 400, `input \"x\" has shape [1 4], model \"lin\" expects [-1 3]`},
		{"wrong rank", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2,3]}]}`, 400, `input \"x\" has shape [3]`},
		{"count mismatch", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, `input \"x\": 3 data elements for shape [2 3], which holds 6`},
		{"not a number", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,"2",3]}]}`, 400, `input \"x\"`},
		{"unknown datatype", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP8","data":[1,2,3]}]}`, 400, `input \"x\": unsupported datatype \"FP8\"`},
		{"negative dim", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[-1,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, `not a non-negative integer`},
		{"no shape", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3]}]}`, 400, `input \"x\" has no shape`},
		{"no data", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32"}]}`, 400, `input \"x\" has no data`},
		{"unknown output", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"outputs":[{"name":"prob"}]}`, 400, `unknown output \"prob\"`},
		{"classification", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"outputs":[{"name":"y","parameters":{"class_count":2}}]}`, 400, `class_count`},
		{"model failure", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[999,2,3]}]}`, 500, `model \"lin\" failed to predict: the model cannot take 999`},
		{"too large", "/v2/models/lin/infer",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3` + strings.Repeat(" ", 5000) + `]}]}`, 413, "larger than the limit of 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, h, "POST", tt.path, "application/json", []byte(tt.body))
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.status != 200 {
				var e map[string]string
				if err := json.Unmarshal(r.body, &e); err != nil || len(e) != 1 {
					t.Fatalf("error body %s is not {\"error\": ...}", r.body)
				}
				if !strings.Contains(string(r.body), tt.want) {
					t.Errorf("error = %s, want it to contain %s", r.body, tt.want)
				}
				return
			}
			if string(r.body) != tt.want {
				t.Errorf("response\n got %s\nwant %s", r.body, tt.want)
			}
			if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
				t.Errorf("Content-Length = %s for %d bytes", cl, len(r.body))
			}
		})
	}
}

// dtypeCase is one datatype with JSON data and the values it decodes to.
type dtypeCase struct {
	dt     tensor.DType
	json   string // 2×2 data, nested
	values any
	out    string // the data as the server writes it back
}

var dtypeCases = []dtypeCase{
	{tensor.Bool, `[[true,false],[1,0]]`, []bool{true, false, true, false}, `[true,false,true,false]`},
	{tensor.Uint8, `[[0,255],[7,8]]`, []uint8{0, 255, 7, 8}, `[0,255,7,8]`},
	{tensor.Uint16, `[[0,65535],[7,8.0]]`, []uint16{0, 65535, 7, 8}, `[0,65535,7,8]`},
	{tensor.Uint32, `[[0,4294967295],[7,8]]`, []uint32{0, 4294967295, 7, 8}, `[0,4294967295,7,8]`},
	{tensor.Uint64, `[[0,18446744073709551615],[7,8]]`, []uint64{0, math.MaxUint64, 7, 8}, `[0,18446744073709551615,7,8]`},
	{tensor.Int8, `[[-128,127],[-1,0]]`, []int8{-128, 127, -1, 0}, `[-128,127,-1,0]`},
	{tensor.Int16, `[[-32768,32767],[-1,0]]`, []int16{-32768, 32767, -1, 0}, `[-32768,32767,-1,0]`},
	{tensor.Int32, `[[-2147483648,2147483647],[-1,1e3]]`, []int32{math.MinInt32, math.MaxInt32, -1, 1000}, `[-2147483648,2147483647,-1,1000]`},
	{tensor.Int64, `[[-9223372036854775808,9223372036854775807],[-1,0]]`, []int64{math.MinInt64, math.MaxInt64, -1, 0}, `[-9223372036854775808,9223372036854775807,-1,0]`},
	{tensor.Float16, `[[1.5,-2],[65504,0.099975586]]`, []uint16{0x3e00, 0xc000, 0x7bff, 0x2e66}, `[1.5,-2.0,65504.0,0.099975586]`},
	{tensor.Float32, `[[1.5,-2],[3.4028235e38,1e-45]]`, []float32{1.5, -2, math.MaxFloat32, 1e-45}, `[1.5,-2.0,3.4028235e+38,1e-45]`},
	{tensor.Float64, `[[0.1,-2],[1.7976931348623157e308,5e-324]]`, []float64{0.1, -2, math.MaxFloat64, 5e-324}, `[0.1,-2.0,1.7976931348623157e+308,5e-324]`},
	{tensor.String, `[["a","é\u00e9"],["","\"q\"\n"]]`, []string{"a", "éé", "", "\"q\"\n"}, `["a","éé","","\"q\"\n"]`},
}

func TestV2AllDatatypes(t *testing.T) {
	for _, tc := range dtypeCases {
		t.Run(tc.dt.String(), func(t *testing.T) {
			s, _ := testServer(t, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tc.dt}})
			body := `{"inputs":[{"name":"x","shape":[2,2],"datatype":"` + tc.dt.String() + `","data":` + tc.json + `}]}`
			r := do(t, s.Handler(), "POST", "/v2/models/echo/infer", "application/json", []byte(body))
			want := `{"model_name":"echo","outputs":[{"name":"x_out","datatype":"` + tc.dt.String() + `","shape":[2,2],"data":` + tc.out + `}]}`
			if r.status != 200 || string(r.body) != want {
				t.Fatalf("JSON round trip:\n got %s\nwant %s", r, want)
			}

			// The same through the binary extension, both ways.
			in := &tensor.Tensor{Name: "x", DType: tc.dt, Shape: []int64{2, 2}, Data: tc.values}
			raw := appendRaw(nil, in)
			js := `{"inputs":[{"name":"x","shape":[2,2],"datatype":"` + tc.dt.String() + `","parameters":{"binary_data_size":` + strconv.Itoa(len(raw)) + `}}],"parameters":{"binary_data_output":true}}`
			r = do(t, s.Handler(), "POST", "/v2/models/echo/infer", "application/octet-stream", append([]byte(js), raw...),
				"Inference-Header-Content-Length", strconv.Itoa(len(js)))
			if r.status != 200 {
				t.Fatalf("binary round trip: %s", r)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("Content-Type = %q", ct)
			}
			hl, err := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
			if err != nil {
				t.Fatal(err)
			}
			wantJSON := `{"model_name":"echo","outputs":[{"name":"x_out","datatype":"` + tc.dt.String() + `","shape":[2,2],"parameters":{"binary_data_size":` + strconv.Itoa(len(raw)) + `}}]}`
			if got := string(r.body[:hl]); got != wantJSON {
				t.Errorf("binary response header\n got %s\nwant %s", got, wantJSON)
			}
			if !bytes.Equal(r.body[hl:], raw) {
				t.Errorf("binary response data = %x, want %x", r.body[hl:], raw)
			}
			got, err := decodeRaw("x", tc.dt, r.body[hl:], 4)
			if err != nil || !reflect.DeepEqual(got, tc.values) {
				t.Errorf("decoded %v (%v), want %v", got, err, tc.values)
			}
		})
	}
}

func TestV2DatatypeRange(t *testing.T) {
	tests := []struct {
		dt   tensor.DType
		data string
		want string
	}{
		{tensor.Int8, `[128]`, "128 is not a valid INT8 value"},
		{tensor.Int8, `[-129]`, "-129 is not a valid INT8 value"},
		{tensor.Uint8, `[-1]`, "-1 is not a valid UINT8 value"},
		{tensor.Uint8, `[256]`, "256 is not a valid UINT8 value"},
		{tensor.Int32, `[1.5]`, "1.5 is not a valid INT32 value"},
		{tensor.Int64, `[9223372036854775808]`, "is not a valid INT64 value"},
		{tensor.Uint64, `[18446744073709551616]`, "is not a valid UINT64 value"},
		{tensor.Bool, `[2]`, "2 is not a BOOL value"},
		{tensor.String, `[1]`, "BYTES elements must be strings"},
		{tensor.Float32, `["x"]`, "invalid number"},
	}
	for _, tt := range tests {
		t.Run(tt.dt.String()+tt.data, func(t *testing.T) {
			s, _ := testServer(t, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tt.dt}})
			body := `{"inputs":[{"name":"x","shape":[1,1],"datatype":"` + tt.dt.String() + `","data":` + tt.data + `}]}`
			r := do(t, s.Handler(), "POST", "/v2/models/echo/infer", "application/json", []byte(body))
			if r.status != 400 || !strings.Contains(string(r.body), tt.want) || !strings.Contains(string(r.body), `input \"x\"`) {
				t.Errorf("got %s, want 400 naming input x with %q", r, tt.want)
			}
		})
	}
}

func TestV2NonFinite(t *testing.T) {
	s, _ := testServer(t, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tensor.Float64}})
	// NaN/Infinity as Python's json writes them, null as missing.
	body := `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,Infinity,-Infinity,null]}]}`
	r := do(t, s.Handler(), "POST", "/v2/models/echo/infer", "application/json", []byte(body))
	want := `{"model_name":"echo","outputs":[{"name":"x_out","datatype":"FP64","shape":[1,4],"data":[NaN,Infinity,-Infinity,NaN]}]}`
	if r.status != 200 || string(r.body) != want {
		t.Errorf("got %s\nwant %s", r, want)
	}
}

// tritonBody builds a request as tritonclient.http does by default: the
// inputs as binary data, and binary_data_output when no outputs are named.
func tritonBody(t *testing.T, inputs []*tensor.Tensor, outputs string) ([]byte, int) {
	t.Helper()
	var js strings.Builder
	js.WriteString(`{"id":"7","inputs":[`)
	var bin []byte
	for i, in := range inputs {
		raw := appendRaw(nil, in)
		bin = append(bin, raw...)
		if i > 0 {
			js.WriteString(",")
		}
		shape, _ := json.Marshal(in.Shape)
		js.WriteString(`{"name":"` + in.Name + `","shape":` + string(shape) + `,"datatype":"` + in.DType.String() + `","parameters":{"binary_data_size":` + strconv.Itoa(len(raw)) + `}}`)
	}
	js.WriteString("]")
	if outputs != "" {
		js.WriteString(`,"outputs":` + outputs)
	} else {
		js.WriteString(`,"parameters":{"binary_data_output":true}`)
	}
	js.WriteString("}")
	return append([]byte(js.String()), bin...), js.Len()
}

func TestV2BinaryExtension(t *testing.T) {
	s, _ := linearServer(t, Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	x := &tensor.Tensor{Name: "x", DType: tensor.Float32, Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 0, 0, 0}}
	post := func(t *testing.T, path string, body []byte, jsonLen int) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(jsonLen))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		return res, buf.Bytes()
	}

	t.Run("all outputs binary", func(t *testing.T) {
		body, n := tritonBody(t, []*tensor.Tensor{x}, "")
		res, b := post(t, "/v2/models/lin/infer", body, n)
		hl, _ := strconv.Atoi(res.Header.Get("Inference-Header-Content-Length"))
		if res.StatusCode != 200 || hl == 0 {
			t.Fatalf("%d %s", res.StatusCode, b)
		}
		wantJSON := `{"model_name":"lin","model_version":"1","id":"7","outputs":[{"name":"y","datatype":"FP32","shape":[2,1],"parameters":{"binary_data_size":8}},{"name":"label","datatype":"INT64","shape":[2],"parameters":{"binary_data_size":16}}]}`
		if string(b[:hl]) != wantJSON {
			t.Errorf("JSON part\n got %s\nwant %s", b[:hl], wantJSON)
		}
		data := b[hl:]
		if len(data) != 24 {
			t.Fatalf("%d bytes of binary data", len(data))
		}
		y0 := math.Float32frombits(binary.LittleEndian.Uint32(data))
		y1 := math.Float32frombits(binary.LittleEndian.Uint32(data[4:]))
		l0, l1 := binary.LittleEndian.Uint64(data[8:]), binary.LittleEndian.Uint64(data[16:])
		if y0 != 4.75 || y1 != 0.25 || l0 != 1 || l1 != 1 {
			t.Errorf("outputs y=[%v %v] label=[%v %v]", y0, y1, l0, l1)
		}
	})
	t.Run("mixed binary and JSON outputs", func(t *testing.T) {
		body, n := tritonBody(t, []*tensor.Tensor{x}, `[{"name":"label","parameters":{"binary_data":false}},{"name":"y","parameters":{"binary_data":true}}]`)
		res, b := post(t, "/v2/models/lin/infer", body, n)
		hl, _ := strconv.Atoi(res.Header.Get("Inference-Header-Content-Length"))
		wantJSON := `{"model_name":"lin","model_version":"1","id":"7","outputs":[{"name":"label","datatype":"INT64","shape":[2],"data":[1,1]},{"name":"y","datatype":"FP32","shape":[2,1],"parameters":{"binary_data_size":8}}]}`
		if res.StatusCode != 200 || string(b[:hl]) != wantJSON || len(b) != hl+8 {
			t.Errorf("%d %s", res.StatusCode, b)
		}
	})
	t.Run("binary inputs, JSON outputs", func(t *testing.T) {
		body, n := tritonBody(t, []*tensor.Tensor{x}, `[{"name":"y","parameters":{"binary_data":false}}]`)
		res, b := post(t, "/v2/models/lin/infer", body, n)
		want := `{"model_name":"lin","model_version":"1","id":"7","outputs":[{"name":"y","datatype":"FP32","shape":[2,1],"data":[4.75,0.25]}]}`
		if res.StatusCode != 200 || string(b) != want || res.Header.Get("Inference-Header-Content-Length") != "" || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%d %v %s", res.StatusCode, res.Header, b)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		in := &tensor.Tensor{Name: "text", DType: tensor.String, Shape: []int64{2, 1}, Data: []string{"ab", ""}}
		body, n := tritonBody(t, []*tensor.Tensor{in}, "")
		res, b := post(t, "/v2/models/text/infer", body, n)
		hl, _ := strconv.Atoi(res.Header.Get("Inference-Header-Content-Length"))
		if res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, b)
		}
		// length [2, 0] (16 bytes), then upper ["AB", ""] as 4+2+4+0 bytes.
		want := append(appendRaw(nil, &tensor.Tensor{DType: tensor.Int64, Data: []int64{2, 0}}),
			appendRaw(nil, &tensor.Tensor{DType: tensor.String, Data: []string{"AB", ""}})...)
		if !bytes.Equal(b[hl:], want) {
			t.Errorf("binary data %x, want %x", b[hl:], want)
		}
	})

	errTests := []struct {
		name string
		body func() ([]byte, int)
		want string
	}{
		{"binary size overruns", func() ([]byte, int) {
			b, n := tritonBody(t, []*tensor.Tensor{x}, "")
			return b[:len(b)-4], n
		}, "binary_data_size 24 overruns the 20 bytes"},
		{"binary left over", func() ([]byte, int) {
			b, n := tritonBody(t, []*tensor.Tensor{x}, "")
			return append(b, 0, 0), n
		}, "2 bytes of binary data are not claimed"},
		{"header length past the body", func() ([]byte, int) {
			b, _ := tritonBody(t, []*tensor.Tensor{x}, "")
			return b, len(b) + 1
		}, "larger than the body"},
		{"size not a multiple", func() ([]byte, int) {
			js := `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":5}}]}`
			return append([]byte(js), 1, 2, 3, 4, 5), len(js)
		}, `input \"x\": 5 bytes of FP32 data for a shape of 6 elements (want 24 bytes)`},
		{"both data and binary", func() ([]byte, int) {
			js := `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3],"parameters":{"binary_data_size":12}}]}`
			return append([]byte(js), make([]byte, 12)...), len(js)
		}, `has both \"data\" and binary_data_size`},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			body, n := tt.body()
			res, b := post(t, "/v2/models/lin/infer", body, n)
			if res.StatusCode != 400 || !strings.Contains(string(b), tt.want) || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s, want 400 with %s", res.StatusCode, b, tt.want)
			}
		})
	}
}

func TestV2BytesBinaryMalformed(t *testing.T) {
	tests := []struct {
		raw  []byte
		n    int
		want string
	}{
		{[]byte{1, 0, 0}, 1, "truncated BYTES element length"},
		{[]byte{5, 0, 0, 0, 'a'}, 1, "overruns the data"},
		{[]byte{1, 0, 0, 0, 'a', 1, 0, 0, 0, 'b'}, 1, "more than the 1 BYTES elements"},
		{[]byte{1, 0, 0, 0, 'a'}, 2, "1 BYTES elements for a shape of 2 elements"},
	}
	for _, tt := range tests {
		if _, err := decodeRaw("t", tensor.String, tt.raw, tt.n); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("decodeRaw(%x, %d) = %v, want %q", tt.raw, tt.n, err, tt.want)
		}
	}
}

func TestV2Gzip(t *testing.T) {
	s, _ := linearServer(t, Options{})
	body := `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`
	var buf bytes.Buffer
	zw := newGzipWriter(&buf)
	zw.Write([]byte(body))
	zw.Close()
	r := do(t, s.Handler(), "POST", "/v2/models/lin/infer", "application/json", buf.Bytes(), "Content-Encoding", "gzip")
	if r.status != 200 || !strings.Contains(string(r.body), `"data":[4.75]`) {
		t.Errorf("gzip request: %s", r)
	}
	r = do(t, s.Handler(), "POST", "/v2/models/lin/infer", "application/json", []byte(body), "Content-Encoding", "br")
	if r.status != 400 || !strings.Contains(string(r.body), `unsupported Content-Encoding`) {
		t.Errorf("br request: %s", r)
	}
}

func newGzipWriter(w *bytes.Buffer) *gzip.Writer { return gzip.NewWriter(w) }

func TestInferPath(t *testing.T) {
	tests := []struct {
		path, name, version string
		ok                  bool
	}{
		{"/v2/models/lin/infer", "lin", "", true},
		{"/v2/models/lin/versions/3/infer", "lin", "3", true},
		{"/v2/models//infer", "", "", false},
		{"/v2/models/infer", "", "", false},
		{"/v2/models/a/b/infer", "", "", false},
		{"/v2/models/a/versions//infer", "", "", false},
		{"/v2/models/a/versions/1/2/infer", "", "", false},
		{"/v2/models/lin/ready", "", "", false},
	}
	for _, tt := range tests {
		name, version, ok := inferPath(tt.path)
		if name != tt.name || version != tt.version || ok != tt.ok {
			t.Errorf("inferPath(%q) = %q, %q, %v", tt.path, name, version, ok)
		}
	}
	// Escaped names go through the mux, which unescapes them.
	s, _ := testServer(t, Options{}, &Model{Name: "a/b", Runtime: newLinear()})
	r := do(t, s.Handler(), "POST", "/v2/models/a%2Fb/infer", "application/json",
		[]byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`))
	if r.status != 200 || !strings.Contains(string(r.body), `"model_name":"a/b"`) {
		t.Errorf("escaped model name: %s", r)
	}
}
