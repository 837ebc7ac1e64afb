package store

// alertTables are migration 8's tables of package monitor/alert: alert
// receivers (webhooks), the state of each alert (one per monitor, rule and
// label set), the append-only history of state changes, the durable queue
// of notifications (one per event and receiver, or the hook) and the
// outcome of each delivery attempt.
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
	annotations TEXT NOT NULL DEFAULT '{}',
	severity TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	value {{f64}},
	active_since {{i64}} NOT NULL DEFAULT 0,
	fired_time {{i64}} NOT NULL DEFAULT 0,
	resolved_time {{i64}} NOT NULL DEFAULT 0,
	last_eval_time {{i64}} NOT NULL,
	PRIMARY KEY (monitor, rule, fingerprint)
);
CREATE INDEX alert_states_state ON alert_states (state, monitor);
CREATE TABLE alert_events (
	event_id TEXT PRIMARY KEY,
	monitor TEXT NOT NULL,
	rule TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	labels TEXT NOT NULL DEFAULT '{}',
	from_state TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	value {{f64}},
	time {{i64}} NOT NULL,
	detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_time ON alert_events (monitor, time);
CREATE INDEX alert_events_rule ON alert_events (monitor, rule, time);
CREATE INDEX alert_events_all ON alert_events (time);
CREATE TABLE alert_notifications (
	notification_id TEXT PRIMARY KEY,
	event_id TEXT NOT NULL,
	receiver TEXT NOT NULL,
	type TEXT NOT NULL,
	series TEXT NOT NULL,
	payload TEXT NOT NULL,
	attempts {{i64}} NOT NULL DEFAULT 0,
	max_attempts {{i64}} NOT NULL,
	status TEXT NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	time {{i64}} NOT NULL,
	next_time {{i64}} NOT NULL,
	last_time {{i64}} NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires {{i64}} NOT NULL DEFAULT 0
);
CREATE INDEX alert_notifications_event ON alert_notifications (event_id);
CREATE INDEX alert_notifications_due ON alert_notifications (status, next_time);
CREATE INDEX alert_notifications_series ON alert_notifications (receiver, series, status, notification_id);
CREATE TABLE alert_notification_attempts (
	notification_id TEXT NOT NULL,
	attempt {{i64}} NOT NULL,
	time {{i64}} NOT NULL,
	status_code {{i64}} NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	duration_ms {{f64}} NOT NULL DEFAULT 0,
	PRIMARY KEY (notification_id, attempt)
);
`

// alertTriggersSQLite and alertTriggersPostgres keep alert_events
// append-only: no delete, and no update of anything but detail (where the
// hook's outcome is recorded once it has run).
const alertTriggersSQLite = `
CREATE TRIGGER alert_events_no_delete BEFORE DELETE ON alert_events BEGIN SELECT RAISE(ABORT, 'alert events are append-only'); END;
CREATE TRIGGER alert_events_immutable BEFORE UPDATE ON alert_events WHEN OLD.event_id IS NOT NEW.event_id OR OLD.monitor IS NOT NEW.monitor OR OLD.rule IS NOT NEW.rule OR OLD.fingerprint IS NOT NEW.fingerprint OR OLD.labels IS NOT NEW.labels OR OLD.from_state IS NOT NEW.from_state OR OLD.state IS NOT NEW.state OR OLD.value IS NOT NEW.value OR OLD.time IS NOT NEW.time BEGIN SELECT RAISE(ABORT, 'alert events are append-only'); END;
`

const alertTriggersPostgres = `
CREATE FUNCTION alert_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'alert events are append-only' USING ERRCODE = 'restrict_violation'; END $$;
CREATE TRIGGER alert_events_no_delete BEFORE DELETE ON alert_events FOR EACH ROW EXECUTE FUNCTION alert_events_append_only();
CREATE TRIGGER alert_events_immutable BEFORE UPDATE ON alert_events FOR EACH ROW WHEN ((OLD.event_id, OLD.monitor, OLD.rule, OLD.fingerprint, OLD.labels, OLD.from_state, OLD.state, OLD.value, OLD.time) IS DISTINCT FROM (NEW.event_id, NEW.monitor, NEW.rule, NEW.fingerprint, NEW.labels, NEW.from_state, NEW.state, NEW.value, NEW.time)) EXECUTE FUNCTION alert_events_append_only();
`
