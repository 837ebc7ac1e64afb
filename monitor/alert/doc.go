// Package alert evaluates alert rules over the samples that monitors emit,
// keeps the state of every alert (one per rule and label set: inactive,
// pending, firing, resolved) and its append-only history, and notifies
// receivers — HMAC-signed webhooks, Slack incoming webhooks and
// Alertmanager-compatible webhooks — with durable, retried deliveries. A
// transition to firing also calls a Hook (the pipelines' trigger).
//
// A rule's expression is a small language over samples:
//
//	drift_share > 0.5
//	feature_drift_score{feature=~"age|income", method!="psi"} >= 0.2 and requests > 100
//	latency_p99_seconds > 0.25 or error_rate > 0.05
//
// Engine.Evaluate runs a monitor's rules against one evaluation's samples
// inside a transaction (SELECT … FOR UPDATE and an advisory lock on
// PostgreSQL), so it is idempotent for the same time and safe when several
// replicas race. See docs/alerts.md.
package alert
