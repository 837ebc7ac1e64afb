package store

// pipelineTables are migration 9's tables of package pipeline.
const pipelineTables = `
CREATE TABLE pipelines (
	name TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
`
