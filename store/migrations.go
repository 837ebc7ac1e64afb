package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// A migration is one step of the schema. The list is append-only: a
// migration that has shipped is never edited; changes go in a new one.
// SQL holds the statements for both dialects; where they differ, SQLiteSQL
// or PostgresSQL override it. Each migration runs in one transaction and is
// recorded in schema_migrations.
type migration struct {
	Version     int
	Name        string
	SQL         string
	SQLiteSQL   string
	PostgresSQL string
}

func (m migration) sqlFor(d Dialect) string {
	switch {
	case d == SQLite && m.SQLiteSQL != "":
		return m.SQLiteSQL
	case d == Postgres && m.PostgresSQL != "":
		return m.PostgresSQL
	}
	return m.SQL
}

// Column types are written with placeholders that expand per dialect:
//
//	{{id}}     auto-increment integer primary key
//	{{i64}}    64-bit integer
//	{{f64}}    double precision float
//	{{bool}}   boolean
//	{{blob}}   bytes
var typeNames = map[Dialect]*strings.Replacer{
	SQLite: strings.NewReplacer(
		"{{id}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{i64}}", "INTEGER", "{{f64}}", "REAL", "{{bool}}", "INTEGER", "{{blob}}", "BLOB"),
	Postgres: strings.NewReplacer(
		"{{id}}", "BIGSERIAL PRIMARY KEY",
		"{{i64}}", "BIGINT", "{{f64}}", "DOUBLE PRECISION", "{{bool}}", "BOOLEAN", "{{blob}}", "BYTEA"),
}

var migrations = []migration{
	{Version: 1, Name: "tracking", SQL: `
CREATE TABLE experiments (
	experiment_id {{id}},
	name TEXT NOT NULL UNIQUE,
	artifact_location TEXT NOT NULL DEFAULT '',
	lifecycle_stage TEXT NOT NULL DEFAULT 'active',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE TABLE experiment_tags (
	experiment_id {{i64}} NOT NULL REFERENCES experiments(experiment_id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
	run_uuid TEXT PRIMARY KEY,
	experiment_id {{i64}} NOT NULL REFERENCES experiments(experiment_id),
	name TEXT NOT NULL DEFAULT '',
	user_id TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	start_time {{i64}} NOT NULL,
	end_time {{i64}},
	lifecycle_stage TEXT NOT NULL DEFAULT 'active',
	artifact_uri TEXT NOT NULL DEFAULT '',
	deleted_time {{i64}}
);
CREATE INDEX runs_experiment_start ON runs (experiment_id, lifecycle_stage, start_time DESC, run_uuid);
-- Metric history: each row holds, packed, the values of one run's key
-- over a range of steps (see tracking/metrics.go).
CREATE TABLE metric_chunks (
	id {{id}},
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	key TEXT NOT NULL,
	min_step {{i64}} NOT NULL,
	max_step {{i64}} NOT NULL,
	n {{i64}} NOT NULL,
	payload {{blob}} NOT NULL
);
CREATE INDEX metric_chunks_run_key ON metric_chunks (run_uuid, key, id);
-- New metric values land here first, one packed row per log-batch in
-- arrival order; the server's compaction moves them into metric_chunks
-- every second. Readers see both.
CREATE TABLE metrics_recent (
	id {{id}},
	run_uuid TEXT NOT NULL,
	payload {{blob}} NOT NULL
);
CREATE INDEX metrics_recent_run ON metrics_recent (run_uuid, id);
CREATE TABLE latest_metrics (
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value {{f64}} NOT NULL,
	is_nan {{bool}} NOT NULL DEFAULT FALSE,
	timestamp {{i64}} NOT NULL,
	step {{i64}} NOT NULL DEFAULT 0,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX latest_metrics_key_value ON latest_metrics (key, value);
CREATE TABLE params (
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX params_key_value ON params (key, value);
CREATE TABLE tags (
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX tags_key_value ON tags (key, value);
CREATE TABLE datasets (
	dataset_uuid TEXT PRIMARY KEY,
	experiment_id {{i64}} NOT NULL REFERENCES experiments(experiment_id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	digest TEXT NOT NULL,
	source_type TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	schema TEXT,
	profile TEXT,
	UNIQUE (experiment_id, name, digest)
);
CREATE TABLE run_inputs (
	input_uuid TEXT PRIMARY KEY,
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	dataset_uuid TEXT NOT NULL REFERENCES datasets(dataset_uuid) ON DELETE CASCADE,
	UNIQUE (run_uuid, dataset_uuid)
);
CREATE TABLE input_tags (
	input_uuid TEXT NOT NULL REFERENCES run_inputs(input_uuid) ON DELETE CASCADE,
	name TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (input_uuid, name)
);
CREATE TABLE logged_models (
	model_id TEXT PRIMARY KEY,
	experiment_id {{i64}} NOT NULL REFERENCES experiments(experiment_id),
	name TEXT NOT NULL,
	artifact_location TEXT NOT NULL,
	creation_timestamp_ms {{i64}} NOT NULL,
	last_updated_timestamp_ms {{i64}} NOT NULL,
	status TEXT NOT NULL,
	lifecycle_stage TEXT NOT NULL DEFAULT 'active',
	model_type TEXT NOT NULL DEFAULT '',
	source_run_id TEXT NOT NULL DEFAULT '',
	status_message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_timestamp_ms);
CREATE TABLE logged_model_tags (
	model_id TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_params (
	model_id TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_metrics (
	model_id TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value {{f64}} NOT NULL,
	is_nan {{bool}} NOT NULL DEFAULT FALSE,
	timestamp {{i64}} NOT NULL,
	step {{i64}} NOT NULL DEFAULT 0,
	run_uuid TEXT NOT NULL DEFAULT '',
	dataset_name TEXT,
	dataset_digest TEXT
);
CREATE INDEX logged_model_metrics_model ON logged_model_metrics (model_id, key);
CREATE TABLE run_model_links (
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	model_id TEXT NOT NULL,
	direction TEXT NOT NULL,
	step {{i64}} NOT NULL DEFAULT 0,
	PRIMARY KEY (run_uuid, model_id, direction)
);
`},
	{Version: 2, Name: "registry", SQL: `
CREATE TABLE registered_models (
	name TEXT PRIMARY KEY,
	creation_time {{i64}} NOT NULL,
	last_updated_time {{i64}} NOT NULL,
	description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE registered_model_tags (
	name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE ON UPDATE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (name, key)
);
CREATE TABLE model_versions (
	name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE ON UPDATE CASCADE,
	version {{i64}} NOT NULL,
	creation_time {{i64}} NOT NULL,
	last_updated_time {{i64}} NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	user_id TEXT NOT NULL DEFAULT '',
	current_stage TEXT NOT NULL DEFAULT 'None',
	source TEXT NOT NULL DEFAULT '',
	storage_location TEXT NOT NULL DEFAULT '',
	run_id TEXT NOT NULL DEFAULT '',
	run_link TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'READY',
	status_message TEXT NOT NULL DEFAULT '',
	model_id TEXT NOT NULL DEFAULT '',
	deleted {{bool}} NOT NULL DEFAULT FALSE,
	PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
	name TEXT NOT NULL,
	version {{i64}} NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (name, version, key),
	FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE registered_model_aliases (
	name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE ON UPDATE CASCADE,
	alias TEXT NOT NULL,
	version {{i64}} NOT NULL,
	PRIMARY KEY (name, alias)
);
`},
	{Version: 3, Name: "datasets", SQL: `
-- Versioned datasets (package dataset). Not MLflow's run-input datasets
-- table above: these are named, numbered, content-addressed versions.
CREATE TABLE data_datasets (
	dataset_id {{id}},
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE TABLE data_dataset_tags (
	dataset_id {{i64}} NOT NULL REFERENCES data_datasets(dataset_id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (dataset_id, key)
);
CREATE TABLE data_versions (
	dataset_id {{i64}} NOT NULL REFERENCES data_datasets(dataset_id) ON DELETE CASCADE,
	version {{i64}} NOT NULL,
	digest TEXT NOT NULL,
	kind TEXT NOT NULL,
	file_count {{i64}} NOT NULL,
	total_size {{i64}} NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL,
	parent_dataset_id {{i64}},
	parent_version {{i64}},
	split_spec TEXT,
	table_schema TEXT,
	profile TEXT,
	PRIMARY KEY (dataset_id, version),
	FOREIGN KEY (parent_dataset_id, parent_version) REFERENCES data_versions(dataset_id, version)
);
CREATE INDEX data_versions_digest ON data_versions (digest);
CREATE INDEX data_versions_parent ON data_versions (parent_dataset_id, parent_version);
CREATE TABLE data_version_tags (
	dataset_id {{i64}} NOT NULL,
	version {{i64}} NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (dataset_id, version, key),
	FOREIGN KEY (dataset_id, version) REFERENCES data_versions(dataset_id, version) ON DELETE CASCADE
);
CREATE TABLE data_validations (
	validation_id {{id}},
	dataset_id {{i64}} NOT NULL,
	version {{i64}} NOT NULL,
	suite TEXT NOT NULL,
	passed {{bool}} NOT NULL,
	report TEXT NOT NULL,
	creation_time {{i64}} NOT NULL,
	FOREIGN KEY (dataset_id, version) REFERENCES data_versions(dataset_id, version) ON DELETE CASCADE
);
CREATE INDEX data_validations_version ON data_validations (dataset_id, version, validation_id);
CREATE TABLE data_run_links (
	dataset_id {{i64}} NOT NULL,
	version {{i64}} NOT NULL,
	run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
	mlflow_name TEXT NOT NULL DEFAULT '',
	mlflow_digest TEXT NOT NULL DEFAULT '',
	mlflow_source TEXT NOT NULL DEFAULT '',
	context TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	PRIMARY KEY (dataset_id, version, run_uuid),
	FOREIGN KEY (dataset_id, version) REFERENCES data_versions(dataset_id, version) ON DELETE CASCADE
);
CREATE INDEX data_run_links_run ON data_run_links (run_uuid);
CREATE TABLE data_model_links (
	dataset_id {{i64}} NOT NULL,
	version {{i64}} NOT NULL,
	model_name TEXT NOT NULL,
	model_version {{i64}} NOT NULL,
	creation_time {{i64}} NOT NULL,
	PRIMARY KEY (dataset_id, version, model_name, model_version),
	FOREIGN KEY (dataset_id, version) REFERENCES data_versions(dataset_id, version) ON DELETE CASCADE,
	FOREIGN KEY (model_name, model_version) REFERENCES model_versions(name, version) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX data_model_links_model ON data_model_links (model_name, model_version);
`},
	// Dataset versions are immutable: the database refuses any update of
	// their content columns (only description, tags, schema and profile
	// change).
	{Version: 4, Name: "dataset version immutability",
		SQLiteSQL: `
CREATE TRIGGER data_versions_immutable BEFORE UPDATE OF dataset_id, version, digest, kind, file_count, total_size, source, created_by, creation_time, parent_dataset_id, parent_version, split_spec ON data_versions BEGIN SELECT RAISE(ABORT, 'dataset versions are immutable'); END;
`,
		PostgresSQL: `
CREATE FUNCTION data_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'dataset versions are immutable' USING ERRCODE = 'restrict_violation'; END $$;
CREATE TRIGGER data_versions_immutable BEFORE UPDATE OF dataset_id, version, digest, kind, file_count, total_size, source, created_by, creation_time, parent_dataset_id, parent_version, split_spec ON data_versions FOR EACH ROW EXECUTE FUNCTION data_versions_immutable();
`},
	// Endpoints (package deploy): the desired document and observed status
	// of each endpoint, with a lease that lets one replica drive its
	// rollout, and their events, append-only (who, when, why, what).
	{Version: 5, Name: "endpoints",
		SQL: endpointTables + `
CREATE TRIGGER endpoint_events_no_update BEFORE UPDATE ON endpoint_events BEGIN SELECT RAISE(ABORT, 'endpoint events are append-only'); END;
CREATE TRIGGER endpoint_events_no_delete BEFORE DELETE ON endpoint_events BEGIN SELECT RAISE(ABORT, 'endpoint events are append-only'); END;
`,
		PostgresSQL: endpointTables + `
CREATE FUNCTION endpoint_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'endpoint events are append-only' USING ERRCODE = 'restrict_violation'; END $$;
CREATE TRIGGER endpoint_events_append_only BEFORE UPDATE OR DELETE ON endpoint_events FOR EACH ROW EXECUTE FUNCTION endpoint_events_append_only();
`},
	// Promotion gates (package deploy/gate): policies, and the results of
	// their evaluations, immutable: an update that changes any column but
	// model_name fails (a registered model's rename still follows into
	// model_name).
	{Version: 6, Name: "promotion gates",
		SQLiteSQL: gateTables + `
CREATE TRIGGER gate_results_immutable BEFORE UPDATE ON gate_results WHEN OLD.result_id IS NOT NEW.result_id OR OLD.policy_name IS NOT NEW.policy_name OR OLD.policy_digest IS NOT NEW.policy_digest OR OLD.model_version IS NOT NEW.model_version OR OLD.passed IS NOT NEW.passed OR OLD.baseline_version IS NOT NEW.baseline_version OR OLD.data_ref IS NOT NEW.data_ref OR OLD.data_digest IS NOT NEW.data_digest OR OLD.actor IS NOT NEW.actor OR OLD.creation_time IS NOT NEW.creation_time OR OLD.report IS NOT NEW.report BEGIN SELECT RAISE(ABORT, 'gate results are immutable'); END;
`,
		PostgresSQL: gateTables + `
CREATE FUNCTION gate_results_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'gate results are immutable' USING ERRCODE = 'restrict_violation'; END $$;
CREATE TRIGGER gate_results_immutable BEFORE UPDATE ON gate_results FOR EACH ROW WHEN ((OLD.result_id, OLD.policy_name, OLD.policy_digest, OLD.model_version, OLD.passed, OLD.baseline_version, OLD.data_ref, OLD.data_digest, OLD.actor, OLD.creation_time, OLD.report) IS DISTINCT FROM (NEW.result_id, NEW.policy_name, NEW.policy_digest, NEW.model_version, NEW.passed, NEW.baseline_version, NEW.data_ref, NEW.data_digest, NEW.actor, NEW.creation_time, NEW.report)) EXECUTE FUNCTION gate_results_immutable();
`},
	// Batch-scoring jobs (package score): the request, the state and
	// progress, and a lease that lets one replica run each job.
	{Version: 7, Name: "score jobs", SQL: scoreJobTables},
	// Monitoring (package monitor and its subpackages): the prediction
	// log's shipped segments, ground-truth labels, monitors and their
	// results, alert receivers, alert states and their history.
	{Version: 8, Name: "monitoring",
		SQLiteSQL:   predictionLogTables + labelTables + monitorTables + alertTables + alertTriggersSQLite,
		PostgresSQL: predictionLogTables + labelTables + monitorTables + alertTables + alertTriggersPostgres},
	// Pipelines (package pipeline and pipeline/trigger): the documents,
	// runs and their steps with leases, step logs, the step cache, and the
	// schedules' and triggers' state.
	{Version: 9, Name: "pipelines", SQL: pipelineTables + triggerTables},
	// Access control and audit (package access): users and service
	// accounts, API tokens, workspaces and role grants, UI sessions, and
	// the hash-chained audit log.
	{Version: 10, Name: "access",
		SQLiteSQL:   accessTables + auditImmutableSQLite,
		PostgresSQL: accessTables + auditImmutablePostgres},
	// Approvals (package approval): policies, requests and their votes.
	{Version: 11, Name: "approvals", SQL: approvalTables},
	// Workspaces as namespaces (package access): which workspace owns an
	// experiment, registered model or endpoint created outside "default".
	{Version: 12, Name: "workspace resources",
		SQLiteSQL: workspaceResourceTables, PostgresSQL: workspaceResourceTables},
	// Feature store (package feature): definitions, materializations and
	// the embedded online store.
	{Version: 13, Name: "feature store", SQL: featureTables},
	// OIDC users by the provider's subject (package access).
	{Version: 14, Name: "oidc subjects", SQL: oidcSubjectTables},
}

