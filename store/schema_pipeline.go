package store

// pipelineTables are migration 9's tables of package pipeline.
//
// pipeline_runs.dedup_key is NULL for a run without one (NULLs never
// collide in a UNIQUE constraint on either dialect), so that a schedule
// tick or a trigger event starts one run across servers.
//
// pipeline_steps rows are leased: a server runs an attempt only after an
// UPDATE that set lease_owner and bumped lease_gen succeeded, and every
// later write of that attempt names the lease_gen it got.
//
// pipeline_logs holds an attempt's output in chunks (bounded per attempt
// by the engine); pipeline_cache maps a step's cache key to the outputs a
// run produced, newest first.
const pipelineTables = `
CREATE TABLE pipelines (
	name TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE TABLE pipeline_runs (
	run_id TEXT PRIMARY KEY,
	pipeline TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	state TEXT NOT NULL,
	spec TEXT NOT NULL,
	parameters TEXT NOT NULL,
	resolved TEXT NOT NULL DEFAULT '{}',
	no_cache {{bool}} NOT NULL DEFAULT FALSE,
	cause TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	resumed_from TEXT NOT NULL DEFAULT '',
	dedup_key TEXT,
	tracking_run_id TEXT NOT NULL DEFAULT '',
	experiment_id TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	start_time {{i64}} NOT NULL DEFAULT 0,
	end_time {{i64}} NOT NULL DEFAULT 0,
	UNIQUE (pipeline, dedup_key)
);
CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline, run_id);
CREATE INDEX pipeline_runs_state ON pipeline_runs (state, run_id);
CREATE TABLE pipeline_steps (
	step_id {{id}},
	run_id TEXT NOT NULL REFERENCES pipeline_runs(run_id) ON DELETE CASCADE,
	step TEXT NOT NULL,
	position {{i64}} NOT NULL,
	state TEXT NOT NULL,
	claim_state TEXT NOT NULL DEFAULT '',
	attempt {{i64}} NOT NULL DEFAULT 0,
	failures {{i64}} NOT NULL DEFAULT 0,
	takeovers {{i64}} NOT NULL DEFAULT 0,
	parallelism {{i64}} NOT NULL DEFAULT 0,
	cache_key TEXT NOT NULL DEFAULT '',
	cached_from TEXT NOT NULL DEFAULT '',
	tracking_run_id TEXT NOT NULL DEFAULT '',
	outputs TEXT NOT NULL DEFAULT '{}',
	exit_code {{i64}} NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	executor TEXT NOT NULL DEFAULT '',
	handle TEXT NOT NULL DEFAULT '',
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires {{i64}} NOT NULL DEFAULT 0,
	lease_gen {{i64}} NOT NULL DEFAULT 0,
	ready_time {{i64}} NOT NULL DEFAULT 0,
	start_time {{i64}} NOT NULL DEFAULT 0,
	end_time {{i64}} NOT NULL DEFAULT 0,
	next_attempt_time {{i64}} NOT NULL DEFAULT 0,
	UNIQUE (run_id, step)
);
CREATE INDEX pipeline_steps_queue ON pipeline_steps (state, next_attempt_time);
CREATE INDEX pipeline_steps_lease ON pipeline_steps (state, lease_expires);
CREATE TABLE pipeline_logs (
	run_id TEXT NOT NULL,
	step TEXT NOT NULL,
	attempt {{i64}} NOT NULL,
	seq {{i64}} NOT NULL,
	time {{i64}} NOT NULL,
	data {{blob}} NOT NULL,
	PRIMARY KEY (run_id, step, attempt, seq)
);
CREATE TABLE pipeline_cache (
	pipeline TEXT NOT NULL,
	cache_key TEXT NOT NULL,
	run_id TEXT NOT NULL,
	step TEXT NOT NULL,
	outputs TEXT NOT NULL,
	creation_time {{i64}} NOT NULL,
	PRIMARY KEY (pipeline, cache_key, run_id, step)
);
CREATE INDEX pipeline_cache_newest ON pipeline_cache (pipeline, cache_key, creation_time);
`
