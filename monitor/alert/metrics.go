package alert

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	transitions   *prometheus.CounterVec
	notifications *prometheus.CounterVec
	duration      *prometheus.HistogramVec
}

// alertsCollector exports kiln_alerts from the database at scrape time,
// so that every replica reports the same numbers.
type alertsCollector struct {
	e    *Engine
	desc *prometheus.Desc
}

func (c *alertsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *alertsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.e.db.R.QueryContext(ctx, `SELECT monitor, rule, severity, state, COUNT(*) FROM alert_states GROUP BY monitor, rule, severity, state`)
	if err != nil {
		c.e.log.Warn("alert metrics: count alert states", "err", err)
		return
	}
	defer rows.Close()
	type key struct{ monitor, rule, severity string }
	counts := map[key]map[string]float64{}
	for rows.Next() {
		var k key
		var state string
		var n int64
		if err := rows.Scan(&k.monitor, &k.rule, &k.severity, &state, &n); err != nil {
			return
		}
		if counts[k] == nil {
			counts[k] = map[string]float64{StatePending: 0, StateFiring: 0}
		}
		if state == StatePending || state == StateFiring {
			counts[k][state] += float64(n)
		}
	}
	for k, m := range counts {
		for state, n := range m {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, k.monitor, k.rule, k.severity, state)
		}
	}
}

func newMetrics(e *Engine, reg prometheus.Registerer) *metrics {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_alert_transitions_total", Help: "Alert state changes, by the state entered.",
		}, []string{"state"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_alert_notifications_total", Help: "Alert notification attempts, by receiver, type and outcome (success, retry, failure).",
		}, []string{"receiver", "type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_alert_notification_duration_seconds", Help: "Duration of alert notification attempts.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
	}
	if reg == nil {
		return m
	}
	coll := &alertsCollector{e: e, desc: prometheus.NewDesc("kiln_alerts",
		"Alerts by monitor, rule, severity and state (pending, firing): the number of label sets in each state.",
		[]string{"monitor", "rule", "severity", "state"}, nil)}
	m.transitions = register(reg, m.transitions).(*prometheus.CounterVec)
	m.notifications = register(reg, m.notifications).(*prometheus.CounterVec)
	m.duration = register(reg, m.duration).(*prometheus.HistogramVec)
	register(reg, coll)
	return m
}

// register registers c, or returns the collector already registered under
// its name (two engines in one process share the metrics).
func register(reg prometheus.Registerer, c prometheus.Collector) prometheus.Collector {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector
		}
	}
	return c
}