// scoreJobTables are the tables of migration 7.
const scoreJobTables = `
CREATE TABLE score_jobs (
	job_id TEXT PRIMARY KEY,
	model_uri TEXT NOT NULL,
	input TEXT NOT NULL,
	output TEXT NOT NULL,
	options TEXT NOT NULL DEFAULT '{}',
	state TEXT NOT NULL,
	rows_done {{i64}} NOT NULL DEFAULT 0,
	rows_total {{i64}} NOT NULL DEFAULT -1,
	error TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	start_time {{i64}} NOT NULL DEFAULT 0,
	end_time {{i64}} NOT NULL DEFAULT 0,
	attempts {{i64}} NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires {{i64}} NOT NULL DEFAULT 0
);
CREATE INDEX score_jobs_pending ON score_jobs (state, lease_expires, job_id);
`

// gateTables are the tables of migration 6.
const gateTables = `
CREATE TABLE gate_policies (
	name TEXT PRIMARY KEY,
	model_name TEXT NOT NULL,
	spec TEXT NOT NULL,
	digest TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE INDEX gate_policies_model ON gate_policies (model_name);
CREATE TABLE gate_results (
	result_id TEXT PRIMARY KEY,
	policy_name TEXT NOT NULL,
	policy_digest TEXT NOT NULL,
	model_name TEXT NOT NULL,
	model_version {{i64}} NOT NULL,
	passed {{bool}} NOT NULL,
	baseline_version {{i64}},
	data_ref TEXT NOT NULL,
	data_digest TEXT NOT NULL,
	actor TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	report TEXT NOT NULL,
	FOREIGN KEY (model_name, model_version) REFERENCES model_versions(name, version) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX gate_results_version ON gate_results (model_name, model_version, result_id);
CREATE INDEX gate_results_policy ON gate_results (policy_name, model_name, model_version, result_id);
`

