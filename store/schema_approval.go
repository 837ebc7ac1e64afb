package store

// approvalTables are migration 11's tables of package approval.
//
// approval_policies name what needs approving (a model's aliases, the
// endpoints that may route to it) and how many approvals; spec is the
// policy as JSON. approval_requests ask for one model version to take one
// alias or serve on one endpoint; state is pending, approved or rejected.
// approval_votes are the decisions, one per voter and request.
const approvalTables = `
CREATE TABLE approval_policies (
	name TEXT PRIMARY KEY,
	model_name TEXT NOT NULL,
	spec TEXT NOT NULL,
	generation {{i64}} NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	creation_time {{i64}} NOT NULL,
	last_update_time {{i64}} NOT NULL
);
CREATE TABLE approval_requests (
	request_id TEXT PRIMARY KEY,
	policy_name TEXT NOT NULL,
	model_name TEXT NOT NULL,
	model_version {{i64}} NOT NULL,
	target_type TEXT NOT NULL,
	target TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	required {{i64}} NOT NULL,
	creation_time {{i64}} NOT NULL,
	decided_time {{i64}} NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_target ON approval_requests (model_name, model_version, target_type, target, state);
CREATE TABLE approval_votes (
	request_id TEXT NOT NULL REFERENCES approval_requests(request_id) ON DELETE CASCADE,
	voter TEXT NOT NULL,
	decision TEXT NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	time {{i64}} NOT NULL,
	PRIMARY KEY (request_id, voter)
);
`
