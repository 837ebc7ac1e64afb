package store

// predictionLogTables are migration 8's tables of package monitor/predlog:
// one row per prediction-log segment shipped to the artifact store as
// Parquet, with its mergeable summary (sketches) for monitors.
const predictionLogTables = `
CREATE TABLE prediction_segments (
	segment_id TEXT PRIMARY KEY,
	endpoint TEXT NOT NULL,
	replica TEXT NOT NULL,
	start_time {{i64}} NOT NULL,
	end_time {{i64}} NOT NULL,
	requests {{i64}} NOT NULL,
	rows {{i64}} NOT NULL,
	size_bytes {{i64}} NOT NULL,
	object_key TEXT NOT NULL,
	summary TEXT NOT NULL,
	creation_time {{i64}} NOT NULL
);
CREATE INDEX prediction_segments_endpoint_time ON prediction_segments (endpoint, end_time);
`
