package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// The test models are small hand-written runtime.Models, so these tests
// depend on no runtime backend.

// linearModel computes y = x·w + b for x [N, 3] FP32, and label = y > 0.
type linearModel struct {
	w     [3]float32
	b     float32
	calls atomic.Int64
	mu    sync.Mutex
	rows  []int // rows of each Predict call
	gate  chan struct{}
}

func newLinear() *linearModel { return &linearModel{w: [3]float32{0.5, -1, 2}, b: 0.25} }

func (m *linearModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs: []runtime.TensorSpec{{Name: "x", DType: tensor.Float32, Shape: []int64{-1, 3}}},
		Outputs: []runtime.TensorSpec{
			{Name: "y", DType: tensor.Float32, Shape: []int64{-1, 1}},
			{Name: "label", DType: tensor.Int64, Shape: []int64{-1}},
		},
	}
}

func (m *linearModel) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if m.gate != nil {
		<-m.gate
	}
	in, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	m.calls.Add(1)
	x := in[0].Data.([]float32)
	n := in[0].Rows()
	m.mu.Lock()
	m.rows = append(m.rows, n)
	m.mu.Unlock()
	y := make([]float32, n)
	label := make([]int64, n)
	for r := range n {
		if x[r*3] == 999 {
			return nil, errors.New("the model cannot take 999")
		}
		v := m.b
		for k := range 3 {
			v += m.w[k] * x[r*3+k]
		}
		y[r] = v
		if v > 0 {
			label[r] = 1
		}
	}
	return []*tensor.Tensor{
		{Name: "y", DType: tensor.Float32, Shape: []int64{int64(n), 1}, Data: y},
		{Name: "label", DType: tensor.Int64, Shape: []int64{int64(n)}, Data: label},
	}, nil
}

func (m *linearModel) Close() error { return nil }

// textModel takes BYTES text [N, 1] and returns its length (INT64 [N, 1])
// and the upper-cased text (BYTES [N, 1]).
type textModel struct{}

func (textModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs: []runtime.TensorSpec{{Name: "text", DType: tensor.String, Shape: []int64{-1, 1}}},
		Outputs: []runtime.TensorSpec{
			{Name: "length", DType: tensor.Int64, Shape: []int64{-1, 1}},
			{Name: "upper", DType: tensor.String, Shape: []int64{-1, 1}},
		},
	}
}

func (m textModel) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	in, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	s := in[0].Data.([]string)
	n := int64(len(s))
	l := make([]int64, n)
	u := make([]string, n)
	for i, v := range s {
		l[i] = int64(len(v))
		u[i] = strings.ToUpper(v)
	}
	return []*tensor.Tensor{
		{Name: "length", DType: tensor.Int64, Shape: []int64{n, 1}, Data: l},
		{Name: "upper", DType: tensor.String, Shape: []int64{n, 1}, Data: u},
	}, nil
}

func (textModel) Close() error { return nil }

// echoModel returns its input "x" as output "x_out" (any datatype, shape
// [-1, -1]).
type echoModel struct{ dt tensor.DType }

func (m echoModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs:  []runtime.TensorSpec{{Name: "x", DType: m.dt, Shape: []int64{-1, -1}}},
		Outputs: []runtime.TensorSpec{{Name: "x_out", DType: m.dt, Shape: []int64{-1, -1}}},
	}
}

func (m echoModel) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	in, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	out := in[0].Clone()
	out.Name = "x_out"
	return []*tensor.Tensor{out}, nil
}

func (echoModel) Close() error { return nil }

// columnModel is shaped like an ONNX ColumnTransformer pipeline: one
// [N, 1] input per column (a FP32, b BYTES, c INT64); score = a + len(b) + c.
type columnModel struct{}

func (columnModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs: []runtime.TensorSpec{
			{Name: "a", DType: tensor.Float32, Shape: []int64{-1, 1}},
			{Name: "b", DType: tensor.String, Shape: []int64{-1, 1}},
			{Name: "c", DType: tensor.Int64, Shape: []int64{-1, 1}},
		},
		Outputs: []runtime.TensorSpec{{Name: "score", DType: tensor.Float64, Shape: []int64{-1, 1}}},
	}
}

func (m columnModel) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	in, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	a, b, c := in[0].Data.([]float32), in[1].Data.([]string), in[2].Data.([]int64)
	out := make([]float64, len(a))
	for i := range a {
		out[i] = float64(a[i]) + float64(len(b[i])) + float64(c[i])
	}
	return []*tensor.Tensor{{Name: "score", DType: tensor.Float64, Shape: []int64{int64(len(a)), 1}, Data: out}}, nil
}

func (columnModel) Close() error { return nil }

// classifierModel returns a label and per-class probabilities with
// labels, as a converted classifier with ZipMap does.
type classifierModel struct{}

func (classifierModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs: []runtime.TensorSpec{{Name: "x", DType: tensor.Float64, Shape: []int64{-1, 2}}},
		Outputs: []runtime.TensorSpec{
			{Name: "label", DType: tensor.String, Shape: []int64{-1}},
			{Name: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 2}, Labels: []string{"no", "yes"}},
		},
	}
}

func (m classifierModel) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	in, err := runtime.MatchInputs(m.Signature(), in)
	if err != nil {
		return nil, err
	}
	x := in[0].Data.([]float64)
	n := len(x) / 2
	label := make([]string, n)
	p := make([]float32, 2*n)
	for r := range n {
		yes := float32(0.25)
		if x[2*r] > x[2*r+1] {
			yes = 0.75
			label[r] = "yes"
		} else {
			label[r] = "no"
		}
		p[2*r], p[2*r+1] = 1-yes, yes
	}
	return []*tensor.Tensor{
		{Name: "label", DType: tensor.String, Shape: []int64{int64(n)}, Data: label},
		{Name: "probabilities", DType: tensor.Float32, Shape: []int64{int64(n), 2}, Data: p},
	}, nil
}

func (classifierModel) Close() error { return nil }

// testServer builds a Server over models with a private registry.
func testServer(t testing.TB, opts Options, models ...*Model) (*Server, *prometheus.Registry) {
	t.Helper()
	repo, err := NewStatic(models...)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(repo, nil, reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request to h.
func do(t testing.TB, h http.Handler, method, path, contentType string, body []byte, hdr ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }
