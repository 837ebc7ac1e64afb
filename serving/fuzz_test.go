package serving

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

func FuzzDecodeInferRequest(f *testing.F) {
	seeds := []string{
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}`,
		`{"id":"1","parameters":{"binary_data_output":true},"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[NaN,-Infinity]}],"outputs":[{"name":"x_out","parameters":{"binary_data":false}}]}`,
		`{"inputs":[{"data":["a","\u00e9"],"name":"t","datatype":"BYTES","shape":[2]}]}`,
		`{"inputs":[{"name":"b","shape":[3],"datatype":"BOOL","data":[true,0,1]}]}`,
		`{"inputs":[{"name":"i","shape":[1],"datatype":"INT8","data":-128}]}`,
		`{"inputs":[{"name":"x","shape":[0,2],"datatype":"FP16","data":[]}]}`,
		`{"inputs":[{"name":"x","shape":[1,1],"datatype":"UINT64","data":[[[18446744073709551615]]]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), -1)
	}
	// Binary extension bodies.
	x := &tensor.Tensor{Name: "x", DType: tensor.Float32, Shape: []int64{1, 2}, Data: []float32{1, 2}}
	js := `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`
	f.Add(append([]byte(js), appendRaw(nil, x)...), len(js))
	s := &tensor.Tensor{Name: "x", DType: tensor.String, Shape: []int64{2}, Data: []string{"ab", ""}}
	js = `{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}}]}`
	f.Add(append([]byte(js), appendRaw(nil, s)...), len(js))

	srv, _ := testServer(f, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tensor.Float32}})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, jsonLen int) {
		if jsonLen < -1 {
			jsonLen = -1
		}
		req, err := decodeV2(body, jsonLen, nil)
		if err != nil {
			if classify(err) != kindBadRequest {
				t.Fatalf("decode error %v is not a bad request", err)
			}
			return
		}
		for _, in := range req.inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("decoded an invalid tensor: %v", err)
			}
		}
		js := body
		if jsonLen >= 0 {
			js = body[:jsonLen]
		}
		if !bytes.Contains(js, []byte("NaN")) && !bytes.Contains(js, []byte("Infinity")) && !json.Valid(js) {
			t.Fatalf("accepted invalid JSON %q", js)
		}
		var hdr []string
		if jsonLen >= 0 {
			hdr = []string{"Inference-Header-Content-Length", strconv.Itoa(jsonLen)}
		}
		r := do(t, h, "POST", "/v2/models/echo/infer", "application/json", body, hdr...)
		if r.status != 200 && r.status != 400 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		out := r.body
		if n := r.header.Get("Inference-Header-Content-Length"); n != "" {
			l, _ := strconv.Atoi(n)
			out = out[:l]
		}
		if !bytes.Contains(out, []byte("NaN")) && !bytes.Contains(out, []byte("Infinity")) && !json.Valid(out) {
			t.Fatalf("invalid JSON response %q", out)
		}
	})
}

func FuzzDecodeInvocations(f *testing.F) {
	seeds := []string{
		`{"dataframe_split":{"columns":["a","b","c"],"data":[[1.5,"x",2]]}}`,
		`{"dataframe_split":{"data":[[1,2]],"index":[0]}}`,
		`{"dataframe_records":[{"a":1,"b":"y","c":3},{"a":null}]}`,
		`{"instances":[[1,2],[3,4]]}`,
		`{"instances":[{"a":1,"b":"z","c":1}]}`,
		`{"inputs":{"a":[1],"b":["q"],"c":[2]}}`,
		`{"inputs":{"x":[[1,2]]},"params":{"k":[1]}}`,
		`{"inputs":[[[1],[2]],[[3],[4]]]}`,
		`[1,2]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("a,b,c\n1.5,x,2\n,NA,3\n"), true)
	f.Add([]byte("\"a\",b\n\"1,2\",3\n"), true)

	srv, _ := testServer(f, Options{},
		&Model{Name: "cols", Runtime: columnModel{}, Signature: mustSignature(f,
			`[{"type":"double","name":"a"},{"type":"string","name":"b"},{"type":"long","name":"c","required":false}]`)},
		&Model{Name: "clf", Runtime: classifierModel{}},
	)
	cols, clf := srv.InvocationsHandler("cols"), srv.InvocationsHandler("clf")
	f.Fuzz(func(t *testing.T, body []byte, isCSV bool) {
		var err error
		if isCSV {
			_, err = decodeCSV(body, nil)
		} else {
			_, err = decodeInvocationJSON(body, nil)
		}
		if err != nil && classify(err) != kindBadRequest {
			t.Fatalf("decode error %v is not a bad request", err)
		}
		ctype := "application/json"
		if isCSV {
			ctype = "text/csv"
		}
		for _, h := range []http.Handler{cols, clf} {
			r := do(t, h, "POST", "/invocations", ctype, body)
			if r.status != 200 && r.status != 400 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !bytes.Contains(r.body, []byte("NaN")) && !bytes.Contains(r.body, []byte("Infinity")) && !json.Valid(r.body) {
				t.Fatalf("invalid JSON response %q", r.body)
			}
		}
	})
}