// endpointTables are the tables of migration 5.
const endpointTables = `
CREATE TABLE endpoints (
	name TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	status TEXT NOT NULL,
	revision {{i64}} NOT NULL,
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires {{i64}} NOT NULL DEFAULT 0
);
CREATE TABLE endpoint_events (
	event_id {{id}},
	endpoint TEXT NOT NULL,
	time {{i64}} NOT NULL,
	actor TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX endpoint_events_endpoint ON endpoint_events (endpoint, event_id);
`

// seed runs after the migrations, every start: it creates the Default
// experiment "0" that MLflow clients assume exists.
func (db *DB) seed(ctx context.Context) error {
	now := time.Now().UnixMilli()
	q := db.Rebind(`INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
		VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', ?, ?) ON CONFLICT DO NOTHING`)
	if _, err := db.W.ExecContext(ctx, q, now, now); err != nil {
		return fmt.Errorf("store: seed default experiment: %w", err)
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	create := `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`
	if _, err := db.W.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	if db.Dialect == Postgres {
		// Several replicas may start at once; one applies, the others wait.
		conn, err := db.W.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7355608)`); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7355608)`)
	}
	applied := map[int]bool{}
	rows, err := db.W.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		stmts := typeNames[db.Dialect].Replace(m.sqlFor(db.Dialect))
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			for _, s := range splitStatements(stmts) {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("%w\n%s", err, s)
				}
			}
			_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.Version, m.Name, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	return db.seed(ctx)
}

// splitStatements splits a migration on semicolons at line ends.
func splitStatements(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";\n") {
		if p := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), ";")); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SchemaVersion returns the highest applied migration version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := db.R.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

// Migrations returns the number of migrations this binary knows.
func Migrations() int { return len(migrations) }
