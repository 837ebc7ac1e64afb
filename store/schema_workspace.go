package store

// workspaceResourceTables are migration 12's table of package access.
//
// workspace_resources says which workspace owns an experiment (by id), a
// registered model or an endpoint (by name). A resource without a row
// belongs to the workspace "default", so a server that uses only that
// workspace has no rows. The primary key is the resource, not the
// workspace: the registry keeps one namespace, so names that are per
// workspace (registered models; experiments are owned by id) are stored
// qualified outside the default workspace, WORKSPACE, U+001F and the name
// (package access, StoredName), and a row names that stored name. A model
// made in a workspace before names were per workspace keeps its plain
// name and its row. Endpoint names are not qualified yet: they are still
// shared by all workspaces, and their rows name them plainly.
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
