package serving

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/kiln-ml/kiln/serving/inferencepb"
)

// nopWriter is a ResponseWriter that discards, so the benchmarks measure
// the server, not the recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchHandler(b *testing.B, h http.Handler, path, ctype string, body []byte) {
	req := httptest.NewRequest("POST", path, nil)
	req.Header.Set("Content-Type", ctype)
	rd := bytes.NewReader(body)
	w := &nopWriter{h: http.Header{}}
	// One request through the whole mux first, to check it succeeds.
	rec := httptest.NewRecorder()
	req.Body = http.NoBody
	r0 := httptest.NewRequest("POST", path, bytes.NewReader(body))
	r0.Header.Set("Content-Type", ctype)
	h.ServeHTTP(rec, r0)
	if rec.Code != 200 {
		b.Fatalf("%d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rd.Reset(body)
		req.Body = readCloser{rd}
		req.ContentLength = int64(len(body))
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// BenchmarkV2InferSingleRow is one row of 4 features through the REST
// infer path: routing, decoding, validation, prediction, encoding and
// metrics (the model itself is a trivial linear function).
func BenchmarkV2InferSingleRow(b *testing.B) {
	s, _ := testServer(b, Options{}, &Model{Name: "lin", Version: "1", Runtime: newLinear()})
	body := []byte(`{"id":"1","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[[5.1,3.5,1.4]]}]}`)
	benchHandler(b, s.Handler(), "/v2/models/lin/infer", "application/json", body)
}

// BenchmarkV2InferBinary is the same request as tritonclient sends it.
func BenchmarkV2InferBinary(b *testing.B) {
	s, _ := testServer(b, Options{}, &Model{Name: "lin", Version: "1", Runtime: newLinear()})
	js := `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}],"parameters":{"binary_data_output":true}}`
	body := append([]byte(js), appendRaw(nil, xTensor(1, 1.5))...)
	h := s.Handler()
	n := []string{strconv.Itoa(len(js))}
	hdr := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header["Inference-Header-Content-Length"] = n
		h.ServeHTTP(w, r)
	})
	benchHandler(b, hdr, "/v2/models/lin/infer", "application/octet-stream", body)
}

// BenchmarkInvocationsSingleRow is one dataframe_split row through
// /invocations.
func BenchmarkInvocationsSingleRow(b *testing.B) {
	s, _ := testServer(b, Options{}, &Model{Name: "lin", Runtime: newLinear()})
	body := []byte(`{"dataframe_split":{"columns":["a","b","c"],"data":[[5.1,3.5,1.4]]}}`)
	benchHandler(b, s.Handler(), "/invocations", "application/json", body)
}

func BenchmarkGRPCInferSingleRow(b *testing.B) {
	s, _ := testServer(b, Options{}, &Model{Name: "lin", Runtime: newLinear()})
	g := &grpcService{s: s}
	req := &inferencepb.ModelInferRequest{
		ModelName:        "lin",
		Inputs:           []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3}}},
		RawInputContents: [][]byte{appendRaw(nil, xTensor(1, 1.5))},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.ModelInfer(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
