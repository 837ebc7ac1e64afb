package store

// accessTables are migration 10's tables of package access.
//
// users holds people and service accounts (kind user or service; a
// service account has no password and signs in with tokens only); admin
// marks server administrators. password_hash is an argon2id PHC string.
// api_tokens stores only a SHA-256 of each token's secret (the token is
// shown once); scope narrows what the token may do below its user's
// roles (read, write or all), workspace (” any) where. role_grants give
// a user a role in a workspace, on the whole workspace (resource_type
// ”) or on one experiment, registered model or endpoint. sessions are
// the UI's cookie sessions (the SHA-256 of the cookie, its CSRF token).
// audit_events is the append-only, hash-chained audit log: each row's
// hash covers its fields and the previous row's hash; rows are never
// updated (a trigger refuses it). It has no secondary index: every
// mutation appends to it, and reads (by actor, by time) are rare enough
// to scan.
const accessTables = `
CREATE TABLE users (
	name TEXT PRIMARY KEY,
	kind TEXT NOT NULL DEFAULT 'user',
	display_name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',
	admin {{bool}} NOT NULL DEFAULT FALSE,
	disabled {{bool}} NOT NULL DEFAULT FALSE,
	created_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE TABLE api_tokens (
	token_id TEXT PRIMARY KEY,
	user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	name TEXT NOT NULL DEFAULT '',
	secret_hash TEXT NOT NULL,
	scope TEXT NOT NULL DEFAULT 'all',
	workspace TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	expires {{i64}} NOT NULL DEFAULT 0,
	last_used {{i64}} NOT NULL DEFAULT 0,
	revoked {{i64}} NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens (user_name, token_id);
CREATE TABLE workspaces (
	name TEXT PRIMARY KEY,
	description TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL
);
CREATE TABLE role_grants (
	user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	workspace TEXT NOT NULL REFERENCES workspaces(name) ON DELETE CASCADE,
	resource_type TEXT NOT NULL DEFAULT '',
	resource TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	PRIMARY KEY (user_name, workspace, resource_type, resource)
);
CREATE INDEX role_grants_resource ON role_grants (workspace, resource_type, resource);
CREATE TABLE sessions (
	session_hash TEXT PRIMARY KEY,
	user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	csrf_token TEXT NOT NULL,
	creation_time {{i64}} NOT NULL,
	expires {{i64}} NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE TABLE audit_events (
	seq {{i64}} PRIMARY KEY,
	time {{i64}} NOT NULL,
	actor TEXT NOT NULL,
	auth TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	method TEXT NOT NULL DEFAULT '',
	path TEXT NOT NULL DEFAULT '',
	workspace TEXT NOT NULL DEFAULT '',
	resource TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	status {{i64}} NOT NULL DEFAULT 0,
	source_ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	request_digest TEXT NOT NULL DEFAULT '',
	response_digest TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
INSERT INTO workspaces (name, description, created_by, creation_time) VALUES ('default', 'The workspace of everything created without one', 'kiln', 0);
`

// auditImmutableSQLite and auditImmutablePostgres refuse updates of
// audit_events: the chain is append-only (tampering with the database
// directly still works, and kiln audit verify finds it).
const auditImmutableSQLite = `
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
`

const auditImmutablePostgres = `
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'restrict_violation'; END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
`

// oidcSubjectTables are migration 14's: which account of an OIDC provider
// (its issuer and the ID token's sub, stable where user names are not)
// each user signed in as. A user signs in through one subject per issuer.
const oidcSubjectTables = `
CREATE TABLE oidc_subjects (
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	creation_time {{i64}} NOT NULL,
	PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX oidc_subjects_user ON oidc_subjects (issuer, user_name);
`
