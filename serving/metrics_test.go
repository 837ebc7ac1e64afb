package serving

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kiln-ml/kiln/serving/inferencepb"
)

func TestMetrics(t *testing.T) {
	s, reg := testServer(t, Options{}, &Model{Name: "lin", Runtime: newLinear()})
	h := s.Handler()
	ok := `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`
	do(t, h, "POST", "/v2/models/lin/infer", "application/json", []byte(ok))
	do(t, h, "POST", "/v2/models/lin/infer", "application/json", []byte(ok))
	do(t, h, "POST", "/v2/models/lin/infer", "application/json", []byte(`{}`))
	do(t, h, "POST", "/v2/models/nope/infer", "application/json", []byte(ok))
	do(t, s.InvocationsHandler("lin"), "POST", "/invocations", "application/json", []byte(`{"inputs":[[1,2,3]]}`))
	c := grpcClient(t, s)
	c.ModelInfer(context.Background(), &inferencepb.ModelInferRequest{ModelName: "lin"})

	counts := []struct {
		model, protocol, code string
		want                  float64
	}{
		{"lin", "v2-rest", "200", 2},
		{"lin", "v2-rest", "400", 1},
		{"", "v2-rest", "404", 1},
		{"lin", "mlflow", "200", 1},
		{"lin", "v2-grpc", "InvalidArgument", 1},
		{"lin", "v2-grpc", "OK", 0},
	}
	for _, c := range counts {
		got := testutil.ToFloat64(s.metrics.requests.WithLabelValues(c.model, c.protocol, c.code))
		if got != c.want {
			t.Errorf("requests{model=%q,protocol=%q,code=%q} = %v, want %v", c.model, c.protocol, c.code, got, c.want)
		}
	}
	if n := histogramCount(t, reg, "kiln_inference_request_duration_seconds", "lin"); n != 5 {
		t.Errorf("duration observations = %d, want 5", n)
	}
	// Three predictions: two of 2 rows, one of 1.
	if n := histogramCount(t, reg, "kiln_inference_batch_size", "lin"); n != 3 {
		t.Errorf("batch size observations = %d, want 3", n)
	}

	r := do(t, h, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`kiln_inference_requests_total{code="200",model="lin",protocol="v2-rest"} 2`,
		`kiln_inference_batch_size_sum{model="lin"} 5`,
		`kiln_inference_request_duration_seconds_bucket{model="lin",le="2.5e-05"}`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name, model string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" && l.GetValue() == model {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestMetricsRegisterTwice(t *testing.T) {
	repo, _ := NewStatic(&Model{Name: "lin", Runtime: newLinear()})
	reg := prometheus.NewRegistry()
	if _, err := New(repo, nil, reg, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(repo, nil, reg, Options{}); err == nil {
		t.Error("a second server on the same registry registered its metrics")
	}
	// A nil registerer is allowed (no metrics endpoint).
	s, err := New(repo, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, s.Handler(), "GET", "/metrics", "", nil); r.status != 404 {
		t.Errorf("/metrics without a gatherer = %d", r.status)
	}
}
