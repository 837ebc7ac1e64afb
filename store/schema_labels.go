package store

// labelTables are migration 8's tables of package monitor/feedback: the
// ground truth of logged predictions, keyed by endpoint, request id and
// row of the request. A later label for the same key replaces the
// earlier one.
const labelTables = `
CREATE TABLE prediction_labels (
	endpoint TEXT NOT NULL,
	request_id TEXT NOT NULL,
	row_index {{i64}} NOT NULL DEFAULT 0,
	label TEXT NOT NULL,
	received_time {{i64}} NOT NULL,
	source TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (endpoint, request_id, row_index)
);
CREATE INDEX prediction_labels_received ON prediction_labels (endpoint, received_time);
`
