package deploy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Manager's Prometheus metrics. Label values are bounded:
// endpoint and route names are DNS labels the operator chose (plus the
// fixed "canary", "previous" and "shadow"), codes are HTTP statuses.
type metrics struct {
	requests       *prometheus.CounterVec   // endpoint, route, code
	duration       *prometheus.HistogramVec // endpoint, route
	weight         *prometheus.GaugeVec     // endpoint, route
	shadowRequests *prometheus.CounterVec   // endpoint, outcome: ok|error|dropped
	shadowDuration *prometheus.HistogramVec // endpoint
	shadowCompared *prometheus.CounterVec   // endpoint
	shadowAgreed   *prometheus.CounterVec   // endpoint
	shadowAbsDiff  *prometheus.CounterVec   // endpoint
	shed           *prometheus.CounterVec   // endpoint
	workers        *prometheus.GaugeVec     // endpoint
	queued         *prometheus.GaugeVec     // endpoint
	inFlight       *prometheus.GaugeVec     // endpoint
	rollouts       *prometheus.CounterVec   // endpoint, result
	cacheBytes     prometheus.Gauge
	cacheModels    prometheus.Gauge
	cacheBudget    prometheus.Gauge
	cacheLoads     *prometheus.CounterVec // result: ok|error
	cacheEvictions prometheus.Counter
	loadDuration   prometheus.Histogram
}

var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_requests_total", Help: "Inference requests served by endpoint routes, by HTTP status code.",
		}, []string{"endpoint", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_endpoint_request_duration_seconds", Help: "Time to answer an inference request of an endpoint route.",
			Buckets: latencyBuckets,
		}, []string{"endpoint", "route"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kiln_endpoint_route_weight", Help: "Share of an endpoint's traffic (percent) that a live route gets.",
		}, []string{"endpoint", "route"}),
		shadowRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_shadow_requests_total", Help: "Requests mirrored to an endpoint's shadow target, by outcome (ok, error, dropped: the queue was full).",
		}, []string{"endpoint", "outcome"}),
		shadowDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_endpoint_shadow_duration_seconds", Help: "Prediction time of the shadow target.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		shadowCompared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_shadow_compared_total", Help: "Shadow answers compared with the primary answer.",
		}, []string{"endpoint"}),
		shadowAgreed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_shadow_agreed_total", Help: "Shadow answers whose first output equals the primary's (numbers within 1e-6 relative).",
		}, []string{"endpoint"}),
		shadowAbsDiff: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_shadow_abs_diff_total", Help: "Sum over compared answers of the mean absolute difference of the numeric first outputs (divide by kiln_endpoint_shadow_compared_total).",
		}, []string{"endpoint"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_shed_total", Help: "Requests refused with 429 because the endpoint's workers and queue were full, or the queue wait timed out.",
		}, []string{"endpoint"}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kiln_endpoint_workers", Help: "Current size of an endpoint's worker pool (requests predicted at once).",
		}, []string{"endpoint"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kiln_endpoint_queued_requests", Help: "Requests waiting for a worker of the endpoint.",
		}, []string{"endpoint"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kiln_endpoint_in_flight_requests", Help: "Requests being predicted by the endpoint's workers.",
		}, []string{"endpoint"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_endpoint_rollouts_total", Help: "Finished rollouts, by result (succeeded, rolled_back, failed).",
		}, []string{"endpoint", "result"}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_model_cache_bytes", Help: "Estimated memory of the loaded models (see docs/deployments.md for the estimate).",
		}),
		cacheModels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_model_cache_models", Help: "Loaded model versions (each loaded once, shared by every route that uses it).",
		}),
		cacheBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_model_cache_budget_bytes", Help: "The memory budget of the model cache.",
		}),
		cacheLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_model_cache_loads_total", Help: "Model loads, by result (ok, error).",
		}, []string{"result"}),
		cacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_model_cache_evictions_total", Help: "Models evicted from the cache (least recently used first) to keep within the memory budget.",
		}),
		loadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kiln_model_load_duration_seconds", Help: "Time to load a model (resolve, read, compile).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.weight, m.shadowRequests, m.shadowDuration,
			m.shadowCompared, m.shadowAgreed, m.shadowAbsDiff, m.shed, m.workers, m.queued, m.inFlight, m.rollouts,
			m.cacheBytes, m.cacheModels, m.cacheBudget, m.cacheLoads, m.cacheEvictions, m.loadDuration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// forget drops every series of an endpoint.
func (m *metrics) forget(endpoint string) {
	l := prometheus.Labels{"endpoint": endpoint}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.requests, m.duration, m.weight, m.shadowRequests, m.shadowDuration, m.shadowCompared,
		m.shadowAgreed, m.shadowAbsDiff, m.shed, m.workers, m.queued, m.inFlight, m.rollouts} {
		v.DeletePartialMatch(l)
	}
}

// routeMetrics are the pre-resolved series of one route, so that the hot
// path does no label lookups for the common answers.
type routeMetrics struct {
	m        *metrics
	endpoint string
	route    string
	ok       prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) forRoute(endpoint, route string) *routeMetrics {
	return &routeMetrics{
		m: m, endpoint: endpoint, route: route,
		ok:       m.requests.WithLabelValues(endpoint, route, "200"),
		duration: m.duration.WithLabelValues(endpoint, route),
	}
}

func (r *routeMetrics) observe(status int, seconds float64) {
	if status == 200 {
		r.ok.Inc()
	} else {
		r.m.requests.WithLabelValues(r.endpoint, r.route, strconv.Itoa(status)).Inc()
	}
	r.duration.Observe(seconds)
}
