package pipeline

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the kiln_pipeline_* series.
type metrics struct {
	runs      *prometheus.CounterVec
	steps     *prometheus.CounterVec
	duration  prometheus.Histogram
	queueWait prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_pipeline_runs_total",
			Help: "Pipeline runs that ended, by state (succeeded, failed, cancelled)."}, []string{"state"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_pipeline_steps_total",
			Help: "Pipeline steps that ended, by state (succeeded, failed, cached, skipped, upstream_failed, cancelled)."}, []string{"state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kiln_pipeline_step_duration_seconds",
			Help: "Time a step attempt ran on its executor.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kiln_pipeline_queue_wait_seconds",
			Help: "Time from a step becoming ready to a server starting it.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	if reg == nil {
		return m, nil
	}
	register := func(c prometheus.Collector) (prometheus.Collector, error) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return are.ExistingCollector, nil
			}
			return nil, err
		}
		return c, nil
	}
	c, err := register(m.runs)
	if err != nil {
		return nil, err
	}
	m.runs = c.(*prometheus.CounterVec)
	if c, err = register(m.steps); err != nil {
		return nil, err
	}
	m.steps = c.(*prometheus.CounterVec)
	if c, err = register(m.duration); err != nil {
		return nil, err
	}
	m.duration = c.(prometheus.Histogram)
	if c, err = register(m.queueWait); err != nil {
		return nil, err
	}
	m.queueWait = c.(prometheus.Histogram)
	return m, nil
}
