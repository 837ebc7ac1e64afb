package store

// monitorTables are migration 8's tables of package monitor: the Monitor
// documents, with a lease so that one replica evaluates each, and their
// results as a time series.
const monitorTables = `
CREATE TABLE monitors (
	name TEXT PRIMARY KEY,
	endpoint TEXT NOT NULL,
	spec TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL,
	next_run {{i64}} NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires {{i64}} NOT NULL DEFAULT 0
);
CREATE INDEX monitors_due ON monitors (next_run);
CREATE TABLE monitor_results (
	result_id TEXT PRIMARY KEY,
	monitor TEXT NOT NULL,
	evaluated_time {{i64}} NOT NULL,
	window_start {{i64}} NOT NULL,
	window_end {{i64}} NOT NULL,
	status TEXT NOT NULL,
	result TEXT NOT NULL
);
CREATE INDEX monitor_results_time ON monitor_results (monitor, evaluated_time);
`
