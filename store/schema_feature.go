package store

// featureTables are migration 13's tables of package feature.
//
// feature_definitions keeps every version of every Entity and FeatureView
// document (the JSON in spec); a new version is written only when the
// document changes, and deleted marks a tombstone version.
// feature_materializations records each materialization of a view into the
// online store: the event-time interval it covered, so an incremental run
// starts where the last successful one ended (start_time is the smallest
// int64 for "from the beginning"); source names what was read ("stats@3"
// or a path).
// feature_online is the embedded online store: the latest row per view and
// entity key (value is the encoded feature values).
const featureTables = `
CREATE TABLE feature_definitions (
	kind TEXT NOT NULL,
	name TEXT NOT NULL,
	version {{i64}} NOT NULL,
	spec TEXT NOT NULL,
	digest TEXT NOT NULL,
	deleted {{bool}} NOT NULL DEFAULT FALSE,
	created_at {{i64}} NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (kind, name, version)
);
CREATE TABLE feature_materializations (
	id {{id}},
	view TEXT NOT NULL,
	view_version {{i64}} NOT NULL,
	store TEXT NOT NULL,
	start_time {{i64}} NOT NULL,
	end_time {{i64}} NOT NULL,
	state TEXT NOT NULL,
	source TEXT NOT NULL DEFAULT '',
	rows_read {{i64}} NOT NULL DEFAULT 0,
	keys_written {{i64}} NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	started_at {{i64}} NOT NULL,
	finished_at {{i64}} NOT NULL DEFAULT 0
);
CREATE INDEX feature_materializations_view ON feature_materializations (view, store, state, end_time);
CREATE TABLE feature_online (
	view TEXT NOT NULL,
	entity_key TEXT NOT NULL,
	event_time {{i64}} NOT NULL,
	created_time {{i64}} NOT NULL,
	value {{blob}} NOT NULL,
	PRIMARY KEY (view, entity_key)
);
`
