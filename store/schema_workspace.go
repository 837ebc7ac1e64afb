package store

// workspaceResourceTables are migration 12's table of package access.
//
// workspace_resources says which workspace owns an experiment (by id), a
// registered model or an endpoint (by name). A resource without a row
// belongs to the workspace "default", so a server that uses only that
// workspace has no rows. Names stay global (MLflow's registry has one
// namespace): the primary key is the resource, not the workspace.
const workspaceResourceTables = `
CREATE TABLE workspace_resources (
	resource_type TEXT NOT NULL,
	name TEXT NOT NULL,
	workspace TEXT NOT NULL,
	created_at {{i64}} NOT NULL,
	PRIMARY KEY (resource_type, name)
);
CREATE INDEX workspace_resources_workspace ON workspace_resources (workspace, resource_type, name);
`
