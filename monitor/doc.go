// Package monitor watches deployed endpoints: Monitor documents (kind:
// Monitor) name an endpoint, a reference, a window, a schedule and checks;
// the Service evaluates them on their schedule — data and prediction drift
// from the prediction log's mergeable summaries (monitor/predlog,
// monitor/drift), performance from late ground truth (monitor/feedback),
// latency, errors and traffic — stores each result as a time series,
// exports Prometheus gauges, and feeds alert rules (monitor/alert) whose
// notifications reach webhooks and can trigger pipelines.
package monitor
