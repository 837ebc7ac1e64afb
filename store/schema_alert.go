package store

// alertTables are migration 8's tables of package monitor/alert: alert
// receivers (webhooks), the state of each alert (one per rule and label
// set), the append-only history of state changes, and the delivery
// attempts of notifications.
const alertTables = `
CREATE TABLE alert_receivers (
	name TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE TABLE alert_states (
	monitor TEXT NOT NULL,
	rule TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	labels TEXT NOT NULL,
	state TEXT NOT NULL,
	value {{f64}},
	active_since {{i64}} NOT NULL DEFAULT 0,
	fired_time {{i64}} NOT NULL DEFAULT 0,
	resolved_time {{i64}} NOT NULL DEFAULT 0,
	last_eval_time {{i64}} NOT NULL,
	PRIMARY KEY (monitor, rule, fingerprint)
);
CREATE TABLE alert_events (
	event_id TEXT PRIMARY KEY,
	monitor TEXT NOT NULL,
	rule TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	state TEXT NOT NULL,
	value {{f64}},
	time {{i64}} NOT NULL,
	detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_time ON alert_events (monitor, time);
CREATE TABLE alert_notifications (
	notification_id TEXT PRIMARY KEY,
	event_id TEXT NOT NULL,
	receiver TEXT NOT NULL,
	attempts {{i64}} NOT NULL,
	status TEXT NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	time {{i64}} NOT NULL
);
CREATE INDEX alert_notifications_event ON alert_notifications (event_id);
`
