package store

// triggerTables are migration 9's tables of package pipeline/trigger.
//
// pipeline_trigger_state holds one row per schedule or trigger of every
// pipeline (reconciled with the pipelines' specs by every server):
// config is what the row's timing depends on (a schedule's cron and time
// zone, a trigger's dataset or model), so that a change resets it;
// next_fire is a schedule's next due tick (0: suspended or never) or when
// a dataset or model trigger is polled next; cursor_pos is the newest
// dataset or model version already seen. A server evaluates a row only
// under a lease (lease_owner until lease_expires, unix ms), so one server
// at a time does; a lease that lapses is taken over.
const triggerTables = `
CREATE TABLE pipeline_trigger_state (
	pipeline TEXT NOT NULL,
	type TEXT NOT NULL,
	name TEXT NOT NULL,
	config TEXT NOT NULL DEFAULT '',
	first_seen {{i64}} NOT NULL,
	next_fire {{i64}} NOT NULL DEFAULT 0,
	last_fire {{i64}} NOT NULL DEFAULT 0,
	last_run_id TEXT NOT NULL DEFAULT '',
	cursor_pos TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires {{i64}} NOT NULL DEFAULT 0,
	PRIMARY KEY (pipeline, type, name)
);
CREATE INDEX pipeline_trigger_state_due ON pipeline_trigger_state (next_fire);
`
