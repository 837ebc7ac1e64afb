package monitor

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the kiln_monitor_* series, set from each monitor's latest
// result. Per-feature series of features a result no longer has, and
// every series of a deleted monitor, are deleted.
type metrics struct {
	featureScore    *prometheus.GaugeVec
	featureDetected *prometheus.GaugeVec
	driftShare      *prometheus.GaugeVec
	driftDetected   *prometheus.GaugeVec
	predictionScore *prometheus.GaugeVec
	outlierShare    *prometheus.GaugeVec
	quality         *prometheus.GaugeVec
	evaluations     *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	last            *prometheus.GaugeVec

	mu     sync.Mutex
	series map[string][]seriesRef // monitor → per-feature series set last
}

type seriesRef struct {
	vec    *prometheus.GaugeVec
	labels prometheus.Labels
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		featureScore:    g("kiln_monitor_feature_drift_score", "Drift score of a feature in the monitor's latest result (p-value or distance, per method).", "monitor", "endpoint", "feature", "method"),
		featureDetected: g("kiln_monitor_feature_drift_detected", "1 when the feature drifted in the monitor's latest result.", "monitor", "endpoint", "feature"),
		driftShare:      g("kiln_monitor_dataset_drift_share", "Share of drifted features in the monitor's latest result.", "monitor", "endpoint"),
		driftDetected:   g("kiln_monitor_dataset_drift_detected", "1 when the share of drifted features reached the monitor's drift_share.", "monitor", "endpoint"),
		predictionScore: g("kiln_monitor_prediction_drift_score", "Drift score of a model output in the monitor's latest result.", "monitor", "endpoint", "output", "method"),
		outlierShare:    g("kiln_monitor_outlier_share", "Share of the window's rows with an input outside the reference bounds (feature \"\" for any input).", "monitor", "endpoint", "feature"),
		quality:         g("kiln_monitor_quality", "Quality metric of the window's labelled predictions.", "monitor", "endpoint", "metric"),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_monitor_evaluations_total",
			Help: "Monitor evaluations by resulting status (ok, drift, no_data, error)."}, []string{"monitor", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kiln_monitor_evaluation_duration_seconds",
			Help: "Time one monitor evaluation took.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 8)}, []string{"monitor"}),
		last:   g("kiln_monitor_last_evaluation_timestamp_seconds", "Unix time of the monitor's latest evaluation.", "monitor", "endpoint"),
		series: map[string][]seriesRef{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.featureScore, m.featureDetected, m.driftShare, m.driftDetected, m.predictionScore,
			m.outlierShare, m.quality, m.evaluations, m.duration, m.last} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe sets the gauges from a new result.
func (m *metrics) observe(r *Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evaluations.WithLabelValues(r.Monitor, r.Status).Inc()
	m.duration.WithLabelValues(r.Monitor).Observe(r.DurationSeconds)
	m.last.WithLabelValues(r.Monitor, r.Endpoint).Set(float64(r.Time.UnixNano()) / 1e9)
	if r.Status == StatusNoData || r.Status == StatusError {
		// Keep the last known values: a quiet window says nothing new.
		return
	}
	var set []seriesRef
	put := func(vec *prometheus.GaugeVec, v float64, kv ...string) {
		l := prometheus.Labels{"monitor": r.Monitor, "endpoint": r.Endpoint}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		vec.With(l).Set(v)
		set = append(set, seriesRef{vec, l})
	}
	if d := r.Drift; d != nil {
		put(m.driftShare, d.Share)
		put(m.driftDetected, b2f(d.DatasetDrift))
		for _, f := range d.Features {
			if f.Error != "" {
				continue
			}
			put(m.featureScore, finite(f.Score), "feature", f.Name, "method", string(f.Method))
			put(m.featureDetected, b2f(f.Drift), "feature", f.Name)
		}
	}
	if d := r.PredictionDrift; d != nil {
		for _, f := range d.Features {
			if f.Error == "" {
				put(m.predictionScore, finite(f.Score), "output", f.Name, "method", string(f.Method))
			}
		}
	}
	if o := r.Outliers; o != nil {
		put(m.outlierShare, o.Share, "feature", "")
		for f, fo := range o.Features {
			put(m.outlierShare, fo.Share, "feature", f)
		}
	}
	if p := r.Performance; p != nil {
		for k, v := range p.Metrics {
			put(m.quality, finite(v), "metric", k)
		}
	}
	keep := map[*prometheus.GaugeVec]map[string]bool{}
	for _, s := range set {
		if keep[s.vec] == nil {
			keep[s.vec] = map[string]bool{}
		}
		keep[s.vec][labelKey(s.labels)] = true
	}
	for _, s := range m.series[r.Monitor] {
		if !keep[s.vec][labelKey(s.labels)] {
			s.vec.Delete(s.labels)
		}
	}
	m.series[r.Monitor] = set
}

// delete removes every series of a monitor.
func (m *metrics) delete(monitor string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.series, monitor)
	l := prometheus.Labels{"monitor": monitor}
	for _, v := range []*prometheus.GaugeVec{m.featureScore, m.featureDetected, m.driftShare, m.driftDetected, m.predictionScore, m.outlierShare, m.quality, m.last} {
		v.DeletePartialMatch(l)
	}
	m.evaluations.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
}

func labelKey(l prometheus.Labels) string {
	keys := sortedKeys(l)
	s := ""
	for _, k := range keys {
		s += k + "\x00" + l[k] + "\x00"
	}
	return s
}
