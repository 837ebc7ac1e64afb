package serving

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// protocol labels of kiln_inference_requests_total.
type protocol uint8

const (
	protoREST   protocol = iota // Open Inference Protocol over HTTP
	protoGRPC                   // Open Inference Protocol over gRPC
	protoMLflow                 // MLflow /invocations
	numProtocols
)

var protocolNames = [numProtocols]string{protoREST: "v2-rest", protoGRPC: "v2-grpc", protoMLflow: "mlflow"}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	batch    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_inference_requests_total",
			Help: "Inference requests answered, by model, protocol (v2-rest, v2-grpc, mlflow) and code (the HTTP status, or the gRPC status code name).",
		}, []string{"model", "protocol", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_inference_request_duration_seconds",
			Help: "Time to answer an inference request, from its first byte read to its response written, by model.",
			Buckets: []float64{
				25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
				.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
			},
		}, []string{"model"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_inference_batch_size",
			Help:    "Rows per model prediction (several requests' rows when adaptive batching joins them), by model.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 … 2048
		}, []string{"model"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.batch} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// modelMetrics are one model's series, looked up once so the hot path
// only increments.
type modelMetrics struct {
	requests *prometheus.CounterVec // curried with the model
	ok       [numProtocols]prometheus.Counter
	duration prometheus.Observer
	batch    prometheus.Observer
}

func (m *metrics) forModel(name string) *modelMetrics {
	mm := &modelMetrics{
		requests: m.requests.MustCurryWith(prometheus.Labels{"model": name}),
		duration: m.duration.WithLabelValues(name),
		batch:    m.batch.WithLabelValues(name),
	}
	mm.prewarm()
	return mm
}

// forUnknown counts requests for models that do not exist (model=""),
// creating series only for the codes that occur.
func (m *metrics) forUnknown() *modelMetrics {
	return &modelMetrics{requests: m.requests.MustCurryWith(prometheus.Labels{"model": ""})}
}

// prewarm looks up the success series of every protocol once.
func (mm *modelMetrics) prewarm() {
	for p := range numProtocols {
		code := "200"
		if p == protoGRPC {
			code = codes.OK.String()
		}
		mm.ok[p] = mm.requests.WithLabelValues(protocolNames[p], code)
	}
}

// count records one answered request with its HTTP status.
func (mm *modelMetrics) countHTTP(p protocol, status int) {
	if status == 200 && mm.ok[p] != nil {
		mm.ok[p].Inc()
		return
	}
	mm.requests.WithLabelValues(protocolNames[p], strconv.Itoa(status)).Inc()
}

// countGRPC records one answered gRPC request.
func (mm *modelMetrics) countGRPC(c codes.Code) {
	if c == codes.OK && mm.ok[protoGRPC] != nil {
		mm.ok[protoGRPC].Inc()
		return
	}
	mm.requests.WithLabelValues(protocolNames[protoGRPC], c.String()).Inc()
}
