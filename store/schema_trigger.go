package store

// triggerTables are migration 9's tables of package pipeline/trigger.
const triggerTables = `
CREATE TABLE pipeline_trigger_state (
	pipeline TEXT NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (pipeline, name)
);
`
